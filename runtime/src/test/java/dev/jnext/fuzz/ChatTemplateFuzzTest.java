package dev.jnext.fuzz;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jnext.tokenizer.ChatTemplate;
import dev.jnext.tokenizer.Qwen3PromptShape;
import dev.jnext.tokenizer.TestTokenizers;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.lifecycle.AfterContainer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

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
    private static final ObjectMapper JSON = new ObjectMapper();
    private static ChatTemplate qwen3;

    static synchronized ChatTemplate qwen3() {
        if (qwen3 == null) qwen3 = ChatTemplate.load(TestTokenizers.qwen3Dir());
        return qwen3;
    }

    @AfterContainer
    static void report() {
        LITERAL.report();
        TEMPLATES.report();
    }

    @Example
    void everyCorpusContentIsRenderedLiterally() throws IOException {
        for (String line : Files.readAllLines(Corpus.dir("chat").resolve("contents.jsonl"), StandardCharsets.UTF_8)) {
            if (line.isBlank()) continue;
            String content = JSON.readValue(line, String.class);
            List<Map<String, Object>> messages = List.of(msg("system", content), msg("user", "hi"),
                    msg("assistant", content), msg("user", content));
            checkLiteral(messages, null, true);
        }
    }

    @Example
    void everyCorpusTemplateHasItsExpectedOutcome() throws IOException {
        for (String line : Files.readAllLines(Corpus.dir("chat").resolve("templates.jsonl"), StandardCharsets.UTF_8)) {
            if (line.isBlank()) continue;
            JsonNode t = JSON.readTree(line);
            String expect = t.get("expect").asText();
            try {
                String out = render(t.get("template").asText());
                assertEquals(expect, "accepted", t.get("template").asText() + " rendered " + out);
            } catch (dev.jnext.JnextException e) {
                assertTrue(!expect.equals("accepted") && e.getMessage().contains(expect), t.get("template") + ": " + e.getMessage());
            }
            checkTemplate(t.get("template").asText());
        }
    }

    @Property(tries = 600)
    void contentIsRenderedLiterally(@ForAll("conversations") List<Map<String, Object>> messages, @ForAll boolean gen,
                                    @ForAll("toolLists") List<Object> tools) {
        checkLiteral(messages, tools.isEmpty() ? null : tools, gen);
    }

    @Property(tries = 300)
    void templatesRenderOrFailCleanlyWithinTheirLimits(@ForAll("templates") String template) {
        checkTemplate(template);
    }

    static void checkLiteral(List<Map<String, Object>> messages, List<Object> tools, boolean gen) {
        String expected = Qwen3PromptShape.expected(messages, tools, gen, Map.of());
        LITERAL.run(List.of("tokenizer_config.json"), Duration.ofSeconds(5), () -> {
            assertEquals(expected, qwen3().render(messages, tools, gen, Map.of()));
            return null;
        });
    }

    static void checkTemplate(String template) {
        TEMPLATES.run(List.of("fuzz.jinja"), Duration.ofSeconds(4), () -> render(template));
    }

    static String render(String template) {
        Map<String, Object> special = Map.of("eos_token", "<|im_end|>", "bos_token", "{{ 7*7 }}");
        List<Map<String, Object>> messages = List.of(msg("system", "{{ 7*7 }}"),
                msg("user", "{% for i in range(10**9) %}x{% endfor %}"), msg("assistant", "ok"));
        return new ChatTemplate(template, Path.of("fuzz.jinja"), special, LIMITS)
                .render(messages, List.of(Map.of("name", "{{ raise_exception('tool') }}")), true, Map.of("enable_thinking", false));
    }

    // ---- inputs -------------------------------------------------------------------------------------------

    static final List<String> CONTENT = List.of("{{", "}}", "{%", "%}", "{#", "#}", "{{-", "-}}", "{%-", "-%}", " ",
            "\n", "\r\n", "\t", "x", "7*7", "messages", "messages|length", "raise_exception('boom')", "set x = 1",
            "for i in range(10**9)", "endfor", "if true", "endif", "raw", "endraw", "include 'x'", "import 'x' as y",
            "macro m()", "endmacro", "'", "\"", "\\", "|tojson", "|render", "${7*7}", "#{7*7}", "<|im_end|>",
            "<|im_start|>", "<tool_response>", "</tool_response>", "<think>", "é", "😀", "\u0000", "\u202e",
            "{{ '{{' }}", "{% raw %}{{ x }}{% endraw %}", "{{ add_generation_prompt }}", "{{ tools }}");

    static Arbitrary<String> content() {
        return Arbitraries.oneOf(
                Arbitraries.of(CONTENT).list().ofMaxSize(12).map(parts -> String.join("", parts)),
                Arbitraries.strings().withChars("{}%#-+' \n\"xabc()[]|.=!<>").ofMaxLength(40));
    }

    @Provide
    Arbitrary<List<Map<String, Object>>> conversations() {
        Arbitrary<Map<String, Object>> user = content().map(c -> msg("user", c));
        // an assistant turn before the last user turn, without thinking (the shape the literal oracle covers)
        Arbitrary<Map<String, Object>> assistant = Combinators.combine(content().filter(c -> !c.contains("</think>")),
                        content(), content(), Arbitraries.of(true, false))
                .as((c, name, args, withCall) -> {
                    Map<String, Object> m = new LinkedHashMap<>(msg("assistant", c));
                    if (withCall) m.put("tool_calls", List.of(Map.of("type", "function",
                            "function", Map.of("name", name, "arguments", args))));
                    return m;
                });
        Arbitrary<Map<String, Object>> tool = content().map(c -> Map.of("role", "tool", "content", c));
        Arbitrary<Map<String, Object>> system = content().map(c -> msg("system", c));
        return Combinators.combine(system.optional(), Arbitraries.oneOf(user, assistant, tool).list().ofMaxSize(4), user)
                .as((sys, middle, last) -> {
                    List<Map<String, Object>> all = new ArrayList<>();
                    sys.ifPresent(all::add);
                    all.addAll(middle);
                    all.add(last);
                    return all;
                });
    }

    @Provide
    Arbitrary<List<Object>> toolLists() {
        return content().map(d -> (Object) Map.of("type", "function", "function",
                Map.of("name", "f", "description", d, "parameters", Map.of("type", "object")))).list().ofMaxSize(2);
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

    @Provide
    Arbitrary<String> templates() {
        List<String> corpus = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(Corpus.dir("chat").resolve("templates.jsonl"), StandardCharsets.UTF_8)) {
                if (!line.isBlank()) corpus.add(JSON.readTree(line).get("template").asText());
            }
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        Arbitrary<String> fragments = Arbitraries.of(TEMPLATE).list().ofMaxSize(16).map(parts -> String.join("", parts));
        return Arbitraries.oneOf(fragments, fragments, Combinators.combine(Arbitraries.of(corpus), fragments,
                Arbitraries.integers().between(0, 1000)).as((c, f, at) -> {
            int p = at % (c.length() + 1);
            return c.substring(0, p) + f + c.substring(p);
        }));
    }

    private static Map<String, Object> msg(String role, String content) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("role", role);
        m.put("content", content);
        return m;
    }
}
