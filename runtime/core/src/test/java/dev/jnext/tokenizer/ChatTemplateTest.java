package dev.jnext.tokenizer;

import dev.jnext.JnextException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ChatTemplateTest {

    private static String render(String template, List<ChatMessage> messages) {
        return new ChatTemplate(template, Path.of("test.jinja"), Map.of("eos_token", "<|im_end|>")).render(messages, true);
    }

    private static final List<ChatMessage> THREE = List.of(ChatMessage.user("a"), ChatMessage.assistant("b"), ChatMessage.user("c"));

    @Test
    void extendedSlicesReverseAndStep() {
        assertEquals("cba", render("{% for m in messages[::-1] %}{{ m.content }}{% endfor %}", THREE));
        assertEquals("ac", render("{% for m in messages[::2] %}{{ m.content }}{% endfor %}", THREE));
        assertEquals("b", render("{{ messages[::-1][1].content }}", THREE));
        assertEquals("olleh|el", render("{{ 'hello'[::-1] }}|{{ 'hello'[1:3] }}", THREE));
        assertEquals("[3, 2]", render("{{ [1, 2, 3][:0:-1] }}", THREE));
    }

    @Test
    void keywordArgumentsKeepTheirWholeExpression() {
        assertEquals("2", render("{% set ns = namespace(x=true, i=messages|length - 1) %}{{ ns.i }}", THREE));
        assertEquals("namespace(i=(messages|length - 1), s=('a,b'))",
                JinjaRewriter.parenthesizeKeywordArguments("namespace(i=messages|length - 1, s='a,b')"));
        assertEquals("x == 1 and f(a)", JinjaRewriter.parenthesizeKeywordArguments("x == 1 and f(a)"));
    }

    @Test
    void loopNeighboursAsJinja() {
        String t = "{% for m in messages %}[{{ loop.previtem.content if loop.previtem is defined else '-' }}"
                + "{{ m.content }}{{ loop.nextitem.content if loop.nextitem is defined else '-' }}]"
                + "{% for c in ['x', 'y'] %}{{ loop.previtem if loop.previtem is defined else '' }}{% endfor %}{% endfor %}";
        assertEquals("[-ab]x[abc]x[bc-]x", render(t, THREE));
    }

    @Test
    void itemsFilterGivesAMappingsPairs() {
        ChatTemplate t = new ChatTemplate("{% for m in messages %}{% for k, v in m.args | items %}<{{ k }}={{ v }}>{% endfor %}"
                + "{% for k, v in m.nothing | items %}never{% endfor %}{% endfor %}", Path.of("test.jinja"), Map.of());
        var args = new java.util.LinkedHashMap<String, Object>();
        args.put("z", "ls");
        args.put("a", 2);
        assertEquals("<z=ls><a=2>", t.render(List.of(Map.of("role", "assistant", "args", args)), null, false, Map.of()));
        JnextException e = assertThrows(JnextException.class,
                () -> t.render(List.of(Map.of("role", "assistant", "args", "{\"a\": 1}")), null, false, Map.of()));
        assertTrue(e.getMessage().contains("can only get item pairs from a mapping"), e.getMessage());
    }

    @Test
    void generationBlocksRenderTheirBody() {
        assertEquals("<a>b</a>", render("{% for m in messages[1:2] %}<a>{% generation %}{{ m.content }}{% endgeneration %}</a>{% endfor %}", THREE));
    }

    @Test
    void pythonStringMethods() {
        String t = "{{ messages[0].content.split('</think>')[-1].lstrip('\\n') }}|{{ 'a|b|'.split('|') | length }}"
                + "|{{ '  x '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ 'ab'.startswith('a') }}|{{ 'ab'.endswith(('x', 'b')) }}"
                + "|{{ 'a b  c'.split() | length }}|{{ 'k=v=w'.split('=', 1)[1] }}|{{ 'a.b.c'.rsplit('.', 1)[0] }}";
        assertEquals("answer|3|x|hi|true|true|3|v=w|a.b", render(t, List.of(ChatMessage.user("<think>\nr\n</think>\n\nanswer"))));
    }

    @Test
    void whitespaceControlAsJinja() {
        String t = "{%- for m in messages %}\n    {{- m.content }}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '|' + eos_token }}\n{%- endif %}\n";
        assertEquals("abc|<|im_end|>", render(t, THREE));
    }

    @Test
    void tojsonWritesWhatPythonJsonDumpsWrites() {
        Map<String, Object> tool = new java.util.LinkedHashMap<>();
        tool.put("name", "f");
        tool.put("n", 1.5e-7);
        tool.put("list", List.of(1, true, "é\n\"q\""));
        tool.put("empty", Map.of());
        assertEquals("{\"name\": \"f\", \"n\": 1.5e-07, \"list\": [1, true, \"é\\n\\\"q\\\"\"], \"empty\": {}}",
                PythonJson.dumps(tool, null, false));
        assertEquals("[\n  1,\n  [\n    2\n  ]\n]", PythonJson.dumps(List.of(1, List.of(2)), 2, false));
        assertEquals("{\n  \"role\": \"user\",\n  \"content\": \"a\"\n}|{\"content\": \"a\", \"role\": \"user\"}",
                render("{{ messages[0] | tojson(indent=2) }}|{{ messages[0] | tojson(sort_keys=true) }}", THREE));
        assertEquals("100.0 0.0001 1e-05 1e+16 -2.5", String.join(" ", PythonJson.floatRepr(100), PythonJson.floatRepr(1e-4),
                PythonJson.floatRepr(1e-5), PythonJson.floatRepr(1e16), PythonJson.floatRepr(-2.5)));
    }

    @Test
    void raiseExceptionBecomesAClearError() {
        var e = assertThrows(JnextException.class,
                () -> render("{% if messages[0].role != 'system' %}{{ raise_exception('Conversation must start with a system message') }}{% endif %}", THREE));
        assertTrue(e.getMessage().contains("Conversation must start with a system message") && e.getMessage().contains("test.jinja"),
                e.getMessage());
    }

    @Test
    void aTemplateJinjavaCannotParseIsReportedNotRenderedHalfway() {
        var e = assertThrows(JnextException.class, () -> render("{% for m in messages %}{{ m.content ", THREE));
        assertTrue(e.getMessage().contains("cannot be rendered"), e.getMessage());
        e = assertThrows(JnextException.class, () -> render("{{ messages[0].content.nosuchmethod() }}", THREE));
        assertTrue(e.getMessage().contains("nosuchmethod"), e.getMessage());
    }

    @Test
    void loadsTheTemplateFromTheFolderAndPrefersChatTemplateJinja(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"chat_template\": \"A{{ messages|length }}\", \"eos_token\": \"<e>\"}");
        assertEquals("A3", ChatTemplate.load(dir).render(THREE, false));
        Files.writeString(dir.resolve("chat_template.jinja"), "J{{ eos_token }}");
        assertEquals("J<e>", ChatTemplate.load(dir).render(THREE, false));
    }

    @Test
    void aFolderWithoutTemplateIsAClearError(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"eos_token\": \"<e>\"}");
        var e = assertThrows(JnextException.class, () -> ChatTemplate.load(dir));
        assertTrue(e.getMessage().contains("no chat_template"), e.getMessage());
        Files.writeString(dir.resolve("tokenizer_config.json"), "{not json");
        e = assertThrows(JnextException.class, () -> ChatTemplate.load(dir));
        assertTrue(e.getMessage().contains("tokenizer_config.json"), e.getMessage());
    }

    private static String failure(String template, ChatTemplate.Limits limits) {
        ChatTemplate t = new ChatTemplate(template, Path.of("test.jinja"), Map.of(), limits);
        String message = assertThrows(JnextException.class, () -> t.render(THREE, true)).getMessage();
        assertTrue(message.startsWith("chat template of test.jinja cannot be rendered: ") && !message.contains("\n"), message);
        return message;
    }

    @Test
    void rangeIsJinja2sSandboxedRange() {
        assertEquals("5000|[10, 7, 4, 1]|[]|[-2, -1]", render("{{ range(5000)|length }}|{{ range(10, 0, -3) }}|{{ range(3, 3) }}|{{ range(-2, 0) }}", THREE));
        assertTrue(failure("{{ range(100001)|length }}", ChatTemplate.Limits.DEFAULT)
                .endsWith("range of 100001 items; a chat template may build at most 100000 (as jinja2's sandbox)"));
        assertTrue(failure("{{ range(2.0) }}", ChatTemplate.Limits.DEFAULT).endsWith("range: 'float' object cannot be interpreted as an integer"));
        assertTrue(failure("{{ range(1, 2, 0) }}", ChatTemplate.Limits.DEFAULT).endsWith("range() arg 3 must not be zero"));
    }

    @Test
    void macrosRecurseAsInJinja2UpToTheDepthLimit() {
        assertEquals("012345", render("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{% endif %}{{ n }}{% endmacro %}{{ f(5) }}", THREE));
        assertTrue(failure("{% macro f(n) %}{{ f(n - 1) }}{% endmacro %}{{ f(0) }}", ChatTemplate.Limits.DEFAULT)
                .contains("Max recursion limit of 64 reached for macro 'f'"));
    }

    @Test
    void loopsThatWouldRunForHoursStopAtTheStepLimit() {
        long start = System.nanoTime();
        assertTrue(failure("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", ChatTemplate.Limits.DEFAULT)
                .endsWith("the template ran more than 4000000 steps (rendered nodes and loop iterations)"));
        assertTrue(System.nanoTime() - start < 20e9);
        var small = new ChatTemplate.Limits(1 << 20, 1000, 8, 50, java.time.Duration.ofSeconds(10));
        assertTrue(failure("{% for m in messages %}{% for c in [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] %}{{ c }}{% endfor %}{% endfor %}", small)
                .endsWith("more than 50 steps (rendered nodes and loop iterations)"));
    }

    @Test
    void renderTimeIsBounded() {
        var quick = new ChatTemplate.Limits(1 << 20, 1 << 20, 8, Long.MAX_VALUE, java.time.Duration.ofMillis(200));
        long start = System.nanoTime();
        assertTrue(failure("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", quick)
                .endsWith("the template ran longer than 200 ms"));
        assertTrue(System.nanoTime() - start < 5e9);
    }

    @Test
    void outputStringsAndCollectionsAreBounded() {
        var small = new ChatTemplate.Limits(1000, 100, 8, 1_000_000, java.time.Duration.ofSeconds(10));
        assertTrue(failure("{% for i in range(200) %}{{ i }}-----{% endfor %}", small).contains("over limit of 1000"));
        assertTrue(failure("{% set ns = namespace(s='x') %}{% for i in range(20) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}", small)
                .contains("over limit of 1000"));
        assertTrue(failure("{{ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'.replace('', 'yyyyyyyyyyyyyyyyyyyy') }}", small)
                .endsWith("str.replace would build a string of 1070 characters; a render may build at most 1000"));
        assertTrue(failure("{% set l = [] %}{% for i in range(150) %}{% do l.append(i) %}{% endfor %}{{ l|length }}", small)
                .endsWith("Collection of size 101 is greater than the maximum size of 100"));
        String big = "x".repeat(2000);
        ChatTemplate t = new ChatTemplate("{{ messages[0].content }}", Path.of("test.jinja"), Map.of(), small);
        assertTrue(assertThrows(JnextException.class, () -> t.render(List.of(ChatMessage.user(big)), false)).getMessage()
                .contains("over limit of 1000"));
    }

    @Test
    void filtersThatRenderValuesAndFileLoadingAreDisabled() {
        for (String name : List.of("render", "striptags")) {
            assertTrue(failure("{{ messages[0].content|" + name + " }}", ChatTemplate.Limits.DEFAULT)
                    .endsWith("'" + name + "' is disabled in this context"));
        }
        // jinjava's extra filters whose libraries are excluded from the dependencies: a clear error, never a linkage error
        for (String name : List.of("ipaddr", "ipv4", "ipv6", "log", "root", "b64encode('utf-16')",
                "b64decode")) {
            String bare = name.contains("(") ? name.substring(0, name.indexOf('(')) : name;
            assertTrue(failure("{{ messages[0].content|" + name + " }}", ChatTemplate.Limits.DEFAULT)
                    .endsWith("'" + bare + "' is disabled in this context"), name);
        }
        for (String tag : List.of("{% include 'tokenizer_config.json' %}", "{% import 'x' as y %}", "{% from 'x' import y %}",
                "{% extends 'x' %}")) {
            assertTrue(failure(tag, ChatTemplate.Limits.DEFAULT).contains("is disabled in this context"), tag);
        }
    }

    @Test
    void stringsAreOutputAsTheyAreControlCharactersIncluded() {
        String content = "a\u0000b\u0001\bc\u001b[0m\u007f\\u0000\\'\"'";
        assertEquals("[" + content + "|<" + content + ">]",
                render("[{{ messages[0].content }}|{{ '<' + messages[0].content + '>' }}]", List.of(ChatMessage.user(content))));
        assertEquals("['a', 1]", render("{{ ['a', 1] }}", THREE), "other values keep their Python-like output");
    }
}
