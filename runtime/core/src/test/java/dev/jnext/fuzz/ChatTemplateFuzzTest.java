package dev.jnext.fuzz;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jnext.tokenizer.ChatTemplate;
import dev.jnext.tokenizer.Qwen3PromptShape;
import dev.jnext.tokenizer.TestTokenizers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.RepetitionInfo;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzzes the chat template. Conversations whose content, tool-call names and arguments are made of Jinja syntax
 * (tags, expressions, comments, whitespace control, unbalanced delimiters, raise_exception, huge ranges) render
 * literally with the Qwen3 template, exactly as transformers does ({@link Qwen3PromptShape}). Templates made of the
 * same fragments (loops over huge ranges, recursive macros, string doubling, disabled filters and tags, broken
 * syntax) render, or fail with a one-line message naming the template, within their limits.
 */
class ChatTemplateFuzzTest {
    static final FuzzTally LITERAL = new FuzzTally("chat content rendered by the Qwen3 template");
    static final FuzzTally TEMPLATES = new FuzzTally("chat templates (ChatTemplate.render within Limits)");
    static final ChatTemplate.Limits LIMITS = new ChatTemplate.Limits(1 << 20, 10_000, 16, 20_000, Duration.ofMillis(500));
    /** The corpus expects step, item, output and recursion limits, never the time one: a busy machine must not hit it. */
    static final ChatTemplate.Limits CORPUS_LIMITS = new ChatTemplate.Limits(LIMITS.maxOutputChars(), LIMITS.maxItems(),
            LIMITS.maxDepth(), LIMITS.maxSteps(), Duration.ofSeconds(30));
    private static final ObjectMapper JSON = new ObjectMapper();
    private static ChatTemplate qwen3;

    static synchronized ChatTemplate qwen3() {
        if (qwen3 == null) qwen3 = ChatTemplate.load(TestTokenizers.qwen3Dir());
        return qwen3;
    }

    @AfterAll
    static void report() {
        LITERAL.report();
        TEMPLATES.report();
    }

    @Test
    void everyCorpusContentIsRenderedLiterally() throws IOException {
        for (String line : Files.readAllLines(Corpus.dir("chat").resolve("contents.jsonl"), StandardCharsets.UTF_8)) {
            if (line.isBlank()) continue;
            String content = JSON.readValue(line, String.class);
            List<Map<String, Object>> messages = List.of(msg("system", content), msg("user", "hi"),
                    msg("assistant", content), msg("user", content));
            checkLiteral(messages, null, true);
        }
    }

    @Test
    void everyCorpusTemplateHasItsExpectedOutcome() throws IOException {
        for (String line : Files.readAllLines(Corpus.dir("chat").resolve("templates.jsonl"), StandardCharsets.UTF_8)) {
            if (line.isBlank()) continue;
            JsonNode t = JSON.readTree(line);
            String expect = t.get("expect").asText();
            try {
                String out = render(t.get("template").asText(), CORPUS_LIMITS);
                assertEquals(expect, "accepted", t.get("template").asText() + " rendered " + out);
            } catch (dev.jnext.JnextException e) {
                assertTrue(!expect.equals("accepted") && e.getMessage().contains(expect), t.get("template") + ": " + e.getMessage());
            }
            checkTemplate(t.get("template").asText());
        }
    }

    @RepeatedTest(value = 600, failureThreshold = 1)
    void contentIsRenderedLiterally(RepetitionInfo repetition) throws Throwable {
        Tries.check(repetition, ChatTemplateFuzzTest::chat,
                c -> checkLiteral(c.messages(), c.tools().isEmpty() ? null : c.tools(), c.addGenerationPrompt()));
    }

    @RepeatedTest(value = 300, failureThreshold = 1)
    void templatesRenderOrFailCleanlyWithinTheirLimits(RepetitionInfo repetition) throws Throwable {
        Tries.check(repetition, ChatTemplateFuzzTest::template, ChatTemplateFuzzTest::checkTemplate);
    }

    static void checkLiteral(List<Map<String, Object>> messages, List<Object> tools, boolean gen) {
        String expected = Qwen3PromptShape.expected(messages, tools, gen, Map.of());
        LITERAL.run(List.of("tokenizer_config.json"), Duration.ofSeconds(5), () -> {
            assertEquals(expected, qwen3().render(messages, tools, gen, Map.of()));
            return null;
        });
    }

    static void checkTemplate(String template) {
        TEMPLATES.run(List.of("fuzz.jinja"), Duration.ofSeconds(4), () -> render(template, LIMITS));
    }

    static String render(String template, ChatTemplate.Limits limits) {
        Map<String, Object> special = Map.of("eos_token", "<|im_end|>", "bos_token", "{{ 7*7 }}");
        List<Map<String, Object>> messages = List.of(msg("system", "{{ 7*7 }}"),
                msg("user", "{% for i in range(10**9) %}x{% endfor %}"), msg("assistant", "ok"));
        return new ChatTemplate(template, Path.of("fuzz.jinja"), special, limits)
                .render(messages, List.of(Map.of("name", "{{ raise_exception('tool') }}")), true, Map.of("enable_thinking", false));
    }

    // ---- inputs -------------------------------------------------------------------------------------------

