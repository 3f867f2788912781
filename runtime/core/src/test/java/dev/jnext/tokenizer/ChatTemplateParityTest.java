package dev.jnext.tokenizer;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Qwen3 chat template rendered by jinjava equals transformers 5.17's apply_chat_template (goldens). */
class ChatTemplateParityTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final ChatTemplate template = ChatTemplate.load(TestTokenizers.qwen3Dir());
    private final QwenTokenizer tok = TestTokenizers.qwen3();

    private static Map<String, JsonNode> conversations() throws Exception {
        try (InputStream in = ChatTemplateParityTest.class.getResourceAsStream("/dev/jnext/tokenizer/goldens/chat_conversations.json")) {
            Map<String, JsonNode> byId = new HashMap<>();
            for (JsonNode c : JSON.readTree(in)) byId.put(c.get("id").asText(), c);
            return byId;
        }
    }

    @Test
    void renderedPromptsAndTheirIdsMatchHuggingFace() throws Exception {
        Map<String, JsonNode> conversations = conversations();
        List<JsonNode> goldens = Goldens.lines("chat.jsonl");
        // every conversation has both goldens, except hostile-* ones added since the GPU host last ran
        // (ChatTemplateLiteralContentTest checks those against the hand-written prompt until then)
        long expected = 2 * conversations.keySet().stream().filter(id -> !id.startsWith("hostile-")).count();
        assertTrue(goldens.size() >= expected && expected >= 60, goldens.size() + " goldens for " + expected / 2 + " conversations");
        List<String> failures = new ArrayList<>();
        for (JsonNode g : goldens) {
            JsonNode conv = conversations.get(g.get("id").asText());
            List<Map<String, Object>> messages = JSON.convertValue(conv.get("messages"), new TypeReference<>() {});
            List<Object> tools = conv.has("tools") ? JSON.convertValue(conv.get("tools"), new TypeReference<>() {}) : null;
            Map<String, Object> kwargs = JSON.convertValue(g.get("kwargs"), new TypeReference<>() {});
            boolean gen = g.get("add_generation_prompt").asBoolean();
            String label = g.get("id").asText() + " (add_generation_prompt=" + gen + ")";
            String prompt;
            try {
                prompt = template.render(messages, tools, gen, kwargs);
            } catch (RuntimeException e) {
                failures.add(label + ": " + e.getMessage());
                continue;
            }
            if (!g.get("prompt").asText().equals(prompt)) {
                failures.add(label + ":\n--- hf ---\n" + g.get("prompt").asText() + "\n--- jnext ---\n" + prompt);
            } else if (!Arrays.equals(Goldens.ints(g.get("ids")), tok.encode(prompt))) {
                failures.add(label + ": prompt ids differ");
            }
        }
        assertTrue(failures.isEmpty(), failures.size() + " of " + goldens.size() + " prompts differ:\n" + String.join("\n", failures.subList(0, Math.min(6, failures.size()))));
    }
}
