package dev.jnext.tokenizer;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BytePairMergesTest {
    private final QwenTokenizer tok = TestTokenizers.qwen3();

    private int[] byteIds(String word) {
        byte[] bytes = word.getBytes(StandardCharsets.UTF_8);
        int[] ids = new int[bytes.length];
        for (int i = 0; i < bytes.length; i++) ids[i] = tok.byteId(bytes[i]);
        return ids;
    }

    @Test
    void heapAndScanMergeTheSameWay() {
        BytePairMerges merges = tok.merges();
        String alphabet = "aaabbeinstr  ééß中文字😀";
        Random rnd = new Random(11);
        for (int trial = 0; trial < 2000; trial++) {
            StringBuilder b = new StringBuilder();
            int len = 1 + rnd.nextInt(trial < 1000 ? 12 : 120);
            for (int i = 0; i < len; i++) b.appendCodePoint(alphabet.codePointAt(alphabet.offsetByCodePoints(0, rnd.nextInt(alphabet.codePointCount(0, alphabet.length())))));
            int[] scan = byteIds(b.toString()), heap = scan.clone();
            int n1 = merges.mergeByScan(scan, scan.length), n2 = merges.mergeWithHeap(heap, heap.length);
            assertArrayEquals(Arrays.copyOf(scan, n1), Arrays.copyOf(heap, n2), b.toString());
        }
    }

    @Test
    void mergesFollowRankNotPosition() {
        BytePairMerges merges = tok.merges();
        assertEquals(151387, merges.size());
        // "Ġ Ġ" is merge #0 of Qwen's merges: the lowest rank there is
        int space = tok.byteId(' ');
        assertEquals(0, merges.rank(space, space));
        assertEquals(Integer.MAX_VALUE, merges.rank(tok.byteId('q'), tok.byteId('\n')));
        int[] word = byteIds("hello");
        int n = merges.merge(word, word.length);
        assertEquals(1, n);
        assertEquals(tok.idOf("hello").orElseThrow(), word[0]);
    }

    @Test
    void longWordsStillEncodeToFewTokens() {
        int[] ids = tok.encode("a".repeat(5000));
        assertTrue(ids.length < 700, "5000 'a' became " + ids.length + " tokens");
        assertEquals("a".repeat(5000), tok.decode(ids));
    }
}
