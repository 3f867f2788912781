package dev.jnext.cuda.kernels;

import dev.jnext.backend.SamplingRules;
import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.GpuTestSupport;
import dev.jnext.gpu.Stream;
import dev.jnext.numeric.Bf16;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.BitSet;
import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import java.util.SplittableRandom;

import static dev.jnext.gpu.GpuTestSupport.upload;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 19 on the device sampler (sample_rows): masses were exp(l/T - max/T), which overflowed to +-Inf for a tiny
 * temperature (1e-38, 1e-40, 1e-45) or a logit near the float range (a 1e-44 repetition penalty), gave NaN masses,
 * wrapped the fixed-point sums and cut the kept set after the wrong key — e.g. top_k 50 at T = 1e-38 drew the 50th most
 * likely token for every seed. Now masses are exp((l - max)/T) with exactly 1 for the largest key, penalties saturate at
 * the float range, and every row follows {@link SamplingRules}: a point-mass reference distribution is drawn exactly, and
 * no draw leaves the reference's kept set.
 */
@Tag("gpu")
class SamplingExtremesGpuTest {
    private static final int VOCAB = 151936;



    private static float[] floats(short[] l, int from, int n) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) f[i] = Bf16.toFloat(l[from + i]);
        return f;
    }

    /** One launch: row r has logits l[r * vocab ..] and params p[r]; returns the ids. */
    private static int[] sample(short[] l, int vocab, SamplingKernel.RowParams[] p, long seedBase) {
        int rows = p.length;
        Gpu gpu = GpuTestSupport.gpu();
        Stream s = GpuTestSupport.stream();
        try (SamplingKernel k = new SamplingKernel(GpuTestSupport.kernels(), rows); DeviceBuffer dl = upload(l, "logits");
             DeviceBuffer dp = SamplingFixture.params(p); DeviceBuffer dr = SamplingFixture.rng(rows, seedBase); DeviceBuffer ids = gpu.allocate(4L * rows, "ids")) {
            ids.fill32(-7, s);
            k.sample(s, Tensors.sampling(dl, vocab, dp, dr, null, null, ids), vocab, rows);
            return MoeFixture.downloadInts(ids, rows);
        }
    }

    @Test
    void tinyTemperaturesGiveTheArgmaxWithEveryCutAndSeed() {
        Random rnd = new Random(19);
        short[] one = new short[VOCAB];
        for (int i = 0; i < VOCAB; i++) one[i] = Bf16.fromFloat((float) rnd.nextGaussian() * 3);
        one[4242] = Bf16.fromFloat(24f);
        float[] t = {1e-38f, 1e-40f, Float.MIN_VALUE};
        int[][] cuts = {{0, 100}, {50, 100}, {0, 50}, {50, 50}};  // top-k, top-p in percent
        int rows = t.length * cuts.length * 4;
        short[] l = new short[rows * VOCAB];
        SamplingKernel.RowParams[] p = new SamplingKernel.RowParams[rows];
        for (int r = 0; r < rows; r++) {
            System.arraycopy(one, 0, l, r * VOCAB, VOCAB);
            int[] c = cuts[(r / 4) % cuts.length];
            p[r] = new SamplingKernel.RowParams(t[r / (4 * cuts.length)], c[0], c[1] / 100f, 0f);
        }
        int[] got = sample(l, VOCAB, p, 3);
        for (int r = 0; r < rows; r++) assertEquals(4242, got[r], "row " + r + ": " + p[r]);
    }

    @Test
    void logitsNearTheFloatRangeAtAModerateTemperature() {
        // 3.0e38 / 0.5 overflowed: the top-2 cut then landed on the second key and drew it for every seed
        int vocab = 4096, rows = 64;
        Random rnd = new Random(5);
        short[] one = new short[vocab];
        for (int i = 0; i < vocab; i++) one[i] = Bf16.fromFloat((float) rnd.nextGaussian());
        one[7] = Bf16.fromFloat(3.0e38f);
        one[9] = Bf16.fromFloat(2.9e38f);
        one[11] = Bf16.fromFloat(-3.0e38f);
        short[] l = new short[rows * vocab];
        SamplingKernel.RowParams[] p = new SamplingKernel.RowParams[rows];
        for (int r = 0; r < rows; r++) {
            System.arraycopy(one, 0, l, r * vocab, vocab);
            p[r] = new SamplingKernel.RowParams(0.5f, r % 2 == 0 ? 2 : 0, r % 4 < 2 ? 1f : 0.5f, 0f);
        }
        int[] got = sample(l, vocab, p, 4);
        for (int r = 0; r < rows; r++) assertEquals(7, got[r], "row " + r + ": " + p[r]);
    }

    @Test
    void anExtremeRepetitionPenaltyDrawsAmongTheBoostedTokens() {
        int vocab = 4096, rows = 512;
        Random rnd = new Random(44);
        short[] one = new short[vocab];
        for (int i = 0; i < vocab; i++) one[i] = Bf16.fromFloat((float) rnd.nextGaussian() * 2);
        int[] prompt = {3, 70, 1999, 500};
        one[3] = Bf16.fromFloat(0.8f);
        one[70] = Bf16.fromFloat(1.5f);
        one[1999] = Bf16.fromFloat(2.5f);
        one[500] = Bf16.fromFloat(-2f);
        SamplingKernel.RowParams p = new SamplingKernel.RowParams(1f, 0, 1f, 0f, 1e-44f, 0f);
        BitSet seen = new BitSet();
        for (int id : prompt) seen.set(id);
        double[] dist = SamplingKernelReference.referenceDistribution(
                SamplingKernel.roundPenalized(floats(one, 0, vocab), vocab, p, seen, null), vocab, p);
        for (int id : new int[] {3, 70, 1999}) assertEquals(1.0 / 3, dist[id], 1e-12, "the three boosted tokens tie");

        short[] l = new short[rows * vocab];
        int[] rowSlot = new int[rows], histIds = new int[rows * prompt.length], histSlots = new int[histIds.length];
        SamplingKernel.RowParams[] ps = new SamplingKernel.RowParams[rows];
        for (int r = 0; r < rows; r++) {
            System.arraycopy(one, 0, l, r * vocab, vocab);
            rowSlot[r] = r;
            ps[r] = r == 0 ? new SamplingKernel.RowParams(0f, 0, 1f, 0f, 1e-44f, 0f) : p;  // row 0 greedy: ties -> lowest id
            for (int j = 0; j < prompt.length; j++) {
                histIds[r * prompt.length + j] = prompt[j];
                histSlots[r * prompt.length + j] = r;
            }
        }
        Gpu gpu = GpuTestSupport.gpu();
        Stream s = GpuTestSupport.stream();
        try (SamplingKernel k = new SamplingKernel(GpuTestSupport.kernels(), rows); TokenHistory h = new TokenHistory(GpuTestSupport.kernels(), rows, vocab);
             DeviceBuffer dl = upload(l, "logits"); DeviceBuffer dParams = SamplingFixture.params(ps);
             DeviceBuffer dSlots = MoeFixture.uploadInts(gpu, rowSlot, "row slots");
             DeviceBuffer dHist = MoeFixture.uploadInts(gpu, histIds, "history ids");
             DeviceBuffer dHistSlots = MoeFixture.uploadInts(gpu, histSlots, "history slots");
             DeviceBuffer dr = SamplingFixture.rng(rows, 9); DeviceBuffer ids = gpu.allocate(4L * rows, "ids")) {
            h.observe(s, Tensors.observe(dHist, dHistSlots), histIds.length);
            k.sample(s, Tensors.sampling(dl, vocab, dParams, dr, dSlots, h, ids), vocab, rows);
            int[] got = MoeFixture.downloadInts(ids, rows);
            assertEquals(SamplingRules.argmax(SamplingKernel.penalize(floats(one, 0, vocab), vocab, ps[0], seen, null), vocab), got[0]);
            assertEquals(3, got[0], "greedy: the saturated logits tie, the lowest id wins");
            Set<Integer> drawn = new HashSet<>();
            for (int r = 1; r < rows; r++) {
                assertTrue(dist[got[r]] > 0, "row " + r + " drew " + got[r]);
                drawn.add(got[r]);
            }
            assertEquals(Set.of(3, 70, 1999), drawn, "the seeds spread over the three tied tokens");
        }
    }

    /** Random rows (bf16 ties, -Inf masks, +Inf, the range's ends) with every parameter at its extremes, one launch. */
    @Test
    void randomRowsAtTheExtremesFollowTheRules() {
        int vocab = 4096, rows = 1024;
        float[] temps = {Float.MIN_VALUE, 1e-40f, 1e-38f, 1e-30f, 1e-3f, 0.7f, 1f, 3f, 1e30f, Float.MAX_VALUE};
        int[] ks = {0, 0, 1, 2, 50, vocab - 1, vocab, 1 << 24};
        float[] ps = {Float.MIN_VALUE, 1e-7f, 0.5f, 0.9f, Math.nextDown(1f), 1f, 1f};
        float[] mins = {0f, 0f, Float.MIN_VALUE, 0.05f, 0.5f, Math.nextDown(1f)};
        float[] scales = {1e-3f, 1f, 3f, 30f, 1e20f, 1e38f};
        SplittableRandom rnd = new SplittableRandom(0xE5CA1E);
        short[] l = new short[rows * vocab];
        SamplingKernel.RowParams[] p = new SamplingKernel.RowParams[rows];
        for (int r = 0; r < rows; r++) {
            float scale = scales[rnd.nextInt(scales.length)];
            int kind = rnd.nextInt(6);
            for (int i = 0; i < vocab; i++) {
                float v = (float) Math.max(-3.38e38, Math.min(3.38e38, rnd.nextGaussian() * scale));
                if (kind == 1 && rnd.nextInt(3) == 0) v = Float.NEGATIVE_INFINITY;
                if (kind == 2 && rnd.nextInt(4) == 0) v = rnd.nextBoolean() ? 3.38e38f : -3.38e38f;
                if (kind == 3) v = 0.5f;
                l[r * vocab + i] = Bf16.fromFloat(v);
            }
            if (kind == 4) l[r * vocab + rnd.nextInt(vocab)] = Bf16.fromFloat(Float.POSITIVE_INFINITY);
            p[r] = new SamplingKernel.RowParams(temps[rnd.nextInt(temps.length)], ks[rnd.nextInt(ks.length)],
                    ps[rnd.nextInt(ps.length)], mins[rnd.nextInt(mins.length)]);
        }
        int[] got = sample(l, vocab, p, 11);
        for (int r = 0; r < rows; r++) {
            double[] dist = SamplingKernelReference.referenceDistribution(floats(l, r * vocab, vocab), vocab, p[r]);
            assertTrue(got[r] >= 0 && got[r] < vocab && dist[got[r]] > 0, "row " + r + " (" + p[r] + ") drew " + got[r]
                    + ", outside the reference's kept set");
            int support = (int) Arrays.stream(dist).filter(x -> x > 0).count();
            if (support == 1) assertEquals(1.0, dist[got[r]], "row " + r + " (" + p[r] + "): the one kept token");
        }
    }
}
