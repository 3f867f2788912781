package dev.jnext.cpu;

import dev.jnext.backend.ModelBackend.StepInput;
import dev.jnext.backend.ModelBackend.StepOutput;
import dev.jnext.backend.PrefixCacheOptions;
import dev.jnext.backend.PrefixCacheStats;
import dev.jnext.backend.SamplingParams;
import dev.jnext.backend.prefix.PrefixTree;
import dev.jnext.model.LayerType;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.TinyModels;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CPU backend's prefix cache under pressure: a node a running sequence holds is never evicted. */
class CpuPrefixCacheTest {
    @TempDir
    static Path tmp;
    static Path dir;
    static long snapshotBytes;
    static long kvBytesPerToken;

    @BeforeAll
    static void write() {
        dir = TinyModels.write(tmp.resolve("tiny"), 3);
        ModelConfig c = TinyModels.config(true, dev.jnext.model.DType.F32);
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            if (c.layerType(l) == LayerType.LINEAR_ATTENTION) {
                snapshotBytes += 4L * ((long) c.convDim() * (c.linearConvKernelDim() - 1)
                        + (long) c.linearNumValueHeads() * c.linearKeyHeadDim() * c.linearValueHeadDim());
            } else {
                kvBytesPerToken += 4L * 2 * c.numKeyValueHeads() * c.headDim();
            }
        }
    }

    private static CpuBackend backend(PrefixCacheOptions cache) {
        return new CpuBackend(Qwen3NextModel.load(dir), 4, 4096, Long.MAX_VALUE, cache);
    }

    /** Opens a slot, restores what the cache has, prefills the rest in one step; returns the first sampled output. */
    private static StepOutput prefill(CpuBackend b, int slot, int[] prompt, int restored) {
        assertEquals(restored, b.restorePrefix(slot, prompt), "tokens restored");
        return b.step(List.of(new StepInput(slot, Arrays.copyOfRange(prompt, restored, prompt.length), true, 3, true))).getFirst();
    }

    private static void assertWithinBudgets(CpuBackend b) {
        PrefixCacheStats s = b.prefixCacheStats();
        assertTrue(s.kvBytes() <= s.kvBudgetBytes() && s.snapshotBytes() <= s.snapshotBudgetBytes(), s.toString());
    }

    @Test
    void evictionUnderPressureNeverFreesANodeARunningSequenceHolds() {
        int[] a = TinyModels.ids(256, 128, 1), b = TinyModels.ids(256, 128, 2), c = TinyModels.ids(256, 128, 3);
        // a snapshot every 64 tokens, room for 3 snapshots and 520 tokens of KV
        PrefixCacheOptions tight = PrefixCacheOptions.on().withSnapshotInterval(64).withSnapshotBytes(3 * snapshotBytes)
                .withKvBytes(520 * kvBytesPerToken);
        try (CpuBackend be = backend(tight)) {
            PrefixTree<CachedKv, StateSnapshot> tree = be.prefixTree();
            int sa = be.openSequence(SamplingParams.greedy(), 128);
            prefill(be, sa, a, 0); // snapshots at 64, 128, 192, 256: the fourth evicts the oldest unheld one
            var heldA = be.heldNode(sa);
            assertNotNull(heldA);
            assertEquals(256, heldA.end());
            assertTrue(heldA.holds() > 0);
            assertWithinBudgets(be);

            // b's prefill needs snapshots and KV: it evicts a's unheld snapshots, never the node a holds
            int sb = be.openSequence(SamplingParams.greedy(), 128);
            prefill(be, sb, b, 0);
            assertTrue(tree.contains(heldA));
            assertNotNull(heldA.snapshot());
            var heldB = be.heldNode(sb);
            assertNotNull(heldB);
            assertWithinBudgets(be);
            assertTrue(be.prefixCacheStats().evictions() > 0);

            // c's first 64 tokens of KV cannot fit beside the two held paths (256 + 256 + 64 > 520): nothing of it is
            // cached, and nothing is evicted for it
            long evictions = be.prefixCacheStats().evictions();
            int sc = be.openSequence(SamplingParams.greedy(), 128);
            prefill(be, sc, c, 0);
            assertNull(be.heldNode(sc));
            assertTrue(tree.contains(heldA) && tree.contains(heldB));
            assertEquals(evictions, be.prefixCacheStats().evictions());
            assertWithinBudgets(be);

            // a new sequence extending a's prompt resumes from the node a holds, while a still runs
            int[] a2 = Arrays.copyOf(a, 300);
            System.arraycopy(TinyModels.ids(44, 128, 4), 0, a2, 256, 44);
            be.closeSequence(sc);
            int sd = be.openSequence(SamplingParams.greedy(), 128);
            StepOutput warm = prefill(be, sd, a2, 256);
            assertSame(heldA, be.heldNode(sd));
            assertEquals(2, heldA.holds());
            try (CpuBackend cold = backend(PrefixCacheOptions.off())) {
                int s = cold.openSequence(SamplingParams.greedy(), 128);
                assertEquals(0, cold.restorePrefix(s, a2));
                StepOutput ref = cold.step(List.of(new StepInput(s, a2, true, 3, true))).getFirst();
                assertEquals(ref.token(), warm.token());
                assertEquals(Float.floatToIntBits(ref.logprob()), Float.floatToIntBits(warm.logprob()), "bitwise");
                assertEquals(PrefixCacheStats.DISABLED, cold.prefixCacheStats());
            }

            // once a and d close, a's path can go: c is cached now, at a's expense
            be.closeSequence(sa);
            be.closeSequence(sd);
            assertEquals(0, heldA.holds());
            int se = be.openSequence(SamplingParams.greedy(), 128);
            prefill(be, se, c, 0);
            assertNotNull(be.heldNode(se));
            assertFalse(tree.contains(heldA));
            assertTrue(tree.contains(heldB), "b still runs");
            assertWithinBudgets(be);
        }
    }

    @Test
    void snapshotsAreTakenOnlyFromPromptsPrefilledInAlignedChunks() {
        int[] a = TinyModels.ids(200, 128, 5);
        try (CpuBackend be = backend(PrefixCacheOptions.on().withSnapshotInterval(64))) {
            // a prompt fed from an unaligned position (here 10 tokens, then the rest) leaves no snapshot
            int s = be.openSequence(SamplingParams.greedy(), 128);
            assertEquals(0, be.restorePrefix(s, a));
            be.step(List.of(new StepInput(s, Arrays.copyOf(a, 10), false, 0, true)));
            be.step(List.of(new StepInput(s, Arrays.copyOfRange(a, 10, 200), true, 0, true)));
            assertEquals(0, be.prefixCacheStats().snapshots());
            be.closeSequence(s);
            // nor do generated tokens fed back, or tokens that are not the prompt's
            s = be.openSequence(SamplingParams.greedy(), 128);
            assertEquals(0, be.restorePrefix(s, a));
            be.step(List.of(new StepInput(s, Arrays.copyOf(a, 64), false, 0, true)));
            assertEquals(1, be.prefixCacheStats().snapshots(), "64: aligned chunks from the start");
            be.step(List.of(new StepInput(s, Arrays.copyOfRange(a, 64, 65), false, 0, false)));
            be.step(List.of(new StepInput(s, Arrays.copyOfRange(a, 65, 200), true, 0, true)));
            assertEquals(1, be.prefixCacheStats().snapshots());
            // restorePrefix is once per sequence, before its first step
            int busy = s;
            assertThrows(dev.jnext.JnextException.class, () -> be.restorePrefix(busy, a));
            be.closeSequence(s);
            // in aligned chunks: 64, 128, 192 (interval and end), all mid-call captures of one 200-token step
            s = be.openSequence(SamplingParams.greedy(), 128);
            assertEquals(64, be.restorePrefix(s, a));
            be.step(List.of(new StepInput(s, Arrays.copyOfRange(a, 64, 200), true, 0, true)));
            List<Integer> at = new ArrayList<>(be.prefixTree().snapshotPositions());
            at.sort(null);
            assertEquals(List.of(64, 128, 192), at);
        }
    }

    @Test
    void budgetsOverHalfTheHeapAreCutInProportion() {
        long gib = 1L << 30;
        org.junit.jupiter.api.Assertions.assertArrayEquals(new long[]{gib, gib}, CpuBackend.heapBudgets(gib, gib, 8 * gib));
        // 1 GiB + 1 GiB on a 2 GiB heap: half the heap, split as asked
        org.junit.jupiter.api.Assertions.assertArrayEquals(new long[]{gib / 2, gib / 2}, CpuBackend.heapBudgets(gib, gib, 2 * gib));
        long[] cut = CpuBackend.heapBudgets(3 * gib, gib, 2 * gib);
        org.junit.jupiter.api.Assertions.assertEquals(3 * gib / 4, cut[0]);
        org.junit.jupiter.api.Assertions.assertEquals(gib / 4, cut[1]);
        long[] huge = CpuBackend.heapBudgets(Long.MAX_VALUE / 2, Long.MAX_VALUE / 2, 4 * gib);
        org.junit.jupiter.api.Assertions.assertTrue(huge[0] + huge[1] <= 2 * gib, java.util.Arrays.toString(huge));
    }
}
