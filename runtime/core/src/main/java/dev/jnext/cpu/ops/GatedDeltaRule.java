package dev.jnext.cpu.ops;

import java.util.stream.IntStream;

/**
 * The gated delta rule of the Gated DeltaNet, per value head h with fp32 state S ∈ ℝ^{dk×dv}
 * (stored [Hv, dk, dv] per sequence: element (h, i, j) = S_h[i][j], i over key dims, j over value dims):
 * <pre>
 *   q ← l2norm(q)·dk^-½, k ← l2norm(k)            (l2norm(x) = x·rsqrt(Σx² + 1e-6))
 *   S ← S·exp(g_t);  δ = (v_t − Sᵀk_t)·β_t;  S ← S + k_t ⊗ δ;  o_t = Sᵀq_t
 * </pre>
 * Value head h reads key head h / r (r = Hv/Hk, repeat_interleave). Inputs are the conv output rows
 * [2·Hk·dk + Hv·dv] = [q | k | v]; beta and g are [rows, Hv]; the output is [rows, Hv·dv].
 * {@link #recurrent} steps token by token; {@link #chunked} is transformers' chunked form (WY representation,
 * chunks of {@link #CHUNK}) — equal in exact arithmetic.
 */
public record GatedDeltaRule(int keyHeads, int valueHeads, int keyDim, int valueDim) {

    public static final int CHUNK = 64;

    /** Floats of recurrent state per sequence: Hv·dk·dv. */
    public int stateSize() {
        return valueHeads * keyDim * valueDim;
    }

    private int convDim() {
        return 2 * keyHeads * keyDim + valueHeads * valueDim;
    }

    /** Token-by-token form. Reads and updates state[stateOffset ..]. */
    public void recurrent(float[] qkv, int firstRow, int rows, float[] beta, float[] g,
                          float[] state, int stateOffset, float[] out) {
        int dk = keyDim;
        int dv = valueDim;
        int cw = convDim();
        int r = valueHeads / keyHeads;
        float scale = (float) (1.0 / Math.sqrt(dk));
        heads().forEach(h -> {
            int kh = h / r;
            int s0 = stateOffset + h * dk * dv;
            float[] q = new float[dk];
            float[] k = new float[dk];
            float[] m = new float[dv];
            float[] o = new float[dv];
            for (int t = 0; t < rows; t++) {
                int row = (firstRow + t) * cw;
                l2norm(qkv, row + kh * dk, dk, scale, q);
                l2norm(qkv, row + keyHeads * dk + kh * dk, dk, 1f, k);
                int vo = row + 2 * keyHeads * dk + h * dv;
                int gi = (firstRow + t) * valueHeads + h;
                float decay = (float) Math.exp(g[gi]);
                float b = beta[gi];
                java.util.Arrays.fill(m, 0f);
                for (int i = 0; i < dk; i++) {
                    int so = s0 + i * dv;
                    float ki = k[i];
                    for (int j = 0; j < dv; j++) {
                        float sv = state[so + j] * decay;
                        state[so + j] = sv;
                        m[j] += sv * ki;
                    }
                }
                for (int j = 0; j < dv; j++) m[j] = (qkv[vo + j] - m[j]) * b;   // m now holds δ
                java.util.Arrays.fill(o, 0f);
                for (int i = 0; i < dk; i++) {
                    int so = s0 + i * dv;
                    float ki = k[i];
                    float qi = q[i];
                    for (int j = 0; j < dv; j++) {
                        float sv = state[so + j] + ki * m[j];
                        state[so + j] = sv;
                        o[j] += sv * qi;
                    }
                }
                System.arraycopy(o, 0, out, (firstRow + t) * valueHeads * dv + h * dv, dv);
            }
        });
    }