    static final List<String> CONTENT = List.of("{{", "}}", "{%", "%}", "{#", "#}", "{{-", "-}}", "{%-", "-%}", " ",
            "\n", "\r\n", "\t", "x", "7*7", "messages", "messages|length", "raise_exception('boom')", "set x = 1",
            "for i in range(10**9)", "endfor", "if true", "endif", "raw", "endraw", "include 'x'", "import 'x' as y",
            "macro m()", "endmacro", "'", "\"", "\\", "|tojson", "|render", "${7*7}", "#{7*7}", "<|im_end|>",
            "<|im_start|>", "<tool_response>", "</tool_response>", "<think>", "é", "😀", "\u0000", "\u202e",
            "{{ '{{' }}", "{% raw %}{{ x }}{% endraw %}", "{{ add_generation_prompt }}", "{{ tools }}");

    static final String CHARS = "{}%#-+' \n\"xabc()[]|.=!<>";

    /** Template syntax: up to 12 of the fragments above, or up to 40 characters of its alphabet. */
    static String content(SplittableRandom r) {
        if (r.nextBoolean()) return String.join("", Tries.list(r, 0, 12, x -> Tries.pick(x, CONTENT)));
        StringBuilder b = new StringBuilder();
        for (int n = Tries.between(r, 0, 40); n > 0; n--) b.append(CHARS.charAt(r.nextInt(CHARS.length())));
        return b.toString();
    }

    /** A conversation of such contents (optional system turn, up to four turns, a last user turn), and tools. */
    record Chat(List<Map<String, Object>> messages, List<Object> tools, boolean addGenerationPrompt) {
        @Override
        public String toString() {
            try {
                return JSON.writeValueAsString(this);
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    static Chat chat(SplittableRandom r) {
        List<Map<String, Object>> messages = new ArrayList<>();
        if (r.nextBoolean()) messages.add(msg("system", content(r)));
        messages.addAll(Tries.list(r, 0, 4, x -> switch (x.nextInt(3)) {
            case 0 -> msg("user", content(x));
            case 1 -> assistant(x);
            default -> Map.of("role", "tool", "content", content(x));
        }));
        messages.add(msg("user", content(r)));
        List<Object> tools = Tries.list(r, 0, 2, x -> Map.of("type", "function", "function",
                Map.of("name", "f", "description", content(x), "parameters", Map.of("type", "object"))));
        return new Chat(messages, tools, r.nextBoolean());
    }

    /** An assistant turn before the last user turn, without thinking (the shape the literal oracle covers). */
    static Map<String, Object> assistant(SplittableRandom r) {
        String c;
        do c = content(r); while (c.contains("</think>"));
        Map<String, Object> m = msg("assistant", c);
        String name = content(r), args = content(r);
        if (r.nextBoolean()) m.put("tool_calls", List.of(Map.of("type", "function",
                "function", Map.of("name", name, "arguments", args))));
        return m;
    }

    static final List<String> TEMPLATE = List.of("a", " ", "\n", "<|im_start|>", "{{ messages|length }}",
            "{% for m in messages %}", "{% endfor %}", "{{ m.content }}", "{{ m['role'] }}", "{% if m %}", "{% if true %}",
            "{% else %}", "{% endif %}", "{% set x = 1 %}", "{{ x }}", "{% set ns = namespace(s='ab') %}",
            "{% set ns.s = ns.s ~ ns.s %}", "{{ ns.s|length }}", "{% for i in range(100000) %}", "{% for j in range(10**9) %}",
            "{{ range(3) }}", "{{ range(2.5) }}", "{% macro f(n) %}", "{% endmacro %}", "{{ f(1) }}", "{{ f(n - 1) }}",
            "{{ raise_exception('template says no') }}", "{% include 'x' %}", "{% import 'x' as y %}", "{{ x|render }}",
            "{{ x|striptags }}", "{% raw %}", "{% endraw %}", "{{", "}}", "{%", "%}", "{#", "#}", "{{-", "-}}", "{%-",
            "-%}", "{{ messages[::-1]|length }}", "{{ tools|tojson }}", "{{ tools[0].name }}", "{{ bos_token }}",
            "{{ ''.replace('', 'xyzxyzxyz') }}", "{% set l = [] %}", "{% do l.append(l) %}", "{{ l|length }}",
            "{{ loop.previtem }}", "{% generation %}", "{% endgeneration %}", "{{ strftime_now('%Y') }}",
            "{% for k in {'a': 1} %}", "{{ messages[0]['content'][::-1] }}", "{{ m.content.split('x') }}",
            "{{ 'a' * 3 }}", "{{ 1 / 0 }}", "{{ x.__class__ }}", "{{ messages.__class__.forName('java.lang.Runtime') }}",
            "{{ enable_thinking }}", "{% if add_generation_prompt %}", "{{ eos_token }}");

    private static List<String> corpusTemplates;

    static synchronized List<String> corpusTemplates() throws IOException {
        if (corpusTemplates == null) {
            List<String> out = new ArrayList<>();
            for (String line : Files.readAllLines(Corpus.dir("chat").resolve("templates.jsonl"), StandardCharsets.UTF_8)) {
                if (!line.isBlank()) out.add(JSON.readTree(line).get("template").asText());
            }
            corpusTemplates = out;
        }
        return corpusTemplates;
    }

    /** Up to 16 of the fragments above, or (one time in three) such a run inserted into a corpus template. */
    static String template(SplittableRandom r) {
        String fragments = String.join("", Tries.list(r, 0, 16, x -> Tries.pick(x, TEMPLATE)));
        if (r.nextInt(3) < 2) return fragments;
        try {
            String c = Tries.pick(r, corpusTemplates());
            int p = Tries.between(r, 0, 1000) % (c.length() + 1);
            return c.substring(0, p) + fragments + c.substring(p);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static Map<String, Object> msg(String role, String content) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("role", role);
        m.put("content", content);
        return m;
    }
}
