package dev.jnext.cpu;

import dev.jnext.cuda.kernels.SamplingKernelReference;

import dev.jnext.backend.SamplingParams;

import dev.jnext.cuda.kernels.SamplingKernel;
import dev.jnext.numeric.Bf16;
import dev.jnext.backend.SamplingRules;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.RepetitionInfo;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.BitSet;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CPU {@link Sampler} and the device sampler's CPU reference ({@link SamplingKernel}) against the one statement of
 * the rules, {@link SamplingRules}, on random logits with parameters at their extremes (seeded: every repetition is
 * reproducible from its number). Besides agreement, properties that follow from the definitions alone: no NaN anywhere,
 * the argmax is always kept, top-k = 1 / a tiny top-p keep the argmax only, a tiny temperature is greedy when one logit
 * is clearly largest, and a draw never lands outside the kept set.
 */
class SamplingPropertyTest {
    static final float[] TEMPERATURES = {0f, Float.MIN_VALUE, 1e-44f, 1e-40f, 1e-38f, 1e-30f, 1e-3f, 0.7f, 1f, 3f, 1e30f, Float.MAX_VALUE};
    static final float[] TOP_P = {Float.MIN_VALUE, 1e-7f, 0.1f, 0.5f, 0.9f, Math.nextDown(1f), 1f, 1f};
    static final float[] MIN_P = {0f, 0f, Float.MIN_VALUE, 0.05f, 0.5f, Math.nextDown(1f)};
    static final float[] REPETITION = {Float.MIN_VALUE, 1e-44f, 1e-38f, 0.5f, 1f, 1f, 1.3f, 1e38f, Float.MAX_VALUE};
    static final float[] PRESENCE = {-Float.MAX_VALUE, -1e30f, -1f, 0f, 0f, 0.5f, 1e30f, Float.MAX_VALUE};
    static final float[] SCALES = {1e-3f, 1f, 3f, 30f, 1e20f, 1e38f};

    private static float pick(SplittableRandom r, float[] values) {
        return values[r.nextInt(values.length)];
    }

    /** Random logits of one of several kinds: plain, bf16 (many ties), masked with -Inf, with +Inf, at the float range's ends. */
    static float[] logits(SplittableRandom r, int n) {
        float scale = pick(r, SCALES);
        float[] l = new float[n];
        for (int i = 0; i < n; i++) l[i] = (float) Math.max(-Float.MAX_VALUE, Math.min(Float.MAX_VALUE, r.nextGaussian() * scale));
        switch (r.nextInt(8)) {
            case 0 -> { for (int i = 0; i < n; i++) l[i] = Bf16.round(l[i]); }
            case 1 -> { for (int i = 0; i < n; i++) if (r.nextInt(3) == 0) l[i] = Float.NEGATIVE_INFINITY; }
            case 2 -> l[r.nextInt(n)] = Float.POSITIVE_INFINITY;
            case 3 -> { for (int i = 0; i < n; i++) if (r.nextInt(4) == 0) l[i] = r.nextBoolean() ? Float.MAX_VALUE : -Float.MAX_VALUE; }
            case 4 -> Arrays.fill(l, r.nextBoolean() ? 0f : -1.5f);
            case 5 -> { for (int i = 0; i < n; i++) if (r.nextInt(3) == 0) l[i] = r.nextBoolean() ? 0f : -0f; }
            default -> { }
        }
        return l;
    }

