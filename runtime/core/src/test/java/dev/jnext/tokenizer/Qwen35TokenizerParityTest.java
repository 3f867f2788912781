package dev.jnext.tokenizer;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Qwen3.5 tokenizer as transformers 5.17's {@code Qwen3_5Tokenizer} defines it, over a synthetic vocabulary
 * (src/test/resources/dev/jnext/tokenizer/qwen35, made by src/reference/qwen3_5_tokenizer_goldens.py): its
 * pre-tokenizer (combining marks join letter runs), ids, decoded text and special tokens equal Hugging Face
 * tokenizers' on the corpus and on strings of combining marks. The chat template part needs a real Qwen3.5
 * chat_template.jinja, which is not committed: {@code -Djnext.qwen35.chat=DIR} (the script's --chat-out folder).
 */
class Qwen35TokenizerParityTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    static Path dir() {
        try {
            return Path.of(Qwen35TokenizerParityTest.class.getResource("/dev/jnext/tokenizer/qwen35/tokenizer.json").toURI())
                    .getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static List<JsonNode> lines(Path file) {
        try {
            List<JsonNode> rows = new ArrayList<>();
            for (String line : Files.readAllLines(file)) if (!line.isBlank()) rows.add(JSON.readTree(line));
            return rows;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private final QwenTokenizer tok = QwenTokenizer.load(dir());

    @Test
    void thePreTokenizerSplitsAsQwen35s() {
        List<String> failures = new ArrayList<>();
        int marks = 0;
        for (JsonNode row : lines(dir().resolve("encode.jsonl"))) {
            String text = java.text.Normalizer.normalize(row.get("text").asText(), java.text.Normalizer.Form.NFC);
            List<String> pieces = new ArrayList<>();
            QwenPreTokenizer.split(text, 0, text.length(), true, (s, e) -> pieces.add(ByteLevel.spell(text.substring(s, e).getBytes(java.nio.charset.StandardCharsets.UTF_8))));
            List<String> expected = new ArrayList<>();
            row.get("pieces").forEach(p -> expected.add(p.asText()));
            if (!expected.equals(pieces)) failures.add(row.get("id").asText() + ": hf " + expected + " jnext " + pieces);
            if (row.get("id").asText().startsWith("marks-")) marks++;
        }
        assertTrue(marks >= 20, marks + " combining-mark strings");
        assertTrue(failures.isEmpty(), failures.size() + " strings split differently:\n" + String.join("\n", failures));
    }

    @Test
    void theQwen3PatternStillSplitsMarksAsSymbols() {
        List<String> q3 = new ArrayList<>();
        List<String> q35 = new ArrayList<>();
        String text = "cafe\u0301 \u0301x";
        QwenPreTokenizer.split(text, 0, text.length(), false, (s, e) -> q3.add(text.substring(s, e)));
        QwenPreTokenizer.split(text, 0, text.length(), true, (s, e) -> q35.add(text.substring(s, e)));
        assertEquals(List.of("cafe", "\u0301", " \u0301", "x"), q3);
        assertEquals(List.of("cafe\u0301", " \u0301x"), q35);
    }

    @Test
    void idsAndDecodedTextMatchHuggingFace() {
        List<String> failures = new ArrayList<>();
        List<JsonNode> rows = lines(dir().resolve("encode.jsonl"));
        for (JsonNode row : rows) {
            int[] expected = Goldens.ints(row.get("ids"));
            int[] actual = tok.encode(row.get("text").asText());
            if (!Arrays.equals(expected, actual)) {
                failures.add(row.get("id").asText() + ": hf " + Arrays.toString(expected) + " jnext " + Arrays.toString(actual));
                continue;
            }
            assertEquals(row.get("decoded").asText(), tok.decode(actual), row.get("id").asText());
            assertEquals(row.get("decoded_skip_special").asText(), tok.decode(actual, true), row.get("id").asText());
        }
        assertTrue(rows.size() > 450, rows.size() + " strings");
        assertTrue(failures.isEmpty(), failures.size() + " of " + rows.size() + " strings differ:\n" + String.join("\n", failures));
    }

    @Test
    void randomIdSequencesDecodeAsHuggingFaceDecodesThem() {
        for (JsonNode row : lines(dir().resolve("decode.jsonl"))) {
            int[] ids = Goldens.ints(row.get("ids"));
            assertEquals(row.get("decoded").asText(), tok.decode(ids), Arrays.toString(ids));
            assertEquals(row.get("decoded_skip_special").asText(), tok.decode(ids, true), Arrays.toString(ids));
        }
    }

    @Test
    void theSpecialTokensAreTheClasss() throws IOException {
        JsonNode meta = JSON.readTree(dir().resolve("meta.json").toFile());
        TokenizerConfig config = TokenizerConfig.read(dir());
        assertEquals("<|endoftext|>", meta.get("eos_token").asText());
        assertEquals(meta.get("eos_token_id").asInt(), tok.idOf("<|endoftext|>").getAsInt());
        assertEquals("<|endoftext|>", config.eosToken().orElseThrow());
        assertTrue(meta.get("bos_token").isNull());
        // special tokens are matched before the pre-tokenizer and kept whole
        int imStart = tok.idOf("<|im_start|>").getAsInt();
        int[] ids = tok.encode("<|im_start|>user\n<think>\n\n</think>\n\n<tool_call>");
        assertEquals(imStart, ids[0]);
        assertEquals(tok.idOf("<tool_call>").getAsInt(), ids[ids.length - 1]);
    }

    /** With -Djnext.qwen35.chat=DIR: the real chat template rendered by jinjava equals apply_chat_template. */
    @Test
    void theChatTemplateRendersAsTransformersDoes() {
        String chat = System.getProperty("jnext.qwen35.chat");
        Assumptions.assumeTrue(chat != null && !chat.isBlank(),
                "needs a Qwen3.5 chat_template.jinja and its goldens: -Djnext.qwen35.chat=DIR");
        Path d = Path.of(chat);
        ChatTemplate template = ChatTemplate.load(d);
        List<String> failures = new ArrayList<>();
        List<JsonNode> rows = lines(d.resolve("chat.jsonl"));
        for (JsonNode g : rows) {
            List<Map<String, Object>> messages = JSON.convertValue(g.get("messages"), new TypeReference<>() {});
            List<Object> tools = g.get("tools").isNull() ? null : JSON.convertValue(g.get("tools"), new TypeReference<>() {});
            Map<String, Object> kwargs = JSON.convertValue(g.get("kwargs"), new TypeReference<>() {});
            boolean gen = g.get("add_generation_prompt").asBoolean();
            String label = g.get("id").asText() + " gen=" + gen + " " + kwargs;
            try {
                String prompt = template.render(messages, tools, gen, kwargs);
                if (!prompt.equals(g.get("prompt").asText())) {
                    failures.add(label + "\n  hf:    " + JSON.valueToTree(g.get("prompt").asText()) + "\n  jnext: "
                            + JSON.valueToTree(prompt));
                } else if (!Arrays.equals(Goldens.ints(g.get("ids")), tok.encode(prompt))) {
                    failures.add(label + ": same prompt, other ids");
                }
            } catch (RuntimeException e) {
                failures.add(label + ": " + e.getMessage());
            }
        }
        // what the template refuses (raise_exception), jnext refuses too
        int refused = 0;
        try {
            for (JsonNode err : JSON.readTree(d.resolve("chat_errors.json").toFile())) {
                JsonNode conv = conversation(err.get("id").asText(), rows, d);
                if (conv == null) continue;
                List<Map<String, Object>> messages = JSON.convertValue(conv.get("messages"), new TypeReference<>() {});
                List<Object> tools = conv.path("tools").isMissingNode() || conv.path("tools").isNull() ? null
                        : JSON.convertValue(conv.get("tools"), new TypeReference<>() {});
                Map<String, Object> kwargs = JSON.convertValue(err.get("kwargs"), new TypeReference<>() {});
                try {
                    template.render(messages, tools, err.get("add_generation_prompt").asBoolean(), kwargs);
                    failures.add(err.get("id").asText() + ": transformers refuses it (" + err.get("error").asText()
                            + ") but jnext rendered it");
                } catch (RuntimeException e) {
                    refused++;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        System.out.println("qwen3.5 chat template: " + (rows.size() - failures.size()) + " of " + rows.size()
                + " prompts identical to transformers, " + refused + " refusals shared");
        assertTrue(failures.isEmpty(), failures.size() + " of " + rows.size() + " prompts differ:\n"
                + String.join("\n", failures));
    }

    /** The conversation {@code id}, from src/reference's conversation files (read relative to the repository root). */
    static JsonNode conversation(String id, List<JsonNode> rows, Path chatDir) throws IOException {
        Path root = Path.of("").toAbsolutePath();
        while (root != null && !Files.isDirectory(root.resolve("src/reference"))) root = root.getParent();
        if (root == null) return null;
        for (String f : List.of("chat_conversations.json", "qwen3_5_chat_conversations.json")) {
            for (JsonNode c : JSON.readTree(root.resolve("src/reference").resolve(f).toFile())) {
                if (c.get("id").asText().equals(id)) return c;
            }
        }
        return null;
    }
}
