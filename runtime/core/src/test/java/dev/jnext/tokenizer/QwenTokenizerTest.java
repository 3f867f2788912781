package dev.jnext.tokenizer;

import dev.jnext.JnextException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class QwenTokenizerTest {
    private final QwenTokenizer tok = TestTokenizers.qwen3();

    @Test
    void knownIdsFromTheQwenDocumentation() {
        // Qwen2Tokenizer's docstring in transformers: "Hello world" -> [9707, 1879], " Hello world" -> [21927, 1879]
        assertArrayEquals(new int[] {9707, 1879}, tok.encode("Hello world"));
        assertArrayEquals(new int[] {21927, 1879}, tok.encode(" Hello world"));
    }

    @Test
    void vocabularyHas151643BpeTokensAnd26Added() {
        assertEquals(151669, tok.vocabSize());
        assertEquals(26, tok.addedTokens().size());
        assertEquals(151645, tok.idOf("<|im_end|>").orElseThrow());
        assertTrue(tok.isSpecial(151645));
        assertTrue(!tok.isSpecial(tok.idOf("<think>").orElseThrow()), "<think> is added but not special");
    }

    @Test
    void addedTokensAreMatchedBeforeSplittingAndSpecialOnesCanBeSkipped() {
        int[] ids = tok.encode("a<|im_end|>b<think>");
        assertArrayEquals(new int[] {64, 151645, 65, 151667}, ids);
        assertEquals("a<|im_end|>b<think>", tok.decode(ids));
        assertEquals("ab<think>", tok.decode(ids, true));
    }

    @Test
    void loneSurrogatesEncodeAsTheReplacementCharacter() {
        assertArrayEquals(tok.encode("x\uFFFDy"), tok.encode("x\uD800y"));
        assertArrayEquals(tok.encode("\uFFFD"), tok.encode("\uDC00"));
        assertEquals("😀", tok.decode(tok.encode("😀"))); // a proper pair is untouched
    }

    @Test
    void streamingHoldsBackACharacterSplitAcrossTokens() {
        int[] ids = tok.encode("👨‍👩‍👧"); // byte-level tokens that cut through the emoji's UTF-8
        StreamDecoder stream = tok.streamDecoder(false);
        List<String> pieces = new ArrayList<>();
        for (int id : ids) pieces.add(stream.next(id));
        assertTrue(pieces.contains(""), "some token must end mid-character: " + pieces);
        for (String p : pieces) assertTrue(p.indexOf('\uFFFD') < 0 && !endsWithHighSurrogate(p), "broken piece " + p);
        assertEquals("👨‍👩‍👧", String.join("", pieces) + stream.finish());
        assertTrue(!stream.hasPending());
    }

    @Test
    void streamingFinishRepairsAnUnfinishedCharacter() {
        int[] ids = tok.encode("中");
        assertTrue(ids.length == 1);
        byte[] bytes = "中".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        StreamDecoder stream = tok.streamDecoder(false);
        assertEquals("", stream.next(tok.byteId(bytes[0])));
        assertEquals("", stream.next(tok.byteId(bytes[1])));
        assertEquals("\uFFFD", stream.finish());
    }

    private static boolean endsWithHighSurrogate(String s) {
        return !s.isEmpty() && Character.isHighSurrogate(s.charAt(s.length() - 1));
    }

    @Test
    void concurrentEncodersShareTheWordCacheSafely() throws Exception {
        List<String> texts = new ArrayList<>();
        for (var row : Goldens.lines("encode.jsonl")) texts.add(row.get("text").asText());
        QwenTokenizer fresh = tok.withoutWordCache(); // reference ids, computed without any cache
        List<int[]> expected = texts.stream().map(fresh::encode).toList();
        QwenTokenizer shared = QwenTokenizer.load(TestTokenizers.qwen3Dir());
        try (var pool = java.util.concurrent.Executors.newFixedThreadPool(4)) {
            List<java.util.concurrent.Future<Boolean>> results = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                int offset = t;
                results.add(pool.submit(() -> {
                    for (int round = 0; round < 5; round++) {
                        for (int i = 0; i < texts.size(); i++) {
                            int k = (i * 7 + offset * 13 + round) % texts.size();
                            if (!java.util.Arrays.equals(expected.get(k), shared.encode(texts.get(k)))) return false;
                        }
                    }
                    return true;
                }));
            }
            for (var f : results) assertTrue(f.get());
        }
    }

    @Test
    void unknownIdsAreRefusedByName() {
        var e = assertThrows(JnextException.class, () -> tok.decode(new int[] {1, 151669}));
        assertTrue(e.getMessage().contains("token id 151669"), e.getMessage());
        assertThrows(JnextException.class, () -> tok.decode(new int[] {-1}));
        assertThrows(JnextException.class, () -> tok.streamDecoder(true).next(999_999));
    }

    @Test
    void missingTokenizerFileIsNamed(@TempDir Path dir) {
        var e = assertThrows(JnextException.class, () -> QwenTokenizer.load(dir));
        assertTrue(e.getMessage().contains(dir.resolve("tokenizer.json").toString()), e.getMessage());
    }

    @Test
    void otherTokenizerPipelinesAreRefusedNotMisread(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("tokenizer.json"), """
                {"normalizer": {"type": "NFKC"}, "pre_tokenizer": null,
                 "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}""");
        var e = assertThrows(JnextException.class, () -> QwenTokenizer.load(dir));
        assertTrue(e.getMessage().contains("normalizer") && e.getMessage().contains("not supported"), e.getMessage());
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": ");
        e = assertThrows(JnextException.class, () -> QwenTokenizer.load(dir));
        assertTrue(e.getMessage().contains("tokenizer.json"), e.getMessage());
    }

    @Test
    void brokenTokenizerJsonGivesOneLineAndIdsAreCheckedBeforeAllocating(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, "{\"model\": ");
        var e = assertThrows(JnextException.class, () -> QwenTokenizer.load(dir));
        assertTrue(e.getMessage().startsWith(file + ": not valid JSON: ") && !e.getMessage().contains("\n")
                && !e.getMessage().contains("[Source"), e.getMessage());
        String real = Files.readString(TestTokenizers.qwen3Dir().resolve("tokenizer.json"));
        Files.writeString(file, real + "{}");
        assertEquals(file + ": unexpected content after the top-level JSON object",
                assertThrows(JnextException.class, () -> QwenTokenizer.load(dir)).getMessage());
        Files.writeString(file, real.replaceFirst("\"id\": 151643", "\"id\": 2147483647"));
        assertEquals(file + ": token id 2147483647 lies beyond the 151669 tokens the file defines (ids must number the "
                + "tokens from 0)", assertThrows(JnextException.class, () -> QwenTokenizer.load(dir)).getMessage());
        Files.writeString(file, real.replaceFirst("\"id\": 151643", "\"id\": -2"));
        assertTrue(assertThrows(JnextException.class, () -> QwenTokenizer.load(dir)).getMessage()
                .endsWith("has a negative id -2"));
    }
}