    @RepeatedTest(300)
    void samplerAndDeviceReferenceFollowTheRules(RepetitionInfo info) {
        SplittableRandom r = new SplittableRandom(0x5EED0000L + info.getCurrentRepetition());
        int n = r.nextInt(10) == 0 ? 500 + r.nextInt(1500) : 1 + r.nextInt(64);
        int[] topKs = {0, 0, 1, 2, 50, Math.max(1, n - 1), n, n + 1, Integer.MAX_VALUE};
        float t = pick(r, TEMPERATURES);
        int k = topKs[r.nextInt(topKs.length)];
        float topP = pick(r, TOP_P), minP = pick(r, MIN_P), rp = pick(r, REPETITION), pp = pick(r, PRESENCE);
        SamplingParams params = new SamplingParams(t, k, topP, minP, rp, pp, r.nextLong());
        String what = "repetition " + info.getCurrentRepetition() + ": n=" + n + " " + params;

        Sampler sampler = new Sampler(params, n);
        BitSet seen = new BitSet(), generated = new BitSet();
        int[] prompt = r.ints(r.nextInt(n + 1), 0, n).toArray();
        sampler.observePrompt(prompt);
        for (int id : prompt) seen.set(id);
        for (int step = 0; step < 3; step++) {
            float[] raw = logits(r, n);
            float[] l = SamplingRules.penalize(raw, n, seen, generated, rp, pp);
            for (int i = 0; i < n; i++) {
                assertFalse(Float.isNaN(l[i]), what + ": a penalty made NaN");
                if (Float.isFinite(raw[i])) assertTrue(Float.isFinite(l[i]), what + ": a penalty overflowed logit " + raw[i] + " to " + l[i]);
            }
            SamplingKernel.RowParams row = new SamplingKernel.RowParams(t, Math.min(k, 1 << 24), topP, minP, rp, pp);
            assertArrayEquals(l, SamplingKernel.penalize(raw, n, row, seen, generated), what + ": the device reference's penalties");
            int argmax = SamplingRules.argmax(l, n);
            int got = sampler.next(raw);

            if (params.isGreedy()) {
                assertEquals(argmax, got, what + " step " + step + ": greedy");
                assertEquals(argmax, SamplingKernelReference.referenceArgmax(l, n));
            } else {
                double[] dist = SamplingRules.distribution(l, n, t, k, topP, minP);
                assertArrayEquals(dist, SamplingKernelReference.referenceDistribution(l, n, row), what + ": the device reference's distribution");
                double sum = 0;
                int support = 0;
                for (double p : dist) {
                    assertTrue(p >= 0 && p <= 1, what + ": probability " + p);
                    sum += p;
                    if (p > 0) support++;
                }
                assertEquals(1.0, sum, 1e-9, what + ": the kept probabilities sum to 1");
                assertTrue(dist[argmax] > 0, what + ": the argmax " + argmax + " is always kept");
                assertTrue(dist[got] > 0, what + " step " + step + ": the Sampler drew " + got + " (logit " + l[got]
                        + "), outside the kept set");
                // top-k from the definition: fewer than k candidates come before a kept one
                for (int i = 0; i < n; i++) {
                    if (dist[i] == 0 || k == 0) continue;
                    int before = 0;
                    for (int j = 0; j < n; j++) {
                        int c = Float.compare(l[j], l[i]);
                        if (c > 0 || (c == 0 && j < i)) before++;
                    }
                    assertTrue(before < k, what + ": id " + i + " is kept but " + before + " candidates come before it (top-k " + k + ")");
                }
                if (k == 1 || topP <= 1e-7f) assertEquals(1, support, what + ": only the argmax is kept");
                if (t <= 1e-30f && clearlyLargest(l, argmax)) {
                    assertEquals(1.0, dist[argmax], what + ": a tiny temperature is greedy");
                    assertEquals(argmax, got, what + " step " + step + ": a tiny temperature is greedy");
                }
            }
            seen.set(got);
            generated.set(got);
        }
    }

    /** The largest logit beats every other by a margin no temperature <= 1e-30 can bridge (exp(-1e10) == 0). */
    private static boolean clearlyLargest(float[] l, int argmax) {
        for (int i = 0; i < l.length; i++) {
            if (i != argmax && !((double) l[argmax] - l[i] >= 1e-20)) return false;
        }
        return true;
    }

    /** At T = 1e-38 with logits 1e-38 apart the masses are e^0, e^-1, e^-2, e^-3: the draw follows them (chi-square). */
    @Test
    void aTemperatureOfOneE38StillSamplesWhenTheLogitsAreAsClose() {
        float t = 1e-38f;
        float[] l = {0f, -1e-38f, -2e-38f, -3e-38f};
        double[] dist = SamplingRules.distribution(l, 4, t, 0, 1f, 0f);
        double z = 0;
        double[] p = new double[4];
        for (int i = 0; i < 4; i++) z += p[i] = Math.exp(((double) l[i] - l[0]) / t);
        for (int i = 0; i < 4; i++) assertEquals(p[i] / z, dist[i], 1e-12);
        Sampler s = new Sampler(new SamplingParams(t, 0, 1f, 0f, 1f, 0f, 11), 4);
        int draws = 40_000;
        int[] h = new int[4];
        for (int d = 0; d < draws; d++) h[s.next(l)]++;
        double chi2 = 0;
        for (int i = 0; i < 4; i++) chi2 += Math.pow(h[i] - draws * dist[i], 2) / (draws * dist[i]);
        assertTrue(chi2 < 16.27, "chi-square " + chi2 + " (3 dof, p = 0.001)");
    }
}
