package dev.jnext.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Ids and decoded text identical to Hugging Face tokenizers 0.23.2 on every corpus string (goldens). */
class TokenizerParityTest {
    private final QwenTokenizer tok = TestTokenizers.qwen3();

    @Test
    void encodeMatchesHuggingFaceOnTheWholeCorpus() {
        List<JsonNode> rows = Goldens.lines("encode.jsonl");
        assertTrue(rows.size() >= 300, "corpus has " + rows.size() + " strings");
        List<String> failures = new ArrayList<>();
        for (JsonNode row : rows) {
            int[] expected = Goldens.ints(row.get("ids"));
            int[] actual = tok.encode(row.get("text").asText());
            if (!Arrays.equals(expected, actual)) {
                failures.add(row.get("id").asText() + " " + quote(row.get("text").asText()) + "\n  hf:    "
                        + Arrays.toString(expected) + "\n  jnext: " + Arrays.toString(actual)
                        + "\n  hf pieces: " + row.get("pieces"));
            }
        }
        assertTrue(failures.isEmpty(), failures.size() + " of " + rows.size() + " strings differ:\n" + String.join("\n", failures));
    }

    @Test
    void uncachedEncodeMatchesToo() {
        QwenTokenizer uncached = tok.withoutWordCache();
        for (JsonNode row : Goldens.lines("encode.jsonl")) {
            assertEquals(Arrays.toString(Goldens.ints(row.get("ids"))), Arrays.toString(uncached.encode(row.get("text").asText())),
                    row.get("id").asText());
        }
    }

    @Test
    void decodeMatchesHuggingFaceOnTheWholeCorpus() {
        for (JsonNode row : Goldens.lines("encode.jsonl")) {
            int[] ids = Goldens.ints(row.get("ids"));
            String id = row.get("id").asText();
            assertEquals(row.get("decoded").asText(), tok.decode(ids), id);
            assertEquals(row.get("decoded_skip_special").asText(), tok.decode(ids, true), id + " (skip special)");
        }
    }

    @Test
    void decodeOfRandomIdSequencesMatchesIncludingBrokenUtf8() {
        List<JsonNode> rows = Goldens.lines("decode.jsonl");
        assertEquals(400, rows.size());
        int replaced = 0;
        for (JsonNode row : rows) {
            int[] ids = Goldens.ints(row.get("ids"));
            String expected = row.get("decoded").asText();
            assertEquals(expected, tok.decode(ids), Arrays.toString(ids));
            assertEquals(row.get("decoded_skip_special").asText(), tok.decode(ids, true), Arrays.toString(ids));
            if (expected.indexOf('\uFFFD') >= 0) replaced++;
        }
        assertTrue(replaced > 10, "the random sequences should exercise lossy UTF-8 repair; only " + replaced + " did");
    }

    @Test
    void streamingDecodeConcatenatesToTheFullDecode() {
        for (JsonNode row : Goldens.lines("decode.jsonl")) {
            int[] ids = Goldens.ints(row.get("ids"));
            StreamDecoder stream = tok.streamDecoder(false);
            StringBuilder text = new StringBuilder();
            for (int id : ids) text.append(stream.next(id));
            text.append(stream.finish());
            assertEquals(row.get("decoded").asText(), text.toString(), Arrays.toString(ids));
        }
    }

    static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        s.codePoints().limit(120).forEach(c -> {
            if (c < 0x20 || (c >= 0x7F && c < 0xA0) || c == 0x2028 || c == 0x2029) b.append(String.format("\\u%04x", c));
            else b.appendCodePoint(c);
        });
        return b.append(s.length() > 120 ? "...\"" : "\"").toString();
    }
}