    /** Chunked form with chunks of {@code chunk} tokens (the last one may be shorter). */
    public void chunked(float[] qkv, int firstRow, int rows, float[] beta, float[] g,
                        float[] state, int stateOffset, float[] out, int chunk) {
        int dk = keyDim;
        int dv = valueDim;
        int cw = convDim();
        int r = valueHeads / keyHeads;
        float scale = (float) (1.0 / Math.sqrt(dk));
        heads().forEach(h -> {
            int kh = h / r;
            int s0 = stateOffset + h * dk * dv;
            float[] q = new float[chunk * dk];
            float[] k = new float[chunk * dk];
            float[] kb = new float[chunk * dk];      // k·β, then W = (I+A)⁻¹ (k·β·exp(G))
            float[] u = new float[chunk * dv];       // v·β, then U = (I+A)⁻¹ (v·β), then V' = U − W·S
            double[] gc = new double[chunk];         // cumulative g inside the chunk (double: G_i − G_j must not cancel)
            float[] a = new float[chunk * chunk];    // strictly lower (kβ·kᵀ) ⊙ exp(G_i − G_j)
            float[] o = new float[dv];
            for (int start = 0; start < rows; start += chunk) {
                int c = Math.min(chunk, rows - start);
                double acc = 0;
                for (int i = 0; i < c; i++) {
                    int t = firstRow + start + i;
                    int row = t * cw;
                    l2norm(qkv, row + kh * dk, dk, scale, q, i * dk);
                    l2norm(qkv, row + keyHeads * dk + kh * dk, dk, 1f, k, i * dk);
                    float b = beta[t * valueHeads + h];
                    acc += g[t * valueHeads + h];
                    gc[i] = acc;
                    for (int x = 0; x < dk; x++) kb[i * dk + x] = k[i * dk + x] * b;
                    int vo = row + 2 * keyHeads * dk + h * dv;
                    for (int j = 0; j < dv; j++) u[i * dv + j] = qkv[vo + j] * b;
                }
                for (int i = 0; i < c; i++) {
                    for (int j = 0; j < i; j++) {
                        a[i * chunk + j] = Linear.dot(kb, i * dk, k, j * dk, dk) * (float) Math.exp(gc[i] - gc[j]);
                    }
                }
                // forward substitution of (I + A)·X = B, rows in order
                for (int i = 0; i < c; i++) {
                    float eg = (float) Math.exp(gc[i]);
                    for (int x = 0; x < dk; x++) kb[i * dk + x] *= eg;
                    for (int j = 0; j < i; j++) {
                        float aij = a[i * chunk + j];
                        for (int x = 0; x < dk; x++) kb[i * dk + x] -= aij * kb[j * dk + x];
                        for (int y = 0; y < dv; y++) u[i * dv + y] -= aij * u[j * dv + y];
                    }
                }
                // V' = U − W·S
                for (int i = 0; i < c; i++) {
                    for (int x = 0; x < dk; x++) {
                        float w = kb[i * dk + x];
                        int so = s0 + x * dv;
                        for (int y = 0; y < dv; y++) u[i * dv + y] -= w * state[so + y];
                    }
                }
                // out_i = exp(G_i)·(q_i·S) + Σ_{j≤i} (q_i·k_j)·exp(G_i − G_j)·V'_j   (S = state at chunk start)
                for (int i = 0; i < c; i++) {
                    java.util.Arrays.fill(o, 0f);
                    for (int x = 0; x < dk; x++) {
                        float qx = q[i * dk + x];
                        int so = s0 + x * dv;
                        for (int y = 0; y < dv; y++) o[y] += qx * state[so + y];
                    }
                    float eg = (float) Math.exp(gc[i]);
                    for (int y = 0; y < dv; y++) o[y] *= eg;
                    for (int j = 0; j <= i; j++) {
                        float coef = Linear.dot(q, i * dk, k, j * dk, dk) * (float) Math.exp(gc[i] - gc[j]);
                        for (int y = 0; y < dv; y++) o[y] += coef * u[j * dv + y];
                    }
                    System.arraycopy(o, 0, out, (firstRow + start + i) * valueHeads * dv + h * dv, dv);
                }
                // S ← S·exp(G_last) + Σ_i (k_i·exp(G_last − G_i)) ⊗ V'_i
                double last = gc[c - 1];
                float el = (float) Math.exp(last);
                for (int x = 0; x < dk; x++) {
                    int so = s0 + x * dv;
                    for (int y = 0; y < dv; y++) state[so + y] *= el;
                    for (int i = 0; i < c; i++) {
                        float kx = k[i * dk + x] * (float) Math.exp(last - gc[i]);
                        for (int y = 0; y < dv; y++) state[so + y] += kx * u[i * dv + y];
                    }
                }
            }
        });
    }

    private IntStream heads() {
        IntStream s = IntStream.range(0, valueHeads);
        return valueHeads > 1 ? s.parallel() : s;
    }

    private static void l2norm(float[] src, int offset, int n, float scale, float[] dst) {
        l2norm(src, offset, n, scale, dst, 0);
    }

    private static void l2norm(float[] src, int offset, int n, float scale, float[] dst, int dstOffset) {
        float ss = 0;
        for (int i = 0; i < n; i++) ss += src[offset + i] * src[offset + i];
        float inv = (float) (1.0 / Math.sqrt(ss + 1e-6f));
        for (int i = 0; i < n; i++) dst[dstOffset + i] = src[offset + i] * inv * scale;
    }
}
