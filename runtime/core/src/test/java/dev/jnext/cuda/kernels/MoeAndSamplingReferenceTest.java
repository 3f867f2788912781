package dev.jnext.cuda.kernels;

import dev.jnext.JnextException;
import dev.jnext.numeric.Bf16;
import dev.jnext.model.weights.Matrix;
import dev.jnext.cpu.ops.SparseMoe;
import dev.jnext.cpu.ops.SwiGluMlp;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CPU references of the MoE, embedding and sampling kernels, and their launchers' argument checks (no GPU). */
class MoeAndSamplingReferenceTest {

    /** bf16 router logits with many exact ties (a few distinct values), as 512 experts produce in bf16. */
    static short[] tiedLogits(Random rnd, int rows, int stride, int experts) {
        short[] l = new short[rows * stride];
        for (int r = 0; r < rows; r++) {
            float[] palette = new float[3 + rnd.nextInt(6)];
            for (int i = 0; i < palette.length; i++) palette[i] = (float) rnd.nextGaussian() * 2;
            for (int e = 0; e < stride; e++) {
                float v = e < experts && rnd.nextInt(3) == 0 ? palette[rnd.nextInt(palette.length)] : (float) rnd.nextGaussian() * 2;
                l[r * stride + e] = Bf16.fromFloat(v);
            }
        }
        return l;
    }

    private static SparseMoe tinyMoe(int experts, int topK, boolean norm) {
        Matrix one = Matrix.ofFloats("w", new float[]{1f}, 1, 1);
        List<SwiGluMlp> list = new ArrayList<>();
        for (int e = 0; e < experts; e++) list.add(new SwiGluMlp(one, one, one));
        return new SparseMoe(Matrix.ofFloats("router", new float[experts], experts, 1), list, topK, norm,
                new SwiGluMlp(one, one, one), one);
    }

    @ParameterizedTest(name = "renorm={0}")
    @ValueSource(booleans = {true, false})
    void routerReferenceIsSparseMoeRouteOnBf16Logits(boolean renorm) {
        Random rnd = new Random(11);
        int rows = 40, experts = 64, topK = 10, stride = 72;
        short[] logits = tiedLogits(rnd, rows, stride, experts);
        MoeRouterKernel.Routes routes = MoeRouterKernelReference.reference(logits, stride, rows, experts, topK, renorm);
        SparseMoe moe = tinyMoe(experts, topK, renorm);
        int ties = 0;
        for (int r = 0; r < rows; r++) {
            float[] f = new float[experts];
            for (int e = 0; e < experts; e++) f[e] = Bf16.toFloat(logits[r * stride + e]);
            SparseMoe.Routing ref = moe.route(f, 0);
            for (int k = 0; k < topK; k++) {
                assertEquals(ref.experts()[k], routes.ids()[r * topK + k], "row " + r + " k " + k);
                assertEquals(Bf16.fromFloat(ref.weights()[k]), routes.weights()[r * topK + k], "row " + r + " k " + k);
                if (k > 0 && ref.weights()[k] == ref.weights()[k - 1]) {
                    ties++;
                    assertTrue(ref.experts()[k] > ref.experts()[k - 1], "ties are listed in ascending expert order");
                }
            }
        }
        assertTrue(ties > 20, "the inputs exercise the tie-break: " + ties);
    }

    @Test
    void groupingReferenceSortsStablyAndPadsToTheTile() {
        Random rnd = new Random(5);
        int experts = 16, blockM = 8, pairs = 203;
        int[] ids = new int[pairs];
        for (int p = 0; p < pairs; p++) ids[p] = rnd.nextInt(3) == 0 ? 3 : rnd.nextInt(experts - 2);  // skewed; 14, 15 empty
        ExpertGrouping.Groups g = ExpertGroupingReference.reference(ids, experts, blockM);
        for (int e = 0; e < experts; e++) {
            assertEquals(0, g.expertStart()[e] % blockM, "segments start on a tile");
            int prev = -1;
            for (int r = g.expertStart()[e]; r < g.expertStart()[e + 1]; r++) {
                int p = g.sortedPairs()[r];
                if (p < 0) continue;
                assertEquals(e, ids[p]);
                assertTrue(p > prev, "stable: ascending pair order inside an expert");
                prev = p;
                assertEquals(r, g.pairRow()[p]);
                assertEquals(e, g.tileExpert()[r / blockM]);
            }
        }
        assertEquals(g.expertStart()[14], g.expertStart()[16], "empty experts take no rows");
        assertEquals(-1, g.tileExpert()[g.expertStart()[experts] / blockM], "tiles past the end are unused");
    }

