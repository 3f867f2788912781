package dev.jnext.cpu.ops;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * CPU emulation of where the chunked gated delta rule rounds (issue 16): one value head, dk = dv = 128, chunks of 64,
 * three ways on the same bf16 inputs:
 * <ul>
 *   <li>{@link #truthChunk}: fp64, exact up to fp64 (the truth);</li>
 *   <li>{@link #jnextChunk}: jnext's {@code gated_delta_rule_chunked.cu} rounding by rounding (prep pass: raw-row K·Kᵀ and
 *       Q·Kᵀ, fp32 norms and gates, fp32 forward substitution, Tβ and P stored bf16; state pass: bf16 Sᵀ for K·S and Q·S,
 *       X = v − fk·(K·S) rounded to bf16 before Tβ·X, V' rounded to bf16 for P·V', V'·fl rounded to bf16 for the state
 *       update, bf16 output), with every rounding site switchable ({@link Mode}) so that one site at a time can be
 *       made exact or split into a bf16 hi + lo pair;</li>
 *   <li>{@link #flaChunk}: fla's {@code chunk_gated_delta_rule} (bf16 l2norm outputs, fp32 cumsum scaled by 1/ln 2 and
 *       exp2, fused K·Kᵀ + block solve with tf32 block merges, T, W, U, the per-chunk h and v_new stored bf16, bf16 h in
 *       W·h and Q·h, bf16 v_new·decay in the state update, bf16 Q·Kᵀ gate matrix).</li>
 * </ul>
 * An MMA is emulated as exact products summed in fp64 over each 16-wide k-step and accumulated in fp32 across k-steps.
 * bf16 rounding is round-to-nearest-even on the fp32 bits; tf32 is cvt.rna (nearest, ties away).
 */
final class ChunkedRuleEmulator {
    static final int C = 64, D = 128;
    static final float SCALE = (float) (1.0 / Math.sqrt(D));
    static final float RCP_LN2 = (float) (1.0 / Math.log(2.0));

    private ChunkedRuleEmulator() {}

    // ------------------------------------------------------------------------------------------------------------
    // roundings

    /** How one rounding site is done. SPLIT: the value is carried as bf16 hi + bf16 lo (two MMAs). */
    enum Mode { BF16, SPLIT, FP32 }

    /** jnext's rounding sites (in the .cu's order). */
    enum Site {
        /** the fp32 state Sᵀ packed to bf16 as the A operand of K·S */ S_KS,
        /** the same bf16 Sᵀ fragments handed to the output warp for Q·S */ S_QS,
        /** X = v − fk·(K·S) packed to bf16 before Tβ·X */ X,
        /** Tβ = (I + A)⁻¹·diag(β) stored bf16 by the prep pass */ TB,
        /** P = lower(e^{Δγ} q̂·k̂) stored bf16 by the prep pass */ P,
        /** V' packed to bf16 for the output warp's P·V' */ VO,
        /** V'·fl packed to bf16 for the state update K̂ᵀ·(fl ⊙ V') */ VS,
        /** the output cast */ OUT
    }

    static float bf16(float x) {
        int b = Float.floatToRawIntBits(x);
        if ((b & 0x7f800000) == 0x7f800000) return x;
        b += 0x7fff + ((b >>> 16) & 1);
        return Float.intBitsToFloat(b & 0xffff0000);
    }

    static float tf32(float x) {
        int b = Float.floatToRawIntBits(x);
        if ((b & 0x7f800000) == 0x7f800000) return x;
        return Float.intBitsToFloat((b + 0x1000) & 0xffffe000);
    }

    static float round(Mode m, float x) {
        return switch (m) {
            case BF16 -> bf16(x);
            case SPLIT -> {
                float hi = bf16(x);
                yield hi + bf16(x - hi);  // exact in fp32: 16 significant bits
            }
            case FP32 -> x;
        };
    }

    /** Σ a[ao + k·as]·b[bo + k·bs], k &lt; n, onto acc: fp64 within each 16-wide k-step, fp32 across k-steps. */
    static float mma(float acc, float[] a, int ao, int as, float[] b, int bo, int bs, int n) {
        if (as == 1 && bs == 1 && (n & 15) == 0) {  // the common case, four independent partial sums
            for (int k0 = 0; k0 < n; k0 += 16) {
                double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
                for (int k = ao + k0, j = bo + k0, e = k + 16; k < e; k += 4, j += 4) {
                    s0 += (double) a[k] * b[j];
                    s1 += (double) a[k + 1] * b[j + 1];
                    s2 += (double) a[k + 2] * b[j + 2];
                    s3 += (double) a[k + 3] * b[j + 3];
                }
                acc = (float) (acc + ((s0 + s1) + (s2 + s3)));
            }
            return acc;
        }
        for (int k0 = 0; k0 < n; k0 += 16) {
            double s = 0;
            int e = Math.min(n, k0 + 16);
            for (int k = k0; k < e; k++) s += (double) a[ao + k * as] * b[bo + k * bs];
            acc = (float) (acc + s);
        }
        return acc;
    }

    /** [rows][cols] → [cols][rows] */
    static float[] transpose(float[] a, int rows, int cols) {
        float[] t = new float[a.length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
        return t;
    }

    static float expf(float x) {
        return (float) Math.exp(x);
    }

    static float exp2f(float x) {
        return (float) Math.pow(2.0, x);
    }

    // ------------------------------------------------------------------------------------------------------------
    // inputs

    /** One value head's inputs: raw bf16 q, k (before l2norm) and v rows [len][128], g (log decay, fp32), β (bf16). */
    record Input(int len, float[] q, float[] k, float[] v, float[] g, float[] beta) {}

    /** How a synthetic head behaves: gating (g = −e^{aLog}·softplus(a + dtBias), a ~ N(0, 1)), key/query coherence. */
    record Profile(String name, double aLog, double dtBias, double keyMean, double repeat, double betaMean,
                   double queryAlign, double valueMean) {
        Profile(String name, double aLog, double dtBias, double keyMean, double repeat, double betaMean) {
            this(name, aLog, dtBias, keyMean, repeat, betaMean, 0.7, 0.0);
        }
    }

    static final Profile SLOW = new Profile("slow decay (g≈−0.01)", -2.5, -1.5, 1.0, 0.0, 0.5);
    static final Profile MEDIUM = new Profile("medium decay (g≈−0.3)", 0.0, -1.0, 1.0, 0.0, 0.5);
    static final Profile FAST = new Profile("fast decay (g≈−3)", 1.5, 0.0, 1.0, 0.0, 0.5);
    static final Profile REPEAT = new Profile("slow decay, repeated keys, β≈0.9", -2.5, -1.5, 1.5, 0.3, 2.5);
    /** near-permanent memory, keys almost parallel, queries not aligned with them, values with a large common part */
    static final Profile LONG = new Profile("very slow decay (g≈−1e-4), parallel keys", -7.0, -1.5, 3.0, 0.0, 0.5, 0.0, 2.0);
    static final Profile SMALLBETA = new Profile("slow decay, β≈0.03", -2.5, -1.5, 1.0, 0.0, -3.5);

    static float silu(double x) {
        return (float) (x / (1 + Math.exp(-x)));
    }

    /**
     * Conv-output-like rows: q, k, v = silu(head mean + AR(1) noise) (so keys share a direction, cos ≈ 0.3-0.7, as
     * the model's do), a fraction {@code repeat} of tokens repeat the previous key and value exactly; β = sigmoid(N)
     * rounded to bf16; g from the model's gating formula.
     */
    static Input synth(Profile p, int len, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] q = new float[len * D], k = new float[len * D], v = new float[len * D];
        float[] g = new float[len], beta = new float[len];
        double[] mk = new double[D], mq = new double[D], mv = new double[D];
        double[] zk = new double[D], zq = new double[D], zv = new double[D];
        for (int x = 0; x < D; x++) {
            mk[x] = p.keyMean * r.nextGaussian();
            mq[x] = p.queryAlign * mk[x] + 0.7 * r.nextGaussian();
            mv[x] = p.valueMean + 0.5 * r.nextGaussian();
        }
        double rho = 0.6, s = Math.sqrt(1 - rho * rho);
        for (int t = 0; t < len; t++) {
            boolean rep = t > 0 && r.nextDouble() < p.repeat;
            for (int x = 0; x < D; x++) {
                zk[x] = rho * zk[x] + s * r.nextGaussian();
                zq[x] = rho * zq[x] + s * r.nextGaussian();
                zv[x] = rho * zv[x] + s * r.nextGaussian();
                q[t * D + x] = bf16(2f * silu(mq[x] + zq[x]));
                k[t * D + x] = rep ? k[(t - 1) * D + x] : bf16(2f * silu(mk[x] + zk[x]));
                v[t * D + x] = rep ? v[(t - 1) * D + x] : bf16(silu(mv[x] + zv[x]));
            }
            double a = r.nextGaussian();
            double sp = Math.log1p(Math.exp(a + p.dtBias));
            g[t] = (float) (-Math.exp(p.aLog) * sp);
            beta[t] = bf16((float) (1 / (1 + Math.exp(-(p.betaMean + 1.5 * r.nextGaussian())))));
        }
        return new Input(len, q, k, v, g, beta);
    }

    // ------------------------------------------------------------------------------------------------------------
    // one chunk's intermediates

    /** A chunk's intermediates (rows past n are zero); fields a variant does not have stay null. */
    static final class Chunk {
        int n;
        double[] a;     // A = strict-lower β_i e^{γi−γj} k̂_i·k̂_j        [C][C]
        double[] t;     // T = (I + A)⁻¹                                  [C][C]
        double[] tb;    // T·diag(β)                                      [C][C]
        double[] w;     // W = T·(β e^γ k̂)                                [C][D]
        double[] u;     // U = T·(β v)                                    [C][D]
        double[] x;     // X = v − e^γ k̂·S                                [C][D]
        double[] vnew;  // v_new = V' = U − W·S (fp32 value, before any cast)  [C][D]
        double[] o;     // output before the cast                        [n][D]
        double[] oOut;  // output as stored (bf16 for the kernels)       [n][D]
        double[] sAfter;  // state after the chunk                        [D][D]
    }

    static double[] d(float[] f) {
        double[] r = new double[f.length];
        for (int i = 0; i < f.length; i++) r[i] = f[i];
        return r;
    }

    // ------------------------------------------------------------------------------------------------------------
    // fp64 truth

    /**
     * Value head h of a batch as the kernel reads it: conv-output rows qkv [tokens][2·Hk·dk + Hv·dv] (bf16 bits),
     * β and g [tokens][Hv] — for feeding activations dumped from the model on the GPU host to the emulator.
     */
    static Input fromQkvRows(short[] qkv, float[] beta, float[] g, int tokens, int hk, int hv, int h) {
        int width = 2 * hk * D + hv * D, kh = h / (hv / hk);
        float[] q = new float[tokens * D], k = new float[tokens * D], v = new float[tokens * D];
        float[] gg = new float[tokens], bb = new float[tokens];
        for (int t = 0; t < tokens; t++) {
            for (int x = 0; x < D; x++) {
                q[t * D + x] = Float.intBitsToFloat((qkv[t * width + kh * D + x] & 0xffff) << 16);
                k[t * D + x] = Float.intBitsToFloat((qkv[t * width + hk * D + kh * D + x] & 0xffff) << 16);
                v[t * D + x] = Float.intBitsToFloat((qkv[t * width + 2 * hk * D + h * D + x] & 0xffff) << 16);
            }
            gg[t] = g[t * hv + h];
            bb[t] = beta[t * hv + h];
        }
        return new Input(tokens, q, k, v, gg, bb);
    }

    static Chunk truthChunk(Input in, int t0, int n, double[] S) {
        double[] qh = new double[C * D], kh = new double[C * D], gam = new double[C], b = new double[C];
        double acc = 0;
        for (int i = 0; i < n; i++) {
            int t = t0 + i;
            double sq = 0, sk = 0;
            for (int x = 0; x < D; x++) {
                sq += (double) in.q[t * D + x] * in.q[t * D + x];
                sk += (double) in.k[t * D + x] * in.k[t * D + x];
            }
            double rq = SCALE_D / Math.sqrt(sq + 1e-6), rk = 1 / Math.sqrt(sk + 1e-6);
            for (int x = 0; x < D; x++) {
                qh[i * D + x] = in.q[t * D + x] * rq;
                kh[i * D + x] = in.k[t * D + x] * rk;
            }
            acc += in.g[t];
            gam[i] = acc;
            b[i] = in.beta[t];
        }
        Chunk c = new Chunk();
        c.n = n;
        c.a = new double[C * C];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++) c.a[i * C + j] = b[i] * Math.exp(gam[i] - gam[j]) * dot(kh, i * D, kh, j * D);
        c.t = new double[C * C];
        for (int col = 0; col < C; col++)
            for (int i = 0; i < C; i++) {
                double s = i == col ? 1 : 0;
                for (int j = col; j < i; j++) s -= c.a[i * C + j] * c.t[j * C + col];
                c.t[i * C + col] = s;
            }
        c.tb = new double[C * C];
        for (int i = 0; i < C; i++)
            for (int j = 0; j < C; j++) c.tb[i * C + j] = c.t[i * C + j] * b[j];
        c.w = new double[C * D];
        c.u = new double[C * D];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) {
                double tw = c.t[i * C + j] * b[j] * Math.exp(gam[j]), tu = c.t[i * C + j] * b[j];
                for (int x = 0; x < D; x++) {
                    c.w[i * D + x] += tw * kh[j * D + x];
                    c.u[i * D + x] += tu * in.v[(t0 + j) * D + x];
                }
            }
        double[] ks = new double[C * D], qs = new double[C * D];  // k̂·S, q̂·S
        for (int i = 0; i < n; i++)
            for (int x = 0; x < D; x++) {
                double kx = kh[i * D + x], qx = qh[i * D + x];
                for (int y = 0; y < D; y++) {
                    ks[i * D + y] += kx * S[x * D + y];
                    qs[i * D + y] += qx * S[x * D + y];
                }
            }
        c.x = new double[C * D];
        c.vnew = new double[C * D];
        for (int i = 0; i < n; i++)
            for (int y = 0; y < D; y++) c.x[i * D + y] = in.v[(t0 + i) * D + y] - Math.exp(gam[i]) * ks[i * D + y];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) {
                double tb = c.tb[i * C + j];
                for (int y = 0; y < D; y++) c.vnew[i * D + y] += tb * c.x[j * D + y];
            }
        c.o = new double[n * D];
        for (int i = 0; i < n; i++) {
            double eg = Math.exp(gam[i]);
            for (int y = 0; y < D; y++) c.o[i * D + y] = eg * qs[i * D + y];
            for (int j = 0; j <= i; j++) {
                double p = Math.exp(gam[i] - gam[j]) * dot(qh, i * D, kh, j * D);
                for (int y = 0; y < D; y++) c.o[i * D + y] += p * c.vnew[j * D + y];
            }
        }
        c.oOut = c.o;
        double gl = gam[n - 1], el = Math.exp(gl);
        for (int i = 0; i < D * D; i++) S[i] *= el;
        for (int i = 0; i < n; i++) {
            double f = Math.exp(gl - gam[i]);
            for (int x = 0; x < D; x++) {
                double kx = kh[i * D + x] * f;
                for (int y = 0; y < D; y++) S[x * D + y] += kx * c.vnew[i * D + y];
            }
        }
        c.sAfter = S.clone();
        return c;
    }

    static final double SCALE_D = 1.0 / Math.sqrt(D);

    static double dot(double[] a, int ao, double[] b, int bo) {
        double s = 0;
        for (int x = 0; x < D; x++) s += a[ao + x] * b[bo + x];
        return s;
    }

    /** fp64 token-by-token rule from state S over tokens t0 .. t0+n−1; returns the outputs [n][D]. */
    static double[] recurrent(Input in, int t0, int n, double[] S) {
        double[] o = new double[n * D];
        double[] kh = new double[D], qh = new double[D], m = new double[D];
        for (int i = 0; i < n; i++) {
            int t = t0 + i;
            double sq = 0, sk = 0;
            for (int x = 0; x < D; x++) {
                sq += (double) in.q[t * D + x] * in.q[t * D + x];
                sk += (double) in.k[t * D + x] * in.k[t * D + x];
            }
            double rq = SCALE_D / Math.sqrt(sq + 1e-6), rk = 1 / Math.sqrt(sk + 1e-6);
            for (int x = 0; x < D; x++) {
                qh[x] = in.q[t * D + x] * rq;
                kh[x] = in.k[t * D + x] * rk;
            }
            double decay = Math.exp(in.g[t]);
            java.util.Arrays.fill(m, 0);
            for (int x = 0; x < D; x++)
                for (int y = 0; y < D; y++) {
                    S[x * D + y] *= decay;
                    m[y] += S[x * D + y] * kh[x];
                }
            for (int y = 0; y < D; y++) m[y] = (in.v[t * D + y] - m[y]) * in.beta[t];
            for (int x = 0; x < D; x++)
                for (int y = 0; y < D; y++) {
                    S[x * D + y] += kh[x] * m[y];
                    o[i * D + y] += S[x * D + y] * qh[x];
                }
        }
        return o;
    }

    // ------------------------------------------------------------------------------------------------------------
    // jnext: gated_delta_rule_chunked.cu

    /** jnext's rounding at each {@link Site}; {@link #jnext()} is the shipped kernel. */
    static Mode[] jnext() {
        Mode[] m = new Mode[Site.values().length];
        java.util.Arrays.fill(m, Mode.BF16);
        return m;
    }

    /**
     * The proposed fix (branch issue-16-kernel-fix): X carried as bf16 hi + lo into Tβ·X (a second MMA on the same
     * Tβ fragments) and V' handed to the output warp as hi + lo for P·V' (a second MMA on the same P fragments).
     * Only A operands are split, so no extra shared-memory B-operand traffic and no extra bytes in the chunk block.
     */
    static Mode[] fixed() {
        return with(with(jnext(), Site.X, Mode.SPLIT), Site.VO, Mode.SPLIT);
    }

    static Mode[] with(Mode[] base, Site s, Mode mode) {
        Mode[] m = base.clone();
        m[s.ordinal()] = mode;
        return m;
    }

    /**
     * One chunk of jnext's kernel pair. S: fp32 state [dk][dv], updated. Roundings at each site as {@code m} says.
     */
    static Chunk jnextChunk(Input in, int t0, int n, float[] S, Mode[] m) {
        // ---- prep pass
        float[] rk = new float[C], rq = new float[C], gam = new float[C], beta = new float[C];
        for (int i = 0; i < n; i++) {
            int t = t0 + i;
            // two threads per row, each 64 columns in fp32, then a shuffle add
            float sk0 = 0, sk1 = 0, sq0 = 0, sq1 = 0;
            for (int x = 0; x < D / 2; x++) {
                float a = in.k[t * D + x], bb = in.k[t * D + D / 2 + x];
                sk0 += a * a;
                sk1 += bb * bb;
                a = in.q[t * D + x];
                bb = in.q[t * D + D / 2 + x];
                sq0 += a * a;
                sq1 += bb * bb;
            }
            rk[i] = (float) (1 / Math.sqrt(sk0 + sk1 + 1e-6f));
            rq[i] = (float) (1 / Math.sqrt(sq0 + sq1 + 1e-6f)) * SCALE;
            beta[i] = in.beta[t];
        }
        // γ: pair sums, Hillis-Steele inclusive scan over 32 lanes (fp32), as the warp does
        float[] s = new float[32], g1 = new float[32];
        for (int l = 0; l < 32; l++) {
            float a = 2 * l < n ? in.g[t0 + 2 * l] : 0f, bb = 2 * l + 1 < n ? in.g[t0 + 2 * l + 1] : 0f;
            g1[l] = bb;
            s[l] = a + bb;
        }
        for (int o = 1; o < 32; o <<= 1) {
            float[] y = s.clone();
            for (int l = o; l < 32; l++) s[l] = y[l] + y[l - o];
        }
        for (int l = 0; l < 32; l++) {
            gam[2 * l] = s[l] - g1[l];
            gam[2 * l + 1] = s[l];
        }
        float gl = gam[n - 1];
        float[] fk = new float[C], fq = new float[C], fl = new float[C];
        for (int i = 0; i < n; i++) {
            float eg = expf(gam[i]);
            fk[i] = eg * rk[i];
            fq[i] = eg * rq[i];
            fl[i] = expf(gl - gam[i]) * rk[i];
        }
        float el = expf(gl);
        float[] kr = new float[C * D], qr = new float[C * D], vr = new float[C * D];  // raw rows, zero padded
        System.arraycopy(in.k, t0 * D, kr, 0, n * D);
        System.arraycopy(in.q, t0 * D, qr, 0, n * D);
        System.arraycopy(in.v, t0 * D, vr, 0, n * D);
        float[] a = new float[C * C], p = new float[C * C];
        for (int i = 0; i < n; i++) {
            float bki = beta[i] * rk[i];
            for (int j = 0; j <= i; j++) {
                float kk = mma(0f, kr, i * D, 1, kr, j * D, 1, D), qk = mma(0f, qr, i * D, 1, kr, j * D, 1, D);
                float decay = expf(gam[i] - gam[j]);
                p[i * C + j] = round(m[Site.P.ordinal()], decay * rq[i] * rk[j] * qk);
                if (j < i) a[i * C + j] = bki * decay * rk[j] * kk;
            }
        }
        float[] t = solveJnext(a);
        float[] tb = new float[C * C];
        for (int i = 0; i < C; i++)
            for (int j = 0; j < C; j++) tb[i * C + j] = round(m[Site.TB.ordinal()], t[i * C + j] * beta[j]);
        // ---- state pass (computed transposed on the GPU; the sums are the same)
        float[] sKS = new float[D * D], sQS = new float[D * D];  // [y][x]: Sᵀ as the A operand
        for (int x = 0; x < D; x++)
            for (int y = 0; y < D; y++) {
                sKS[y * D + x] = round(m[Site.S_KS.ordinal()], S[x * D + y]);
                sQS[y * D + x] = round(m[Site.S_QS.ordinal()], S[x * D + y]);
            }
        float[] x = new float[C * D], xr = new float[C * D];
        for (int i = 0; i < C; i++)
            for (int y = 0; y < D; y++) {
                float ks = mma(0f, sKS, y * D, 1, kr, i * D, 1, D);
                x[i * D + y] = vr[i * D + y] - fk[i] * ks;
                xr[i * D + y] = round(m[Site.X.ordinal()], x[i * D + y]);
            }
        float[] vp = new float[C * D], xrT = transpose(xr, C, D);
        for (int i = 0; i < C; i++) {
            int kEnd = (i / 16 + 1) * 16;  // blocks at or below the diagonal
            for (int y = 0; y < D; y++) vp[i * D + y] = mma(0f, tb, i * C, 1, xrT, y * C, 1, kEnd);
        }
        float[] vo = new float[C * D], vs = new float[C * D];
        for (int i = 0; i < C; i++)
            for (int y = 0; y < D; y++) {
                vo[i * D + y] = round(m[Site.VO.ordinal()], vp[i * D + y]);
                vs[i * D + y] = round(m[Site.VS.ordinal()], vp[i * D + y] * fl[i]);
            }
        Chunk c = new Chunk();
        c.n = n;
        c.o = new double[n * D];
        c.oOut = new double[n * D];
        float[] voT = transpose(vo, C, D), vsT = transpose(vs, C, D);
        for (int i = 0; i < n; i++) {
            int kEnd = (i / 16 + 1) * 16;
            for (int y = 0; y < D; y++) {
                float o = mma(0f, sQS, y * D, 1, qr, i * D, 1, D) * fq[i];
                o = mma(o, p, i * C, 1, voT, y * C, 1, kEnd);
                c.o[i * D + y] = o;
                c.oOut[i * D + y] = round(m[Site.OUT.ordinal()], o);
            }
        }
        for (int i = 0; i < D * D; i++) S[i] *= el;
        float[] kT = new float[D * C];  // K̂ᵀ: [x][i]
        for (int i = 0; i < C; i++)
            for (int xx = 0; xx < D; xx++) kT[xx * C + i] = kr[i * D + xx];
        for (int xx = 0; xx < D; xx++)
            for (int y = 0; y < D; y++) S[xx * D + y] = mma(S[xx * D + y], kT, xx * C, 1, vsT, y * C, 1, C);
        // intermediates in the common normalisation
        c.a = d(a);
        c.tb = d(tb);
        c.x = new double[C * D];
        for (int i = 0; i < C; i++)
            for (int y = 0; y < D; y++) c.x[i * D + y] = x[i * D + y];
        c.vnew = d(vp);
        c.sAfter = d(S);
        return c;
    }

    /** jnext's fp32 forward substitution of T = (I + A)⁻¹: 4 partial sums per row, the split at row 32. */
    static float[] solveJnext(float[] a) {
        float[] t = new float[C * C];
        float[] xm = new float[32 * 32];
        for (int col = 0; col < C; col++) {
            float[] x = new float[C];
            if (col < 32) {
                final int cc = col;
                solveRows(a, x, 0, 32, i -> i == cc ? 1f : 0f);
                for (int i = 0; i < 32; i++) xm[i * 32 + col] = x[i];
            } else {
                final int cc = col;
                solveRows(a, x, 32, C, i -> i == cc ? 1f : 0f);
                for (int i = 32; i < C; i++) t[i * C + col] = x[i];
            }
        }
        for (int col = 0; col < 32; col++) {
            float[] cm = new float[32];
            for (int r = 0; r < 32; r++) {
                float[] acc = new float[4];
                for (int k = 0; k < 32; k += 4)
                    for (int e = 0; e < 4; e++) acc[e] += a[(32 + r) * C + k + e] * xm[(k + e) * 32 + col];
                cm[r] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
            }
            float[] x = new float[C];
            solveRows(a, x, 32, C, i -> -cm[i - 32]);
            for (int i = 0; i < 32; i++) t[i * C + col] = xm[i * 32 + col];
            for (int i = 32; i < C; i++) t[i * C + col] = x[i];
        }
        return t;
    }

    private static void solveRows(float[] a, float[] x, int f, int l, java.util.function.IntFunction<Float> init) {
        for (int i = f; i < l; i++) {
            float[] acc = {init.apply(i), 0f, 0f, 0f};
            for (int jj = f; jj < i; jj += 4)
                for (int e = 0; e < 4 && jj + e < i; e++) acc[e] -= a[i * C + jj + e] * x[jj + e];
            x[i] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // fla: chunk_gated_delta_rule (l2norm in kernel), chunk 64

    /** fla's rounding choices that the emulator can switch (one at a time, for the table). */
    record Fla(boolean bf16State, boolean bf16WU, boolean bf16T, boolean tf32Merge) {
        static final Fla SHIPPED = new Fla(true, true, true, true);
    }

    static Chunk flaChunk(Input in, int t0, int n, float[] h, Fla f) {
        float[] qh = new float[C * D], kh = new float[C * D], vr = new float[C * D], gs = new float[C], b = new float[C];
        for (int i = 0; i < n; i++) {
            int t = t0 + i;
            float sq = 0, sk = 0;
            for (int x = 0; x < D; x++) {
                sq += in.q[t * D + x] * in.q[t * D + x];
                sk += in.k[t * D + x] * in.k[t * D + x];
            }
            float rq = (float) (1 / Math.sqrt(sq + 1e-6f)), rk = (float) (1 / Math.sqrt(sk + 1e-6f));
            for (int x = 0; x < D; x++) {
                qh[i * D + x] = bf16(in.q[t * D + x] * rq);
                kh[i * D + x] = bf16(in.k[t * D + x] * rk);
                vr[i * D + x] = in.v[t * D + x];
            }
            b[i] = in.beta[t];
        }
        float acc = 0;  // chunk_local_cumsum: fp32, then × 1/ln 2
        for (int i = 0; i < n; i++) {
            acc += in.g[t0 + i];
            gs[i] = acc * RCP_LN2;
        }
        // fused K·Kᵀ, gate, β, solve
        float[] a = new float[C * C];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++) {
                float kk = mma(0f, kh, i * D, 1, kh, j * D, 1, D);
                a[i * C + j] = kk * exp2f(gs[i] - gs[j]) * b[i];
            }
        float[] t = solveFla(a, f.tf32Merge);
        float[] tr = new float[C * C];
        for (int i = 0; i < C * C; i++) tr[i] = f.bf16T ? bf16(t[i]) : t[i];
        // recompute_w_u
        float[] vb = new float[C * D], kbg = new float[C * D];
        for (int i = 0; i < n; i++) {
            float eg = exp2f(gs[i]);
            for (int x = 0; x < D; x++) {
                vb[i * D + x] = f.bf16WU ? bf16(vr[i * D + x] * b[i]) : vr[i * D + x] * b[i];
                float kb = kh[i * D + x] * b[i] * eg;
                kbg[i * D + x] = f.bf16WU ? bf16(kb) : kb;
            }
        }
        float[] u = new float[C * D], w = new float[C * D], vbT = transpose(vb, C, D), kbgT = transpose(kbg, C, D);
        for (int i = 0; i < n; i++)
            for (int x = 0; x < D; x++) {
                float uu = mma(0f, tr, i * C, 1, vbT, x * C, 1, C), ww = mma(0f, tr, i * C, 1, kbgT, x * C, 1, C);
                u[i * D + x] = f.bf16WU ? bf16(uu) : uu;
                w[i * D + x] = f.bf16WU ? bf16(ww) : ww;
            }
        // chunk_delta_h: h stored bf16 for chunk_fwd_o; v_new = u − w·bf16(h)
        float[] hb = new float[D * D];  // [x][y]
        for (int i = 0; i < D * D; i++) hb[i] = f.bf16State ? bf16(h[i]) : h[i];
        float[] hbT = transpose(hb, D, D);
        float[] vnew = new float[C * D], vnb = new float[C * D], vd = new float[C * D];
        float gl = gs[n - 1];
        for (int i = 0; i < n; i++) {
            float dec = exp2f(gl - gs[i]);
            for (int y = 0; y < D; y++) {
                float ws = mma(0f, w, i * D, 1, hbT, y * D, 1, D);
                vnew[i * D + y] = u[i * D + y] - ws;
                vnb[i * D + y] = bf16(vnew[i * D + y]);
                vd[i * D + y] = bf16(vnew[i * D + y] * dec);
            }
        }
        // chunk_fwd_o: o = (q̂·h)·exp2(g)·scale + bf16(q̂·k̂ᵀ ⊙ exp2(Δg))·v_new·scale
        Chunk c = new Chunk();
        c.n = n;
        c.o = new double[n * D];
        c.oOut = new double[n * D];
        float[] aq = new float[C * C];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) aq[i * C + j] = bf16(mma(0f, qh, i * D, 1, kh, j * D, 1, D) * exp2f(gs[i] - gs[j]));
        float[] vnbT = transpose(vnb, C, D), vdT = transpose(vd, C, D);
        for (int i = 0; i < n; i++) {
            float eg = exp2f(gs[i]);
            for (int y = 0; y < D; y++) {
                float oo = mma(0f, qh, i * D, 1, hbT, y * D, 1, D) * eg;
                float ov = mma(0f, aq, i * C, 1, vnbT, y * C, 1, C);
                float o = oo * SCALE + ov * SCALE;
                c.o[i * D + y] = o;
                c.oOut[i * D + y] = bf16(o);
            }
        }
        float egl = exp2f(gl);
        for (int i = 0; i < D * D; i++) h[i] *= egl;
        float[] kT = new float[D * C];
        for (int i = 0; i < C; i++)
            for (int x = 0; x < D; x++) kT[x * C + i] = kh[i * D + x];
        for (int x = 0; x < D; x++)
            for (int y = 0; y < D; y++) h[x * D + y] = mma(h[x * D + y], kT, x * C, 1, vdT, y * C, 1, C);
        c.a = d(a);
        c.t = d(tr);
        c.w = d(w);
        c.u = d(u);
        c.vnew = d(vnew);
        c.sAfter = d(h);
        return c;
    }

    /** fla's fused solve: 16×16 diagonal blocks by fp32 substitution, off-diagonal blocks merged by (tf32) dots. */
    static float[] solveFla(float[] a, boolean tf32) {
        final int bc = 16;
        float[][][] ai = new float[4][4][];   // (I + A)⁻¹ blocks [i][j], i ≥ j
        float[][][] ab = new float[4][4][];   // A blocks
        for (int bi = 0; bi < 4; bi++)
            for (int bj = 0; bj <= bi; bj++) {
                float[] blk = new float[bc * bc];
                for (int r = 0; r < bc; r++)
                    for (int cc = 0; cc < bc; cc++) blk[r * bc + cc] = a[(bi * bc + r) * C + bj * bc + cc];
                ab[bi][bj] = blk;
            }
        for (int bi = 0; bi < 4; bi++) {
            float[] A = ab[bi][bi], x = new float[bc * bc];
            for (int i = 0; i < bc * bc; i++) x[i] = -A[i];
            for (int i = 2; i < bc; i++) {
                float[] row = new float[bc];
                for (int j = 0; j < i; j++) row[j] = -A[i * bc + j];
                float[] nr = row.clone();
                for (int cc = 0; cc < bc; cc++) {  // row + Σ_m row[m]·x[m][:] (tl.sum over m, fp32)
                    float s = 0;
                    for (int mm = 0; mm < bc; mm++) s += row[mm] * x[mm * bc + cc];
                    nr[cc] = row[cc] + s;
                }
                System.arraycopy(nr, 0, x, i * bc, bc);
            }
            for (int i = 0; i < bc; i++) x[i * bc + i] += 1f;
            ai[bi][bi] = x;
        }
        java.util.function.BinaryOperator<float[]> dot = (p, q) -> {
            float[] r = new float[bc * bc];
            for (int i = 0; i < bc; i++)
                for (int j = 0; j < bc; j++) {
                    double s = 0;
                    for (int k = 0; k < bc; k++) s += (double) (tf32 ? tf32(p[i * bc + k]) : p[i * bc + k]) * (tf32 ? tf32(q[k * bc + j]) : q[k * bc + j]);
                    r[i * bc + j] = (float) s;
                }
            return r;
        };
        java.util.function.BinaryOperator<float[]> add = (p, q) -> {
            float[] r = new float[bc * bc];
            for (int i = 0; i < r.length; i++) r[i] = p[i] + q[i];
            return r;
        };
        java.util.function.UnaryOperator<float[]> neg = p -> {
            float[] r = new float[bc * bc];
            for (int i = 0; i < r.length; i++) r[i] = -p[i];
            return r;
        };
        ai[1][0] = neg.apply(dot.apply(dot.apply(ai[1][1], ab[1][0]), ai[0][0]));
        ai[2][1] = neg.apply(dot.apply(dot.apply(ai[2][2], ab[2][1]), ai[1][1]));
        ai[3][2] = neg.apply(dot.apply(dot.apply(ai[3][3], ab[3][2]), ai[2][2]));
        ai[2][0] = neg.apply(dot.apply(ai[2][2], add.apply(dot.apply(ab[2][0], ai[0][0]), dot.apply(ab[2][1], ai[1][0]))));
        ai[3][1] = neg.apply(dot.apply(ai[3][3], add.apply(dot.apply(ab[3][1], ai[1][1]), dot.apply(ab[3][2], ai[2][1]))));
        ai[3][0] = neg.apply(dot.apply(ai[3][3], add.apply(add.apply(dot.apply(ab[3][0], ai[0][0]), dot.apply(ab[3][1], ai[1][0])),
                dot.apply(ab[3][2], ai[2][0]))));
        float[] t = new float[C * C];
        for (int bi = 0; bi < 4; bi++)
            for (int bj = 0; bj <= bi; bj++)
                for (int r = 0; r < bc; r++)
                    for (int cc = 0; cc < bc; cc++) t[(bi * bc + r) * C + bj * bc + cc] = ai[bi][bj][r * bc + cc];
        return t;
    }

    // ------------------------------------------------------------------------------------------------------------
    // driving a sequence and measuring

    /** A variant: one chunk from a fp32 state that it updates. */
    interface Variant {
        Chunk chunk(Input in, int t0, int n, float[] s);
    }

    static Variant jnextVariant(Mode[] m) {
        return (in, t0, n, s) -> jnextChunk(in, t0, n, s, m);
    }

    static Variant flaVariant(Fla f) {
        return (in, t0, n, s) -> flaChunk(in, t0, n, s, f);
    }

    /** The truth's chunks over the whole input from state 0. */
    static Chunk[] truth(Input in) {
        int nc = (in.len + C - 1) / C;
        Chunk[] r = new Chunk[nc];
        double[] S = new double[D * D];
        for (int c = 0; c < nc; c++) r[c] = truthChunk(in, c * C, Math.min(C, in.len - c * C), S);
        return r;
    }

    /** Σ‖x − t‖² and Σ‖t‖² per named quantity; relative error = sqrt of their ratio. */
    static final class Errors {
        final Map<String, double[]> sums = new LinkedHashMap<>();
        final double[][] byPos = new double[C][2];  // output (before the cast) by position in the chunk

        void add(String name, double[] x, double[] t, int len) {
            if (x == null || t == null) return;
            double[] s = sums.computeIfAbsent(name, k -> new double[2]);
            for (int i = 0; i < len; i++) {
                double e = x[i] - t[i];
                s[0] += e * e;
                s[1] += t[i] * t[i];
            }
        }

        double rel(String name) {
            double[] s = sums.get(name);
            return s == null ? Double.NaN : Math.sqrt(s[0] / s[1]);
        }

        /** Adds another head's sums (errors over several heads pool as one relative error). */
        Errors merge(Errors o) {
            o.sums.forEach((k, v) -> {
                double[] s = sums.computeIfAbsent(k, x -> new double[2]);
                s[0] += v[0];
                s[1] += v[1];
            });
            for (int i = 0; i < C; i++) {
                byPos[i][0] += o.byPos[i][0];
                byPos[i][1] += o.byPos[i][1];
            }
            return this;
        }

        double relPos(int i) {
            return Math.sqrt(byPos[i][0] / byPos[i][1]);
        }
    }

    /**
     * Runs a variant over the input against the truth. local = true: each chunk starts from the truth's state (rounded
     * to fp32), so the per-op figures are that op's own rounding; false: the variant carries its own state
     * (propagated error, what the model sees).
     */
    static Errors measure(Input in, Chunk[] truth, Variant v, boolean local) {
        Errors e = new Errors();
        float[] s = new float[D * D];
        for (int c = 0; c < truth.length; c++) {
            Chunk tc = truth[c];
            if (local && c > 0) {
                double[] ts = truth[c - 1].sAfter;
                for (int i = 0; i < s.length; i++) s[i] = (float) ts[i];
            }
            Chunk x = v.chunk(in, c * C, tc.n, s);
            e.add("A", x.a, tc.a, C * C);
            if (x.t != null) e.add("T", x.t, tc.t, C * C);
            if (x.tb != null) e.add("T", x.tb, tc.tb, C * C);
            e.add("W", x.w, tc.w, tc.n * D);
            e.add("U", x.u, tc.u, tc.n * D);
            e.add("X", x.x, tc.x, tc.n * D);
            e.add("v_new", x.vnew, tc.vnew, tc.n * D);
            e.add("S", x.sAfter, tc.sAfter, D * D);
            e.add("O (fp32)", x.o, tc.o, tc.n * D);
            e.add("O (out)", x.oOut, tc.o, tc.n * D);
            for (int i = 0; i < tc.n; i++)
                for (int y = 0; y < D; y++) {
                    double d = x.o[i * D + y] - tc.o[i * D + y];
                    e.byPos[i][0] += d * d;
                    e.byPos[i][1] += tc.o[i * D + y] * tc.o[i * D + y];
                }
        }
        double[] fin = truth[truth.length - 1].sAfter;
        e.add("S final", d(s), fin, D * D);
        return e;
    }

    /**
     * The decode-vs-re-prefill figure at op level: prefill {@code prefix} tokens with the variant, continue
     * {@code steps} tokens token by token (fp64, as exact decode), against the variant re-prefilling prefix + steps;
     * returns ‖o_decode − o_reprefill‖/‖o_reprefill‖ over the continued tokens (outputs as stored).
     */
    static double decodeVsReprefill(Input in, Variant v, int prefix, int steps) {
        double[] s = decodeVsReprefillSums(in, v, prefix, steps);
        return Math.sqrt(s[0] / s[1]);
    }

    /** {Σ‖o_decode − o_reprefill‖², Σ‖o_reprefill‖²} of {@link #decodeVsReprefill}. */
    static double[] decodeVsReprefillSums(Input in, Variant v, int prefix, int steps) {
        float[] s = new float[D * D];
        for (int t0 = 0; t0 < prefix; t0 += C) v.chunk(in, t0, Math.min(C, prefix - t0), s);
        double[] S = d(s);
        double[] od = recurrent(in, prefix, steps, S);
        float[] s2 = new float[D * D];
        double[] or = new double[steps * D];
        for (int t0 = 0; t0 < prefix + steps; t0 += C) {
            int n = Math.min(C, prefix + steps - t0);
            Chunk c = v.chunk(in, t0, n, s2);
            for (int i = 0; i < n; i++) {
                int t = t0 + i;
                if (t >= prefix) System.arraycopy(c.oOut, i * D, or, (t - prefix) * D, D);
            }
        }
        double num = 0, den = 0;
        for (int i = 0; i < od.length; i++) {
            double dd = bf16((float) od[i]) - or[i];
            num += dd * dd;
            den += or[i] * or[i];
        }
        return new double[] {num, den};
    }
}
