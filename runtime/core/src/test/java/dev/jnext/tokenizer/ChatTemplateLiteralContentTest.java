package dev.jnext.tokenizer;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.io.InputStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Message content, tool schemas and tool calls are data: the Qwen3 template renders hostile content (tags,
 * expressions, comments, unbalanced delimiters) literally, exactly as transformers does. The hostile conversations
 * ({@code hostile-*} in chat_conversations.json) are checked against transformers' goldens once the GPU host has
 * regenerated them, and until then against {@link Qwen3PromptShape}, which this test first proves against every
 * golden of a shape it covers.
 */
class ChatTemplateLiteralContentTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final ChatTemplate template = ChatTemplate.load(TestTokenizers.qwen3Dir());

    record Case(String id, List<Map<String, Object>> messages, List<Object> tools, Map<String, Object> kwargs) {}

    static List<Case> conversations() throws Exception {
        try (InputStream in = ChatTemplateLiteralContentTest.class.getResourceAsStream(
                "/dev/jnext/tokenizer/goldens/chat_conversations.json")) {
            List<Case> out = new ArrayList<>();
            for (JsonNode c : JSON.readTree(in)) {
                out.add(new Case(c.get("id").asText(),
                        JSON.convertValue(c.get("messages"), new TypeReference<>() {}),
                        c.has("tools") ? JSON.convertValue(c.get("tools"), new TypeReference<>() {}) : null,
                        c.has("kwargs") ? JSON.convertValue(c.get("kwargs"), new TypeReference<>() {}) : Map.of()));
            }
            return out;
        }
    }

    private static Map<String, String> goldenPrompts() {
        Map<String, String> out = new HashMap<>();
        for (JsonNode g : Goldens.lines("chat.jsonl")) {
            out.put(g.get("id").asText() + "|" + g.get("add_generation_prompt").asBoolean(), g.get("prompt").asText());
        }
        return out;
    }

    @Test
    void theHandWrittenShapeEqualsTransformersOnEveryGoldenItCovers() throws Exception {
        Map<String, String> goldens = goldenPrompts();
        int covered = 0;
        for (Case c : conversations()) {
            for (boolean gen : new boolean[]{false, true}) {
                String golden = goldens.get(c.id() + "|" + gen);
                String shape = Qwen3PromptShape.expected(c.messages(), c.tools(), gen, c.kwargs());
                if (golden == null || shape == null) continue;
                assertEquals(golden, shape, c.id() + " add_generation_prompt=" + gen);
                covered++;
            }
        }
        assertTrue(covered >= 40, "the shape covers " + covered + " goldens");
    }

    @Test
    void hostileContentIsRenderedLiterallyAsTransformersDoes() throws Exception {
        Map<String, String> goldens = goldenPrompts();
        int hostile = 0;
        for (Case c : conversations()) {
            if (!c.id().startsWith("hostile-")) continue;
            hostile++;
            for (boolean gen : new boolean[]{false, true}) {
                String expected = goldens.get(c.id() + "|" + gen);
                if (expected == null) expected = Qwen3PromptShape.expected(c.messages(), c.tools(), gen, c.kwargs());
                assertNotNull(expected, c.id() + " has no golden and a shape the hand-written prompt does not cover");
                assertEquals(expected, template.render(c.messages(), c.tools(), gen, c.kwargs()),
                        c.id() + " add_generation_prompt=" + gen);
            }
        }
        assertEquals(9, hostile);
    }

    @Test
    void theCasesOfTheIssueRenderVerbatim() {
        for (String content : List.of("{{ 7*7 }} and {% set x = 1 %}hi", "{{ messages|length }}", "{{ raise_exception('boom') }}")) {
            assertEquals("<|im_start|>system\n" + content + "<|im_end|>\n<|im_start|>user\n" + content
                            + "<|im_end|>\n<|im_start|>assistant\n",
                    template.render(List.of(ChatMessage.system(content), ChatMessage.user(content)), true));
        }
    }
}
