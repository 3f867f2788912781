package dev.jnext.cuda.kernels;

import dev.jnext.cpu.Sampler;
import dev.jnext.backend.SamplingParams;
import dev.jnext.gpu.CudaGraph;
import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.GpuTestSupport;
import dev.jnext.gpu.Stream;
import dev.jnext.numeric.Bf16;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Random;

import static dev.jnext.gpu.GpuTestSupport.upload;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * On-device repetition and presence penalties over the device token history: {@link TokenHistory#observe} and
 * {@link TokenHistory#reset} against {@link TokenHistory#referenceObserve}; greedy steps with penalties against the CPU
 * {@link Sampler} fed the same bf16 logits (the penalties move the argmax, and each pick is marked seen and generated);
 * padding rows (slot −1) skipped; stochastic draws with penalties inside the reference's kept set and following its
 * distribution; a captured graph that samples and marks in every replay.
 */
@Tag("gpu")
class SamplingPenaltyGpuTest {

    private static DeviceBuffer ints(int[] v, String label) {
        return MoeFixture.uploadInts(GpuTestSupport.gpu(), v, label);
    }


    @Test
    void observeMarksTheRowsSlotsAndResetClearsOne() {
        int vocab = 1000;
        int[] ids = {5, 999, 1000, -1, 7, 31, 32, 5};
        int[] rowSlot = {0, 0, 1, 2, -1, 3, 3, 9};
        Stream s = GpuTestSupport.stream();
        try (TokenHistory h = new TokenHistory(GpuTestSupport.kernels(), 4, vocab); DeviceBuffer dIds = ints(ids, "ids");
             DeviceBuffer dSlots = ints(rowSlot, "row slots")) {
            h.observe(s, Tensors.observe(dIds, dSlots), ids.length);
            s.synchronize();
            BitSet[] ref = new BitSet[4];
            for (int i = 0; i < 4; i++) ref[i] = new BitSet();
            TokenHistoryReference.referenceObserve(ids, rowSlot, ids.length, ref, vocab);
            assertTrue(ref[0].get(5) && ref[0].get(999) && ref[1].isEmpty() && ref[2].isEmpty() && ref[3].get(31) && ref[3].get(32));
            for (int slot = 0; slot < 4; slot++) {
                assertEquals(ref[slot], h.downloadSeen(slot), "seen, slot " + slot);
                assertEquals(new BitSet(), h.downloadGenerated(slot), "observe marks nothing generated, slot " + slot);
            }
            h.reset(s, 0);
            s.synchronize();
            assertEquals(new BitSet(), h.downloadSeen(0), "slot 0 after reset");
            assertEquals(ref[3], h.downloadSeen(3), "slot 3 untouched by the reset of slot 0");
        }
    }

    /**
     * Logits N(0, 1) (the largest of 151,936 stays near 5) with a few hot ids at 10, 9.875, 9.75, ... so that penalizing the
     * top one moves the argmax, and one large negative logit (multiplied by the repetition penalty when seen).
     */
    private static short[] hotLogits(Random rnd, int vocab, int[] hot) {
        short[] l = new short[vocab];
        for (int i = 0; i < vocab; i++) l[i] = Bf16.fromFloat((float) rnd.nextGaussian());
        for (int j = 0; j < hot.length; j++) l[hot[j]] = Bf16.fromFloat(10f - 0.125f * j);
        int neg;
        do neg = rnd.nextInt(vocab); while (indexOf(hot, neg) >= 0);
        l[neg] = Bf16.fromFloat(-9.5f);
        return l;
    }

    private static int indexOf(int[] a, int v) {
        for (int i = 0; i < a.length; i++) if (a[i] == v) return i;
        return -1;
    }

    @Test
    void greedyWithPenaltiesFollowsTheCpuSamplerStepByStep() {
        int vocab = 151936, rows = 4, steps = 6;
        int[] rowSlot = {2, 0, -1, 3};
        SamplingKernel.RowParams[] p = {
                new SamplingKernel.RowParams(0f, 0, 1f, 0f, 1.3f, 0f),      // repetition only
                new SamplingKernel.RowParams(0f, 0, 1f, 0f, 1f, 0.2f),      // presence only
                new SamplingKernel.RowParams(0f, 0, 1f, 0f, 1.5f, 1f),      // a padding row
                new SamplingKernel.RowParams(0f, 0, 1f, 0f, 1.15f, 0.1f)};  // both
        Random rnd = new Random(3);
        int[][] hot = new int[rows][];
        Sampler[] cpu = new Sampler[rows];
        BitSet[] seen = new BitSet[rows], generated = new BitSet[rows];
        int[] promptIds = new int[rows * 8], promptSlots = new int[rows * 8];
        for (int r = 0; r < rows; r++) {
            hot[r] = rnd.ints(0, vocab).distinct().limit(5).toArray();
            int[] prompt = new int[8];
            prompt[0] = hot[r][0];  // the top id was in the prompt
            for (int j = 1; j < 8; j++) prompt[j] = rnd.nextInt(vocab);
            cpu[r] = new Sampler(new SamplingParams(0f, 0, 1f, 0f, p[r].repetitionPenalty(), p[r].presencePenalty(), 0), vocab);
            cpu[r].observePrompt(prompt);
            seen[r] = new BitSet();
            generated[r] = new BitSet();
            for (int id : prompt) seen[r].set(id);
            System.arraycopy(prompt, 0, promptIds, r * 8, 8);
            Arrays.fill(promptSlots, r * 8, r * 8 + 8, rowSlot[r]);
        }
        Gpu gpu = GpuTestSupport.gpu();
        Stream s = GpuTestSupport.stream();
        int moved = 0;
        try (SamplingKernel k = new SamplingKernel(GpuTestSupport.kernels(), rows); TokenHistory h = new TokenHistory(GpuTestSupport.kernels(), 4, vocab);
             DeviceBuffer dParams = SamplingFixture.params(p); DeviceBuffer dSlots = ints(rowSlot, "row slots");
             DeviceBuffer dPrompt = ints(promptIds, "prompt ids"); DeviceBuffer dPromptSlots = ints(promptSlots, "prompt slots");
             DeviceBuffer ids = gpu.allocate(4L * rows, "ids")) {
            h.observe(s, Tensors.observe(dPrompt, dPromptSlots), promptIds.length);
            for (int step = 0; step < steps; step++) {
                short[] l = new short[rows * vocab];
                for (int r = 0; r < rows; r++) System.arraycopy(hotLogits(rnd, vocab, hot[r]), 0, l, r * vocab, vocab);
                try (DeviceBuffer dl = upload(l, "logits")) {
                    ids.fill32(-7, s);
                    k.greedy(s, Tensors.sampling(dl, vocab, dParams, null, dSlots, h, ids), vocab, rows);
                    int[] got = MoeFixture.downloadInts(ids, rows);
                    for (int r = 0; r < rows; r++) {
                        if (rowSlot[r] < 0) {
                            assertEquals(-1, got[r], "padding row " + r);
                            continue;
                        }
                        float[] row = new float[vocab];
                        for (int i = 0; i < vocab; i++) row[i] = Bf16.toFloat(l[r * vocab + i]);
                        int expect = cpu[r].next(row);
                        assertEquals(expect, SamplingKernelReference.referenceArgmax(SamplingKernel.penalize(row, vocab, p[r], seen[r], generated[r]), vocab),
                                "the CPU reference is the Sampler's rule, row " + r + " step " + step);
                        assertEquals(expect, got[r], "row " + r + " step " + step);
                        if (expect != SamplingKernelReference.referenceArgmax(row, vocab)) moved++;
                        seen[r].set(expect);
                        generated[r].set(expect);
                    }
                }
            }
            for (int r = 0; r < rows; r++) {
                if (rowSlot[r] < 0) continue;
                assertEquals(seen[r], h.downloadSeen(rowSlot[r]), "seen set of row " + r);
                assertEquals(generated[r], h.downloadGenerated(rowSlot[r]), "generated set of row " + r);
            }
            assertEquals(new BitSet(), h.downloadSeen(1), "slot 1 belongs to no row");
        }
        assertTrue(moved >= steps, "the penalties moved the argmax only " + moved + " times: the test would not see them");
    }

    @Test
    void stochasticDrawsWithPenaltiesStayInTheKeptSetAndFollowItsDistribution() {
        int vocab = 4096, rows = 2048;
        Random rnd = new Random(17);
        int[] hot = rnd.ints(0, vocab).distinct().limit(12).toArray();
        short[] one = hotLogits(rnd, vocab, hot);
        for (int i = 0; i < vocab; i++) one[i] = Bf16.fromFloat(Bf16.toFloat(one[i]) / 4);  // a flatter row: many candidates
        int[] prompt = {hot[0], hot[3], hot[5], hot[7], 11, 12};
        SamplingKernel.RowParams p = new SamplingKernel.RowParams(0.9f, 40, 0.95f, 0f, 1.4f, 0.3f);
        // each row its own slot with the same history: the prompt seen, hot[1] already generated
        BitSet seen = new BitSet(), generated = new BitSet();
        for (int id : prompt) seen.set(id);
        seen.set(hot[1]);
        generated.set(hot[1]);
        float[] row = new float[vocab];
        for (int i = 0; i < vocab; i++) row[i] = Bf16.toFloat(one[i]);
        double[] dist = SamplingKernelReference.referenceDistribution(SamplingKernel.roundPenalized(row, vocab, p, seen, generated), vocab, p);
        double[] plain = SamplingKernelReference.referenceDistribution(row, vocab, p);
        assertTrue(dist[hot[0]] < plain[hot[0]], "the repetition penalty lowers a prompt token's probability");

        short[] l = new short[rows * vocab];
        for (int r = 0; r < rows; r++) System.arraycopy(one, 0, l, r * vocab, vocab);
        int[] rowSlot = new int[rows], histIds = new int[rows * (prompt.length + 1)], histSlots = new int[histIds.length];
        SamplingKernel.RowParams[] ps = new SamplingKernel.RowParams[rows];
        for (int r = 0; r < rows; r++) {
            rowSlot[r] = rows - 1 - r;
            ps[r] = p;
            for (int j = 0; j <= prompt.length; j++) {
                histIds[r * (prompt.length + 1) + j] = j < prompt.length ? prompt[j] : hot[1];
                histSlots[r * (prompt.length + 1) + j] = rowSlot[r];
            }
        }
        Gpu gpu = GpuTestSupport.gpu();
        Stream s = GpuTestSupport.stream();
        try (SamplingKernel k = new SamplingKernel(GpuTestSupport.kernels(), rows); TokenHistory h = new TokenHistory(GpuTestSupport.kernels(), rows, vocab);
             DeviceBuffer dl = upload(l, "logits"); DeviceBuffer dParams = SamplingFixture.params(ps); DeviceBuffer dSlots = ints(rowSlot, "row slots");
             DeviceBuffer dHist = ints(histIds, "history ids"); DeviceBuffer dHistSlots = ints(histSlots, "history slots");
             DeviceBuffer rng = gpu.allocate(16L * rows, "rng"); DeviceBuffer ids = gpu.allocate(4L * rows, "ids")) {
            h.observe(s, Tensors.observe(dHist, dHistSlots), histIds.length);
            try (Arena a = Arena.ofConfined()) {
                MemorySegment hr = a.allocate(16L * rows);
                for (int r = 0; r < rows; r++) SamplingKernel.writeRng(hr, r, 777L * r + 5, 0);
                rng.copyFromHost(hr);
            }
            markGenerated(h, rows, hot[1], s);
            k.sample(s, Tensors.sampling(dl, vocab, dParams, rng, dSlots, h, ids), vocab, rows);
            int[] got = MoeFixture.downloadInts(ids, rows);
            long[] counts = new long[vocab];
            for (int r = 0; r < rows; r++) {
                assertTrue(got[r] >= 0 && got[r] < vocab, "row " + r + ": id " + got[r]);
                assertTrue(dist[got[r]] > 0, "row " + r + ": drew " + got[r] + " outside the penalized kept set");
                counts[got[r]]++;
            }
            for (int r : new int[] {0, 1, rows - 1}) {
                BitSet gen = (BitSet) generated.clone();
                gen.set(got[r]);
                assertEquals(gen, h.downloadGenerated(rowSlot[r]), "row " + r + ": the draw is marked generated");
                BitSet sn = (BitSet) seen.clone();
                sn.set(got[r]);
                assertEquals(sn, h.downloadSeen(rowSlot[r]), "row " + r + ": the draw is marked seen");
            }
            double chi2 = 0, poolE = 0, poolO = 0;
            int bins = 0;
            for (int i = 0; i < vocab; i++) {
                if (dist[i] == 0) continue;
                double e = dist[i] * rows;
                if (e < 5) {
                    poolE += e;
                    poolO += counts[i];
                    continue;
                }
                chi2 += (counts[i] - e) * (counts[i] - e) / e;
                bins++;
            }
            if (poolE > 0) {
                chi2 += (poolO - poolE) * (poolO - poolE) / poolE;
                bins++;
            }
            int df = Math.max(1, bins - 1);
            double critical = df * Math.pow(1 - 2.0 / (9 * df) + 4.75 * Math.sqrt(2.0 / (9 * df)), 3);  // p ≈ 1e-6
            assertTrue(chi2 < critical, "chi-square " + chi2 + " with " + df + " degrees of freedom (critical " + critical + ")");
        }
    }

    /** Marks {@code id} generated (and seen) in slots [0, slots) through the sampler itself: a greedy pick on a one-hot row. */
    private static void markGenerated(TokenHistory h, int slots, int id, Stream s) {
        int vocab = h.vocab();
        short[] l = new short[slots * vocab];
        for (int r = 0; r < slots; r++) l[r * vocab + id] = Bf16.fromFloat(1f);
        int[] rowSlot = new int[slots];
        for (int r = 0; r < slots; r++) rowSlot[r] = r;
        SamplingKernel.RowParams[] ps = new SamplingKernel.RowParams[slots];
        Arrays.fill(ps, SamplingKernel.RowParams.greedy());
        try (SamplingKernel k = new SamplingKernel(GpuTestSupport.kernels(), slots); DeviceBuffer dl = upload(l, "one-hot logits");
             DeviceBuffer dParams = SamplingFixture.params(ps); DeviceBuffer dSlots = ints(rowSlot, "slots");
             DeviceBuffer ids = GpuTestSupport.gpu().allocate(4L * slots, "ids")) {
            k.greedy(s, Tensors.sampling(dl, vocab, dParams, null, dSlots, h, ids), vocab, slots);
            int[] got = MoeFixture.downloadInts(ids, slots);
            for (int r = 0; r < slots; r++) assertEquals(id, got[r], "one-hot row " + r);
        }
    }

    /** A captured sample with history: every replay draws fresh numbers and marks its pick; padding rows stay −1. */
    @Test
    void aReplayedGraphAppliesAndUpdatesTheHistory() {
        int vocab = 151936, rows = 3;
        Random rnd = new Random(23);
        int[] hot = rnd.ints(0, vocab).distinct().limit(5).toArray();
        short[] l = new short[rows * vocab];
        for (int r = 0; r < rows; r++) System.arraycopy(hotLogits(rnd, vocab, hot), 0, l, r * vocab, vocab);
        int[] rowSlot = {1, -1, 0};
        SamplingKernel.RowParams greedy = new SamplingKernel.RowParams(0f, 0, 1f, 0f, 1f, 5f);  // a picked id drops out
        SamplingKernel.RowParams[] ps = {greedy, greedy, greedy};
        Gpu gpu = GpuTestSupport.gpu();
        Stream s = GpuTestSupport.stream();
        try (SamplingKernel k = new SamplingKernel(GpuTestSupport.kernels(), rows); TokenHistory h = new TokenHistory(GpuTestSupport.kernels(), 2, vocab);
             DeviceBuffer dl = upload(l, "logits"); DeviceBuffer dParams = SamplingFixture.params(ps); DeviceBuffer dSlots = ints(rowSlot, "row slots");
             DeviceBuffer rng = gpu.allocate(16L * rows, "rng"); DeviceBuffer ids = gpu.allocate(4L * rows, "ids")) {
            rng.fill32(0, s);
            try (CudaGraph g = CudaGraph.capture(s, st -> k.sample(st, Tensors.sampling(dl, vocab, dParams, rng, dSlots, h, ids), vocab, rows))) {
                for (int replay = 0; replay < 3; replay++) {
                    g.replay(s);
                    int[] got = MoeFixture.downloadInts(ids, rows);
                    assertEquals(-1, got[1], "padding row");
                    // presence 5 pushes each pick below the next hot id: replay i picks the i-th hot id of its row
                    for (int r : new int[] {0, 2}) {
                        float[] row = new float[vocab];
                        for (int i = 0; i < vocab; i++) row[i] = Bf16.toFloat(l[r * vocab + i]);
                        BitSet gen = h.downloadGenerated(rowSlot[r]);
                        gen.clear(got[r]);
                        assertEquals(SamplingKernelReference.referenceArgmax(SamplingKernel.penalize(row, vocab, greedy, gen, gen), vocab), got[r],
                                "replay " + replay + " row " + r);
                        assertEquals(hot[replay], got[r], "replay " + replay + " row " + r);
                    }
                }
            }
            assertArrayEquals(new int[4 * rows], MoeFixture.downloadInts(rng, 4 * rows), "greedy and padding rows draw nothing");
        }
    }
}
