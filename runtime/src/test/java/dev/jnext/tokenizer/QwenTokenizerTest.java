package dev.jnext.tokenizer;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

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
    }
}
