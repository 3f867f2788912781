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
}
