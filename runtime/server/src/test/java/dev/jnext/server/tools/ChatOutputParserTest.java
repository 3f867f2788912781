package dev.jnext.server.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.DeserializationFeature;
import dev.jnext.tokenizer.QwenTokenizer;
import dev.jnext.tokenizer.StreamDecoder;
import dev.jnext.tokenizer.TestTokenizers;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The chat-answer parser over the recorded outputs ({@code recorded-outputs.json}: answers written the way Qwen3,
 * Qwen3-Next, Qwen3.5 and Qwen3-Coder checkpoints write them): each whole answer gives the expected reasoning, content
 * and calls; and fed in pieces — split at every character, two splits at random, one character at a time, and token by
 * token as the engine streams the real Qwen3 tokenizer's pieces — the deltas add up to exactly the whole parse, with
 * the same warnings.
 */
class ChatOutputParserTest {
    static final ObjectMapper JSON = JsonMapper.builder().enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS).build();

    record Case(String name, ChatOutputParser.Settings settings, String output, JsonNode expect, int warnings) {}

    static List<Case> cases() throws IOException {
        JsonNode doc;
        try (InputStream in = ChatOutputParserTest.class.getResourceAsStream("/dev/jnext/server/tools/recorded-outputs.json")) {
            doc = JSON.readTree(in);
        }
        Map<String, JsonNode> functions = new LinkedHashMap<>();
        for (JsonNode t : doc.get("tools")) functions.put(t.get("function").get("name").asText(), t.get("function"));
        List<Case> out = new ArrayList<>();
        for (JsonNode c : doc.get("cases")) {
            Map<String, JsonNode> callable = functions;
            if (c.has("callable")) {
                callable = new LinkedHashMap<>();
                for (JsonNode n : c.get("callable")) callable.put(n.asText(), functions.get(n.asText()));
            }
            ToolCallFormat format = ToolCallFormat.named(c.get("format").asText());
            var settings = new ChatOutputParser.Settings(format, callable, c.path("parallel").asBoolean(true),
                    c.path("starts_in_reasoning").asBoolean(false));
            out.add(new Case(c.get("name").asText(), settings, c.get("output").asText(), c.get("expect"), c.path("warnings").asInt(0)));
        }
        return out;
    }

    /** Ids call_0, call_1, ... so that two parses of the same answer compare equal. */
    static Supplier<String> ids() {
        int[] n = {0};
        return () -> "call_" + n[0]++;
    }

    /** Feeds the pieces and puts the deltas together; checks that no delta is empty. */
    static ParsedOutput streamed(ChatOutputParser.Settings settings, List<String> pieces, List<String> warnings) {
        ChatOutputParser p = new ChatOutputParser(settings, ids(), warnings::add);
        List<OutputDelta> all = new ArrayList<>();
        for (String piece : pieces) all.addAll(p.feed(piece));
        all.addAll(p.finish());
        for (OutputDelta d : all) {
            switch (d) {
                case OutputDelta.Content c -> assertFalse(c.text().isEmpty(), "an empty content delta");
                case OutputDelta.Reasoning r -> assertFalse(r.text().isEmpty(), "an empty reasoning delta");
                case OutputDelta.ToolCall t -> assertEquals(all.stream().filter(x -> x instanceof OutputDelta.ToolCall)
                        .toList().indexOf(t), t.index(), "call indexes count 0, 1, ...");
            }
        }
        return ParsedOutput.of(all);
    }

    @TestFactory
    List<DynamicTest> wholeAnswersGiveTheRecordedFields() throws IOException {
        List<DynamicTest> tests = new ArrayList<>();
        for (Case c : cases()) {
            tests.add(DynamicTest.dynamicTest(c.name(), () -> {
                List<String> warnings = new ArrayList<>();
                ParsedOutput p = ChatOutputParser.parse(c.settings(), c.output(), ids(), warnings::add);
                assertEquals(text(c.expect().get("content")), p.content(), "content");
                assertEquals(text(c.expect().get("reasoning")), p.reasoning(), "reasoning");
                JsonNode calls = c.expect().get("tool_calls");
                assertEquals(calls.size(), p.toolCalls().size(), "calls: " + p.toolCalls());
                for (int i = 0; i < calls.size(); i++) {
                    OutputDelta.ToolCall t = p.toolCalls().get(i);
                    assertEquals(i, t.index());
                    assertEquals("call_" + i, t.id());
                    assertEquals(calls.get(i).get("name").asText(), t.name());
                    JsonNode args = JSON.readTree(t.arguments());
                    assertTrue(args.isObject(), "arguments are a JSON object: " + t.arguments());
                    assertEquals(calls.get(i).get("arguments"), args, "arguments of call " + i);
                }
                assertEquals(c.warnings(), warnings.size(), "warnings: " + warnings);
            }));
        }
        return tests;
    }

    @TestFactory
    List<DynamicTest> anySplitOfTheTextAddsUpToTheWholeParse() throws IOException {
        QwenTokenizer tok = TestTokenizers.qwen3();
        List<DynamicTest> tests = new ArrayList<>();
        for (Case c : cases()) {
            tests.add(DynamicTest.dynamicTest(c.name(), () -> {
                List<String> wholeWarnings = new ArrayList<>();
                ParsedOutput whole = ChatOutputParser.parse(c.settings(), c.output(), ids(), wholeWarnings::add);
                String s = c.output();
                // one split at every place (the empty pieces at the ends included)
                for (int i = 0; i <= s.length(); i++) check(c, whole, wholeWarnings, List.of(s.substring(0, i), s.substring(i)), "split at " + i);
                // one character at a time
                List<String> chars = new ArrayList<>();
                for (int i = 0; i < s.length(); i++) chars.add(s.substring(i, i + 1));
                check(c, whole, wholeWarnings, chars, "char by char");
                // two splits, anywhere
                SplittableRandom r = new SplittableRandom(c.name().hashCode());
                for (int k = 0; k < 300; k++) {
                    int a = r.nextInt(s.length() + 1), b = r.nextInt(s.length() + 1);
                    int x = Math.min(a, b), y = Math.max(a, b);
                    check(c, whole, wholeWarnings, List.of(s.substring(0, x), s.substring(x, y), s.substring(y)), "splits at " + x + ", " + y);
                }
                // as the engine streams it: the Qwen3 tokenizer's tokens, decoded one at a time
                int[] ids = tok.encode(s);
                StreamDecoder d = tok.streamDecoder(true);
                List<String> pieces = new ArrayList<>();
                for (int id : ids) pieces.add(d.next(id));
                pieces.add(d.finish());
                assertEquals(s, String.join("", pieces), "the tokenizer round-trips the recorded output");
                check(c, whole, wholeWarnings, pieces, "token by token");
            }));
        }
        return tests;
    }

    private static void check(Case c, ParsedOutput whole, List<String> wholeWarnings, List<String> pieces, String how) {
        List<String> warnings = new ArrayList<>();
        ParsedOutput p = streamed(c.settings(), pieces, warnings);
        assertEquals(whole, p, how);
        assertEquals(wholeWarnings, warnings, how);
    }

    private static String text(JsonNode n) {
        return n == null || n.isNull() ? null : n.asText();
    }

    @Test
    void textIsHeldBackOnlyWhileItMayBeATagOrStandBeforeACall() {
        var s = new ChatOutputParser.Settings(ToolCallFormat.HERMES, Map.of("f", JSON.createObjectNode()), true, false);
        ChatOutputParser p = new ChatOutputParser(s, ids(), w -> { });
        assertEquals(List.of(), p.feed("<thi"), "may be <think>");
        assertEquals(List.of(new OutputDelta.Content("<this")), p.feed("s"));
        assertEquals(List.of(new OutputDelta.Content(" is")), p.feed(" is <tool_"), "the space may stand before a call");
        assertEquals(List.of(new OutputDelta.Content(" <tool_x")), p.feed("x"));
        assertEquals(List.of(), p.feed("\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}"), "a call waits for its end");
        assertEquals(List.of(new OutputDelta.ToolCall(0, "call_0", "f", "{\"a\":1}")), p.feed("\n</tool_call>\n"));
        assertEquals(List.of(), p.finish());
        assertEquals(1, p.toolCalls());

        ChatOutputParser thinking = new ChatOutputParser(ChatOutputParser.Settings.reasoningOnly(true), ids(), w -> { });
        assertEquals(List.of(new OutputDelta.Reasoning("Hmm.")), thinking.feed("\nHmm. </th"));
        assertEquals(List.of(new OutputDelta.Content("Yes")), thinking.feed("ink>\n\nYes"));
        assertEquals(List.of(new OutputDelta.Content(".\n")), thinking.feed(".\n"), "no call parsing: nothing to hold");
    }

    @Test
    void formatFollowsTheTemplate() {
        assertEquals(ToolCallFormat.XML, ToolCallFormat.detect("{{- '<tool_call>\\n<function=' + tool_call.name + '>\\n' }}"));
        assertEquals(ToolCallFormat.HERMES, ToolCallFormat.detect("{{- '<tool_call>\\n{\"name\": \"' }}"));
        assertEquals(ToolCallFormat.HERMES, ToolCallFormat.detect(null));
        assertEquals(ToolCallFormat.XML, ToolCallFormat.named("qwen3_coder"));
        assertEquals(null, ToolCallFormat.named("auto"));
        assertNotNull(ToolCallFormat.named("hermes"));
    }
}
