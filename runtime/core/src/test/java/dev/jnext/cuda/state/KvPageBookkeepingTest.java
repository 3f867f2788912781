package dev.jnext.cuda.state;

import dev.jnext.JnextException;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Page allocation, page tables and the packed attention metadata, without a GPU. */
class KvPageBookkeepingTest {

    @Test
    void sequencesGrowingInTurnsGetInterleavedPagesAndReleaseReturnsThem() {
        PageAllocator pool = new PageAllocator(10, 64);
        PageTable a = pool.newSequence(), b = pool.newSequence();
        a.reserve(1);
        b.reserve(64);
        a.reserve(65);
        b.reserve(130);
        assertArrayEquals(new int[] {0, 2}, a.pages());
        assertArrayEquals(new int[] {1, 3, 4}, b.pages());
        assertEquals(128, a.capacityTokens());
        assertEquals(5, pool.freePages());
        a.reserve(100);  // within capacity: nothing taken
        assertEquals(5, pool.freePages());
        a.release();
        assertEquals(7, pool.freePages());
        PageTable c = pool.newSequence();
        c.reserve(64 * 3);
        assertArrayEquals(new int[] {0, 2, 5}, c.pages(), "lowest free pages first, reused after release");
        assertThrows(IllegalStateException.class, () -> a.reserve(1));
        a.release();  // idempotent
        assertEquals(4, pool.freePages());
    }

    @Test
    void exhaustionNamesTheNumbersAndTakesNothing() {
        PageAllocator pool = new PageAllocator(4, 64);
        PageTable a = pool.newSequence();
        a.reserve(64);
        JnextException e = assertThrows(JnextException.class, () -> a.reserve(64 * 5 + 1));
        assertTrue(e.getMessage().contains("5 more pages") && e.getMessage().contains("3 of 4 free"), e.getMessage());
        assertEquals(1, a.pageCount());
        assertEquals(3, pool.freePages());
    }

    @Test
    void packLaysOutCuSeqlensPastAndPageRowsWithPadding() {
        PageAllocator pool = new PageAllocator(16, 64);
        PageTable a = pool.newSequence(), b = pool.newSequence();
        a.reserve(1);
        b.reserve(1);
        a.reserve(70);
        b.reserve(200);
        int maxSeqs = 4, maxPages = 5;
        int[] out = new int[AttentionBatch.intsFor(maxSeqs, maxPages)];
        int total = AttentionBatch.pack(List.of(new AttentionBatch.Sequence(a, 60, 10), AttentionBatch.Sequence.padding(1),
                new AttentionBatch.Sequence(b, 0, 200)), maxSeqs, maxPages, out);
        assertEquals(211, total);
        assertArrayEquals(new int[] {0, 10, 11, 211, 211}, Arrays.copyOfRange(out, 0, 5), "cu_seqlens");
        assertArrayEquals(new int[] {60, -1, 0, -1}, Arrays.copyOfRange(out, 5, 9), "past");
        int table = 2 * maxSeqs + 1;
        assertArrayEquals(new int[] {0, 2, -1, -1, -1}, Arrays.copyOfRange(out, table, table + 5), "sequence 0 pages");
        assertArrayEquals(new int[] {-1, -1, -1, -1, -1}, Arrays.copyOfRange(out, table + 5, table + 10), "padding row");
        assertArrayEquals(new int[] {1, 3, 4, 5, -1}, Arrays.copyOfRange(out, table + 10, table + 15), "sequence 2 pages");
    }

    @Test
    void packRejectsShortTablesOversizedBatchesAndTooManyPages() {
        PageAllocator pool = new PageAllocator(16, 64);
        PageTable a = pool.newSequence();
        a.reserve(64);
        int[] out = new int[AttentionBatch.intsFor(2, 2)];
        JnextException shortTable = assertThrows(JnextException.class,
                () -> AttentionBatch.pack(List.of(new AttentionBatch.Sequence(a, 60, 5)), 2, 2, out));
        assertTrue(shortTable.getMessage().contains("60 cached + 5 new") && shortTable.getMessage().contains("reserve first"),
                shortTable.getMessage());
        a.reserve(64 * 3);
        JnextException wide = assertThrows(JnextException.class,
                () -> AttentionBatch.pack(List.of(new AttentionBatch.Sequence(a, 100, 80)), 2, 2, out));
        assertTrue(wide.getMessage().contains("more than the 2 per sequence"), wide.getMessage());
        List<AttentionBatch.Sequence> three = List.of(AttentionBatch.Sequence.padding(1), AttentionBatch.Sequence.padding(1),
                AttentionBatch.Sequence.padding(1));
        JnextException many = assertThrows(JnextException.class, () -> AttentionBatch.pack(three, 2, 2, out));
        assertTrue(many.getMessage().contains("3 sequences exceeds the 2"), many.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new AttentionBatch.Sequence(a, -2, 1));
        assertThrows(IllegalArgumentException.class, () -> new AttentionBatch.Sequence(null, 0, 1));
    }

    @Test
    void poolGeometryAndOffsets() {
        KvPages.Geometry g = new KvPages.Geometry(12, 2, 256, 1000);
        assertEquals(2L * 2 * 64 * 256, g.pageBytes(), "one page of K: 2 heads x 64 tokens x 256 dims bf16");
        assertEquals(2 * g.pageBytes() * 1000 * 12, g.totalBytes());
        assertEquals(1000, KvPages.Geometry.pagesFitting(g.totalBytes() + 5, 12, 2, 256));
        assertThrows(IllegalArgumentException.class, () -> new KvPages.Geometry(1, 2, 100, 10));
        assertThrows(IllegalArgumentException.class, () -> new KvPages.Geometry(1, 0, 128, 10));
    }
}
