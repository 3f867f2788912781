package dev.jnext.cpu.ops;

import dev.jnext.model.weights.Matrix;

import dev.jnext.numeric.Bf16;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Unit checks of the CPU ops against hand-computed values and against each other. */
class CpuOpsTest {

    static float[] random(SplittableRandom r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (r.nextDouble() * 2 - 1);
        return a;
    }

    static SparseMoe moe(int experts, int topK, boolean norm) {
        SplittableRandom r = new SplittableRandom(5);
        int h = 4;
        List<SwiGluMlp> list = new java.util.ArrayList<>();
        for (int e = 0; e < experts; e++) {
            list.add(new SwiGluMlp(Matrix.ofFloats("g", random(r, 3 * h), 3, h), Matrix.ofFloats("u", random(r, 3 * h), 3, h),
                    Matrix.ofFloats("d", random(r, 3 * h), h, 3)));
        }
        return new SparseMoe(Matrix.ofFloats("router", random(r, experts * h), experts, h), list, topK, norm,
                list.getFirst(), Matrix.ofFloats("sg", random(r, h), 1, h));
    }

    @Test
    void routerBreaksTiesTowardsTheLowestExpertIndex() {
        SparseMoe m = moe(6, 3, false);
        float[] logits = {0.5f, 2f, 1f, 2f, 1f, 2f};
        SparseMoe.Routing r = m.route(logits, 0);
        assertArrayEquals(new int[]{1, 3, 5}, r.experts());
        float[] tie = {1f, 1f, 1f, 1f, 1f, 1f};
        assertArrayEquals(new int[]{0, 1, 2}, m.route(tie, 0).experts());
        assertEquals(1f / 6, m.route(tie, 0).weights()[0], 1e-7);
    }

    @Test
    void routerSoftmaxAndOptionalRenormalisation() {
        float[] logits = {0f, (float) Math.log(2), (float) Math.log(3), (float) Math.log(4)};   // p ∝ 1, 2, 3, 4
        SparseMoe.Routing plain = moe(4, 2, false).route(logits, 0);
        assertArrayEquals(new int[]{3, 2}, plain.experts());
        assertEquals(0.4f, plain.weights()[0], 1e-6);
        assertEquals(0.3f, plain.weights()[1], 1e-6);
        SparseMoe.Routing norm = moe(4, 2, true).route(logits, 0);
        assertEquals(4f / 7, norm.weights()[0], 1e-6);
        assertEquals(3f / 7, norm.weights()[1], 1e-6);
    }

    @Test
    void moeOutputIsTheWeightedExpertSumPlusGatedSharedExpert() {
        SparseMoe m = moe(5, 2, true);
        SplittableRandom r = new SplittableRandom(9);
        int h = 4;
        float[] x = random(r, 3 * h);
        float[] out = new float[3 * h];
        m.forward(x, 3, out);
        for (int t = 0; t < 3; t++) {
            float[] xt = java.util.Arrays.copyOfRange(x, t * h, (t + 1) * h);
            float[] logits = new Linear(m.router()).forward(xt, 1);
            SparseMoe.Routing route = m.route(logits, 0);
            float[] expect = new float[h];
            for (int k = 0; k < 2; k++) {
                float[] y = m.experts().get(route.experts()[k]).forward(xt, 1);
                for (int c = 0; c < h; c++) expect[c] += route.weights()[k] * y[c];
            }
            float sg = Activations.sigmoid(new Linear(m.sharedGate()).forward(xt, 1)[0]);
            float[] sh = m.sharedExpert().forward(xt, 1);
            for (int c = 0; c < h; c++) assertEquals(expect[c] + sg * sh[c], out[t * h + c], 1e-6);
        }
    }

    @Test
    void rmsNormIsZeroCentredAndGatedNormIsPlain() {
        float[] x = {1f, -2f, 3f, -4f};
        float inv = (float) (1 / Math.sqrt((1 + 4 + 9 + 16) / 4.0 + 1e-6));
        float[] w = {0f, 0.5f, -1f, 1f};
        float[] y = new RmsNorm(w, 1e-6f).forward(x, 1);
        assertArrayEquals(new float[]{inv, -2 * inv * 1.5f, 0f, -8 * inv}, y, 1e-6f);
        float[] z = {0f, 1f, -1f, 2f};
        float[] g = new float[4];
        new GatedRmsNorm(w, 1e-6f).forward(x, z, 1, g);
        for (int i = 0; i < 4; i++) assertEquals(w[i] * x[i] * inv * Activations.silu(z[i]), g[i], 1e-6);
    }

