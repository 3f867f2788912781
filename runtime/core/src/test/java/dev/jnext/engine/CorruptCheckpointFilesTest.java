package dev.jnext.engine;

import dev.jnext.JnextException;
import dev.jnext.model.ModelConfig;
import dev.jnext.tokenizer.QwenTokenizer;
import dev.jnext.tokenizer.TestTokenizers;
import dev.jnext.tokenizer.TokenizerConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Issue 19: corrupt tokenizer and config files were accepted. Invalid UTF-8 is refused naming the file and the byte
 * offset (strict decoding, before any parser sees the bytes); a vocabulary that gives one id to two tokens, or an added
 * token that conflicts with the vocabulary, is refused naming both tokens and the id.
 */
class CorruptCheckpointFilesTest {
    private static final byte[] REAL = read(TestTokenizers.qwen3Dir().resolve("tokenizer.json"));

    private static byte[] read(Path p) {
        try {
            return Files.readAllBytes(p);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** {@code bytes} with {@code insert} put in right after the first occurrence of {@code after}; returns the offset. */
    private static int insertAfter(byte[] bytes, String after, byte[] insert, Path to) throws Exception {
        byte[] a = after.getBytes(StandardCharsets.UTF_8);
        int at = indexOf(bytes, a) + a.length;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(bytes, 0, at);
        out.write(insert);
        out.write(bytes, at, bytes.length - at);
        Files.write(to, out.toByteArray());
        return at;
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) if (hay[i + j] != needle[j]) continue outer;
            return i;
        }
        throw new AssertionError("not found: " + new String(needle, StandardCharsets.UTF_8));
    }

    private static String replaced(String what, String with) {
        String real = new String(REAL, StandardCharsets.UTF_8);
        if (!real.contains(what)) throw new AssertionError("not found: " + what);
        return real.replaceFirst(java.util.regex.Pattern.quote(what), java.util.regex.Matcher.quoteReplacement(with));
    }

    @Test
    void invalidUtf8InTokenizerJsonIsRefusedWithItsOffset(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("tokenizer.json");
        // an overlong "/" inside a vocabulary key: Jackson's own decoder reads it as "#/"
        int at = insertAfter(REAL, "\"#", new byte[] {(byte) 0xC0, (byte) 0xAF}, file);
        assertEquals(file + ": not valid UTF-8 (byte 0xC0 at offset " + at + ")",
                assertThrows(JnextException.class, () -> QwenTokenizer.load(dir)).getMessage());
        // a UTF-16 surrogate encoded in UTF-8, a lone continuation byte, a sequence cut by the end of the file
        byte[][] bad = {{'{', '"', 'a', (byte) 0xED, (byte) 0xA0, (byte) 0x80, '"', ':', '1', '}'},
                {'{', '"', 'a', (byte) 0x80, '"', ':', '1', '}'}, {'{', '"', 'a', (byte) 0xE2, (byte) 0x82}};
        for (byte[] b : bad) {
            Files.write(file, b);
            String byteHex = String.format("%02X", b[3] & 0xFF);
            assertEquals(file + ": not valid UTF-8 (byte 0x" + byteHex + " at offset 3)",
                    assertThrows(JnextException.class, () -> QwenTokenizer.load(dir)).getMessage());
        }
    }

    @Test
    void invalidUtf8InTheOtherJsonFilesIsRefusedWithItsOffset(@TempDir Path dir) throws Exception {
        byte[] bad = {'{', '"', 'x', '"', ':', ' ', '"', (byte) 0xC3, '(', '"', '}'};
        Path config = dir.resolve("tokenizer_config.json");
        Files.write(config, bad);
        assertEquals(config + ": not valid UTF-8 (byte 0xC3 at offset 7)",
                assertThrows(JnextException.class, () -> TokenizerConfig.read(dir)).getMessage());
        Path generation = dir.resolve("generation_config.json");
        Files.write(generation, bad);
        assertEquals(generation + ": not valid UTF-8 (byte 0xC3 at offset 7)",
                assertThrows(JnextException.class, () -> GenerationConfig.read(dir)).getMessage());
        Path model = dir.resolve("config.json");
        Files.write(model, bad);
        assertEquals(model + ": not valid UTF-8 (byte 0xC3 at offset 7)",
                assertThrows(JnextException.class, () -> ModelConfig.load(dir)).getMessage());
    }

    @Test
    void oneIdForTwoTokensIsRefusedNamingBoth(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, replaced("\"$\": 3,", "\"$\": 2,"));
        assertEquals(file + ": token id 2 is given to two tokens of model.vocab, \"#\" and \"$\"",
                assertThrows(JnextException.class, () -> QwenTokenizer.load(dir)).getMessage());
        Files.writeString(file, replaced("\"$\": 3,", "\"#\": 3,"));
        assertEquals(file + ": model.vocab lists \"#\" twice (ids 2 and 3)",
                assertThrows(JnextException.class, () -> QwenTokenizer.load(dir)).getMessage());
    }

    @Test
    void addedTokensThatConflictWithTheVocabularyAreRefusedAndIdenticalOnesAccepted(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("tokenizer.json");
        Files.writeString(file, replaced("\"id\": 151643,", "\"id\": 5,"));
        assertEquals(file + ": added token \"<|endoftext|>\" has id 5, which is already the id of \"&\"",
                assertThrows(JnextException.class, () -> QwenTokenizer.load(dir)).getMessage());
        Files.writeString(file, replaced("\"content\": \"<|im_start|>\"", "\"content\": \"<|endoftext|>\""));
        assertEquals(file + ": added token \"<|endoftext|>\" has id 151644 but the token already has id 151643",
                assertThrows(JnextException.class, () -> QwenTokenizer.load(dir)).getMessage());
        // an added token that repeats a vocabulary entry exactly (as many tokenizer.json files do) is fine
        Files.writeString(file, replaced("\"added_tokens\": [", "\"added_tokens\": [{\"id\": 2, \"content\": \"#\", \"special\": false},"));
        QwenTokenizer t = QwenTokenizer.load(dir);
        assertEquals(2, t.idOf("#").orElseThrow());
        assertEquals(151669, t.vocabSize());
    }
}