    @Test
    void maxTilesBoundsEveryRouting() {
        Random rnd = new Random(9);
        for (int trial = 0; trial < 200; trial++) {
            int experts = 1 + rnd.nextInt(600), blockM = 128, pairs = 1 + rnd.nextInt(5000);
            int[] ids = new int[pairs];
            boolean spread = rnd.nextBoolean();
            for (int p = 0; p < pairs; p++) ids[p] = spread ? p % experts : rnd.nextInt(experts);
            ExpertGrouping.Groups g = ExpertGroupingReference.reference(ids, experts, blockM);
            assertTrue(g.expertStart()[experts] / blockM <= ExpertGrouping.maxTiles(pairs, experts, blockM) - 1,
                    "used tiles fit the worst-case grid with one to spare");
        }
    }

    @Test
    void philoxMatchesRandom123KnownAnswers() {
        assertArrayEquals(new int[]{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
                SamplingKernel.philox(new int[]{0, 0, 0, 0}, new int[]{0, 0}));
        assertArrayEquals(new int[]{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
                SamplingKernel.philox(new int[]{-1, -1, -1, -1}, new int[]{-1, -1}));
    }

    @Test
    void referenceDistributionAppliesTopKTopPMinPInOrder() {
        float[] l = {1f, 3f, 3f, 2f, 0.5f, 3f, -1f, 2f};
        // order: 1, 2, 5 (ties by id), 3, 7, 0, 4, 6
        double[] topK = SamplingKernelReference.referenceDistribution(l, l.length, new SamplingKernel.RowParams(1f, 4, 1f, 0f));
        for (int i : new int[]{1, 2, 5, 3}) assertTrue(topK[i] > 0, "kept " + i);
        for (int i : new int[]{0, 4, 6, 7}) assertEquals(0.0, topK[i], "dropped " + i + " (7 ties with 3 but has the larger id)");
        assertEquals(1.0, Arrays.stream(topK).sum(), 1e-12);
        double e1 = Math.exp(0), e2 = Math.exp(-1);
        double z = 3 * e1 + 2 * e2 + Math.exp(-2) + Math.exp(-2.5) + Math.exp(-4);
        double p3 = e1 / z;
        // top-p just above two of the three top tokens keeps the third one
        double[] topP = SamplingKernelReference.referenceDistribution(l, l.length, new SamplingKernel.RowParams(1f, 0, (float) (2 * p3 + 1e-4), 0f));
        assertTrue(topP[5] > 0 && topP[3] == 0, "shortest prefix reaching top_p");
        assertEquals(1.0 / 3, topP[1], 1e-12);
        double[] minP = SamplingKernelReference.referenceDistribution(l, l.length, new SamplingKernel.RowParams(1f, 0, 1f, 0.3f));
        assertTrue(minP[3] > 0 && minP[7] > 0 && minP[0] == 0, "exp(-1) >= 0.3 kept, exp(-2) dropped");
        assertEquals(1, SamplingKernelReference.referenceArgmax(l, l.length), "greedy: lowest id among equal maxima");
        l[4] = Float.NaN;
        assertEquals(-1, SamplingKernelReference.referenceArgmax(l, l.length), "NaN row");
    }

    /** The distribution the kernels are checked against is the CPU Sampler's: its draws follow it (chi-square). */
    @Test
    void referenceDistributionIsTheCpuSamplers() {
        Random rnd = new Random(21);
        int vocab = 48, draws = 60_000;
        float[] logits = new float[vocab];
        for (int i = 0; i < vocab; i++) logits[i] = Bf16.round((float) rnd.nextGaussian() * 1.5f);
        logits[7] = logits[30] = logits[11];  // a tie group
        dev.jnext.backend.SamplingParams[] configs = {
                new dev.jnext.backend.SamplingParams(1f, 0, 1f, 0f, 1f, 0f, 1),
                new dev.jnext.backend.SamplingParams(0.7f, 9, 1f, 0f, 1f, 0f, 2),
                new dev.jnext.backend.SamplingParams(1.2f, 0, 0.8f, 0f, 1f, 0f, 3),
                new dev.jnext.backend.SamplingParams(1f, 20, 0.9f, 0.05f, 1f, 0f, 4)};
        for (dev.jnext.backend.SamplingParams c : configs) {
            double[] dist = SamplingKernelReference.referenceDistribution(logits, vocab,
                    new SamplingKernel.RowParams(c.temperature(), c.topK(), c.topP(), c.minP()));
            dev.jnext.cpu.Sampler sampler = new dev.jnext.cpu.Sampler(c, vocab);
            long[] counts = new long[vocab];
            for (int d = 0; d < draws; d++) counts[sampler.next(logits)]++;
            double chi2 = 0;
            int bins = 0;
            for (int i = 0; i < vocab; i++) {
                if (dist[i] == 0) {
                    assertEquals(0, counts[i], "the Sampler drew " + i + ", outside the reference's kept set");
                    continue;
                }
                double e = dist[i] * draws;
                chi2 += (counts[i] - e) * (counts[i] - e) / e;
                bins++;
            }
            int df = Math.max(1, bins - 1);
            double critical = df * Math.pow(1 - 2.0 / (9 * df) + 4.75 * Math.sqrt(2.0 / (9 * df)), 3);  // p ≈ 1e-6
            assertTrue(chi2 < critical, c + ": chi-square " + chi2 + " over " + df + " degrees of freedom");
        }
    }

    @Test
    void launchersRejectBadArguments() {
        assertThrows(IllegalArgumentException.class, () -> MoeRouterKernel.check(4, 2000, 10, 2000));
        assertThrows(IllegalArgumentException.class, () -> MoeRouterKernel.check(4, 64, 33, 64));
        assertThrows(IllegalArgumentException.class, () -> MoeRouterKernel.check(4, 64, 10, 60));
        assertThrows(IllegalArgumentException.class, () -> MoeRouterKernel.check(0, 64, 10, 64));
        MoeRouterKernel.check(1, 512, 10, 520);
        assertThrows(IllegalArgumentException.class, () -> MoeExpertGemm.checkShape(2000, 512, 10));
        assertThrows(IllegalArgumentException.class, () -> MoeExpertGemm.checkShape(2048, 500, 10));
        assertThrows(IllegalArgumentException.class, () -> MoeExpertGemm.checkShape(2048, 512, 70000));
        MoeExpertGemm.checkShape(2048, 512, 833);
        assertThrows(IllegalArgumentException.class, () -> MoeDecodeKernel.check(1, 10, 2044, 512, 64));
        assertThrows(IllegalArgumentException.class, () -> MoeDecodeKernel.check(1, 40, 2048, 512, 64));
        assertThrows(IllegalArgumentException.class, () -> MoeDecodeKernel.check(0, 10, 2048, 512, 64));
        assertThrows(IllegalArgumentException.class, () -> MoeDecodeKernel.check(1, 10, 2048, 1024, 64));
        assertThrows(IllegalArgumentException.class, () -> MoeDecodeKernel.check(1, 10, 2048, 512, 0));
        MoeDecodeKernel.check(8, 10, 2048, 512, 64);
        assertThrows(IllegalArgumentException.class, () -> new GpuSparseMoe.Shape(2048, 512, 10, 512, 256, true));
        assertThrows(IllegalArgumentException.class, () -> new GpuSparseMoe.Shape(2048, 2048, 10, 512, 512, true));
        assertEquals(520, GpuSparseMoe.routerRows(new GpuSparseMoe.Shape(2048, 512, 10, 512, 512, true)));
        assertEquals(64, GpuSparseMoe.routerRows(new GpuSparseMoe.Shape(2048, 64, 10, 512, 0, true)));
        assertThrows(IllegalArgumentException.class, () -> new SamplingKernel.RowParams(-1f, 0, 1f, 0f));
        assertThrows(IllegalArgumentException.class, () -> new SamplingKernel.RowParams(1f, 0, 0f, 0f));
        assertThrows(IllegalArgumentException.class, () -> new SamplingKernel.RowParams(1f, 0, 1f, 1f));
        assertThrows(IllegalArgumentException.class, () -> new SamplingKernel.RowParams(1f, 0, 1f, 0f, 0f, 0f), "repetition penalty 0");
        assertThrows(IllegalArgumentException.class, () -> new SamplingKernel.RowParams(1f, 0, 1f, 0f, Float.NaN, 0f));
        assertThrows(IllegalArgumentException.class, () -> new SamplingKernel.RowParams(1f, 0, 1f, 0f, 1f, Float.POSITIVE_INFINITY));
        assertFalse(SamplingKernel.RowParams.greedy().hasPenalties());
        assertTrue(new SamplingKernel.RowParams(0f, 0, 1f, 0f, 1f, -0.5f).hasPenalties(), "a negative presence penalty is allowed");
        JnextException e = assertThrows(JnextException.class, () -> EmbeddingKernel.validateIds(new int[]{3, 151936}, 2, 151936));
        assertTrue(e.getMessage().contains("151936") && e.getMessage().contains("position 1"), e.getMessage());
        EmbeddingKernel.validateIds(new int[]{0, 151935, -5}, 2, 151936);
    }
    /** Padded rows may hold anything: the reference router still gives distinct valid ids and finite weights. */
    @Test
    void routerReferenceTurnsNonFiniteRowsIntoValidRoutes() {
        int experts = 16, topK = 4, stride = 16;
        short nan = (short) 0x7fc1, inf = (short) 0x7f80, ninf = (short) 0xff80;
        short[] l = new short[4 * stride];
        java.util.Arrays.fill(l, 0, stride, nan);                  // all NaN
        java.util.Arrays.fill(l, stride, 2 * stride, ninf);        // all -inf
        for (int e = 0; e < experts; e++) l[2 * stride + e] = Bf16.fromFloat(e * 0.1f);
        l[2 * stride + 3] = inf;                                     // two +inf share the mass
        l[2 * stride + 9] = inf;
        l[2 * stride + 15] = nan;
        for (int e = 0; e < experts; e++) l[3 * stride + e] = e % 2 == 0 ? nan : Bf16.fromFloat(-e);  // NaN counts as -inf
        MoeRouterKernel.Routes r = MoeRouterKernelReference.reference(l, stride, 4, experts, topK, true);
        assertArrayEquals(new int[] {0, 1, 2, 3}, java.util.Arrays.copyOfRange(r.ids(), 0, 4), "all NaN: the lowest ids");
        assertArrayEquals(new int[] {0, 1, 2, 3}, java.util.Arrays.copyOfRange(r.ids(), 4, 8), "all -inf: the lowest ids");
        assertArrayEquals(new int[] {3, 9, 0, 1}, java.util.Arrays.copyOfRange(r.ids(), 8, 12),
                "+inf first (lowest id first), then every finite logit has probability 0: the lowest ids");
        assertArrayEquals(new int[] {1, 3, 5, 7}, java.util.Arrays.copyOfRange(r.ids(), 12, 16), "NaN never beats a number");
        for (int k = 0; k < 8; k++) assertEquals(0f, Bf16.toFloat(r.weights()[k]), "a row without a finite logit has weight 0");
        assertEquals(0.5f, Bf16.toFloat(r.weights()[8]));
        assertEquals(0.5f, Bf16.toFloat(r.weights()[9]));
        assertEquals(0f, Bf16.toFloat(r.weights()[10]));
        for (short w : r.weights()) assertFalse(Float.isNaN(Bf16.toFloat(w)));
        MoeRouterKernel.Routes plain = MoeRouterKernelReference.reference(l, stride, 4, experts, topK, false);
        assertEquals(0.5f, Bf16.toFloat(plain.weights()[8]), "softmax over the two +inf");
    }

    @Test
    void groupingReferenceDropsInvalidIds() {
        int experts = 4, blockM = 2;
        int[] ids = {1, -1, 4, 1, 0x7fffffff, 3, 0};
        ExpertGrouping.Groups g = ExpertGroupingReference.reference(ids, experts, blockM);
        assertArrayEquals(new int[] {0, 2, 4, 4, 6}, g.expertStart(), "counts of the valid ids only, padded to 2");
        assertEquals(-1, g.pairRow()[1]);
        assertEquals(-1, g.pairRow()[2]);
        assertEquals(-1, g.pairRow()[4]);
        assertArrayEquals(new int[] {6, -1, 0, 3, 5, -1}, g.sortedPairs());
    }

    /** The device penalties' CPU reference is the CPU Sampler's rule: greedy picks agree step by step. */
    @Test
    void penaltyReferenceFollowsTheCpuSampler() {
        Random rnd = new Random(9);
        int vocab = 3000;
        for (float[] pen : new float[][] {{1.3f, 0f}, {1f, 0.7f}, {0.8f, -0.2f}, {1.2f, 0.4f}}) {
            SamplingKernel.RowParams p = new SamplingKernel.RowParams(0f, 0, 1f, 0f, pen[0], pen[1]);
            dev.jnext.cpu.Sampler cpu = new dev.jnext.cpu.Sampler(
                    new dev.jnext.backend.SamplingParams(0f, 0, 1f, 0f, pen[0], pen[1], 0), vocab);
            int[] prompt = rnd.ints(20, 0, vocab).toArray();
            cpu.observePrompt(prompt);
            java.util.BitSet seen = new java.util.BitSet(), generated = new java.util.BitSet();
            for (int id : prompt) seen.set(id);
            int moved = 0;
            for (int step = 0; step < 30; step++) {
                float[] l = new float[vocab];
                for (int i = 0; i < vocab; i++) l[i] = Bf16.round((float) rnd.nextGaussian() * 3);
                for (int id : prompt) if (rnd.nextInt(4) == 0) l[id] = Bf16.round(9f + rnd.nextFloat());     // seen ids on top
                for (int id = generated.nextSetBit(0); id >= 0; id = generated.nextSetBit(id + 1)) l[id] = Bf16.round(9.3f + rnd.nextFloat());
                int expect = cpu.next(l);
                float[] pl = SamplingKernel.penalize(l, vocab, p, seen, generated);
                assertEquals(expect, SamplingKernelReference.referenceArgmax(pl, vocab), "penalties " + java.util.Arrays.toString(pen) + " step " + step);
                if (expect != SamplingKernelReference.referenceArgmax(l, vocab)) moved++;
                float[] rounded = SamplingKernel.roundPenalized(l, vocab, p, seen, generated);
                for (int i = 0; i < vocab; i++) {
                    assertEquals(Bf16.round(pl[i]), rounded[i], "the stochastic path's logits are the penalized ones rounded to bf16");
                    if (!seen.get(i) && !generated.get(i)) assertEquals(l[i], pl[i], "an id never seen keeps its logit");
                }
                seen.set(expect);
                generated.set(expect);
            }
            assertTrue(moved > 0, "penalties " + java.util.Arrays.toString(pen) + " never moved the argmax");
        }
    }

    @Test
    void tokenHistoryReferenceSkipsPaddingRowsAndForeignIds() {
        java.util.BitSet[] seen = {new java.util.BitSet(), new java.util.BitSet()};
        TokenHistoryReference.referenceObserve(new int[] {4, 5, -1, 100, 6, 7}, new int[] {0, 1, 1, 0, -1, 2}, 6, seen, 100);
        assertEquals(java.util.BitSet.valueOf(new long[] {1L << 4}), seen[0]);
        assertEquals(java.util.BitSet.valueOf(new long[] {1L << 5}), seen[1]);
        assertEquals(4748, TokenHistory.wordsFor(151936), "ceil(vocab / 32) u32 words per slot");
        assertEquals(4749, TokenHistory.wordsFor(151937));
        assertEquals(4L * 256 * 4748, TokenHistory.poolBytes(256, 151936));
        assertThrows(IllegalArgumentException.class, () -> TokenHistory.checkSlot(2, 2));
        assertThrows(IllegalArgumentException.class, () -> TokenHistory.checkSlot(-1, 2));
        assertThrows(IllegalArgumentException.class, () -> SamplingKernel.checkHistory(10, 64, 64, null));
        assertEquals(32, SamplingKernel.PARAMS_BYTES);
    }
}