    @Test
    void ropeRotatesOnlyTheRotaryDimsAndPairsIWithIPlusHalf() {
        RotaryEmbedding rope = new RotaryEmbedding(8, 4, 10000.0);
        float[] v = {1f, 2f, 3f, 4f, 5f, 6f, 7f, 8f};
        rope.apply(v, 0, 1, 1, 3);
        double a0 = 3.0;                       // inv_freq[0] = 1
        double a1 = 3.0 / 100.0;               // inv_freq[1] = 1 / 10000^(2/4)
        assertEquals(1 * Math.cos(a0) - 3 * Math.sin(a0), v[0], 1e-6);
        assertEquals(2 * Math.cos(a1) - 4 * Math.sin(a1), v[1], 1e-6);
        assertEquals(3 * Math.cos(a0) + 1 * Math.sin(a0), v[2], 1e-6);
        assertEquals(4 * Math.cos(a1) + 2 * Math.sin(a1), v[3], 1e-6);
        assertArrayEquals(new float[]{5f, 6f, 7f, 8f}, java.util.Arrays.copyOfRange(v, 4, 8));
    }

    @Test
    void convInPiecesEqualsConvInOneGoAndKeepsTheLastInputs() {
        SplittableRandom r = new SplittableRandom(3);
        int c = 5;
        int k = 4;
        CausalConv1d conv = new CausalConv1d(c, k, random(r, c * k));
        float[] x = random(r, 20 * c);
        float[] whole = new float[20 * c];
        conv.forward(x, 0, 20, new float[conv.stateSize()], 0, whole);
        float[] pieces = new float[20 * c];
        float[] state = new float[conv.stateSize()];
        int[] cuts = {0, 2, 3, 11, 12, 20};
        for (int i = 0; i + 1 < cuts.length; i++) conv.forward(x, cuts[i], cuts[i + 1] - cuts[i], state, 0, pieces);
        assertArrayEquals(whole, pieces, 1e-6f);
        for (int ch = 0; ch < c; ch++) {
            for (int j = 0; j < k - 1; j++) assertEquals(x[(17 + j) * c + ch], state[ch * (k - 1) + j]);
        }
        // first output: only the newest tap sees data
        assertEquals(Activations.silu(conv.weight()[k - 1] * x[0]), whole[0], 1e-7);
    }

    @Test
    void attentionAttendsCausallyWithGroupedHeads() {
        SplittableRandom r = new SplittableRandom(4);
        int heads = 4, kv = 2, hd = 8, past = 3, rows = 2;
        float[] q = random(r, rows * heads * hd);
        float[] keys = random(r, (past + rows) * kv * hd);
        float[] values = random(r, (past + rows) * kv * hd);
        float[] out = new float[rows * heads * hd];
        new AttentionCore(heads, kv, hd).forward(q, 0, rows, keys, values, past, out, 0);
        for (int t = 0; t < rows; t++) {
            for (int h = 0; h < heads; h++) {
                int g = h / 2;
                int n = past + t + 1;
                double[] s = new double[n];
                double max = -1e30, sum = 0;
                for (int j = 0; j < n; j++) {
                    for (int d = 0; d < hd; d++) s[j] += q[(t * heads + h) * hd + d] * keys[(j * kv + g) * hd + d];
                    s[j] /= Math.sqrt(hd);
                    max = Math.max(max, s[j]);
                }
                for (int j = 0; j < n; j++) sum += (s[j] = Math.exp(s[j] - max));
                for (int d = 0; d < hd; d++) {
                    double o = 0;
                    for (int j = 0; j < n; j++) o += s[j] / sum * values[(j * kv + g) * hd + d];
                    assertEquals(o, out[(t * heads + h) * hd + d], 1e-5);
                }
            }
        }
    }

    @Test
    void linearConvertsBf16AndF16Rows() {
        float[] w = {1.5f, -2f, 0.25f, 8f, -0.125f, 3f};
        java.lang.foreign.MemorySegment bf = java.lang.foreign.MemorySegment.ofArray(new short[6]);
        java.lang.foreign.MemorySegment hf = java.lang.foreign.MemorySegment.ofArray(new short[6]);
        for (int i = 0; i < 6; i++) {
            bf.setAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT, i, dev.jnext.numeric.Bf16.fromFloat(w[i]));
            hf.setAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT, i, Float.floatToFloat16(w[i]));
        }
        float[] x = {1f, 2f, 3f};
        float[] expect = {1.5f - 4f + 0.75f, 8f - 0.25f + 9f};
        for (Matrix m : new Matrix[]{Matrix.ofFloats("f", w, 2, 3),
                new Matrix("b", bf, dev.jnext.model.DType.BF16, 2, 3), new Matrix("h", hf, dev.jnext.model.DType.F16, 2, 3)}) {
            assertArrayEquals(expect, new Linear(m).forward(x, 1), 1e-6f, m.name());
        }
        assertTrue(Float.isNaN(dev.jnext.numeric.Bf16.toFloat(dev.jnext.numeric.Bf16.fromFloat(Float.NaN))));
    }
}
