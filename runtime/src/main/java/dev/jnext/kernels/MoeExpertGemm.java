package dev.jnext.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;
import dev.jnext.numeric.Bf16;

/**
 * The prefill expert MLPs as a device-driven grouped GEMM on tensor cores (kernels-ptx/moe_gemm.cu) over the rows that
 * {@link ExpertGrouping} sorted by expert (segments padded to {@link #BLOCK_M}). The grid covers the worst case
 * ({@link ExpertGrouping#maxTiles} m-tiles); unused tiles exit, so the launches are graph-capturable.
 * <ul>
 *   <li>{@link #launchGateUp}: {@code act[r] = bf16(bf16(silu(bf16(x_t·Wgᵀ))) · bf16(x_t·Wuᵀ))} with
 *       {@code gateUp [E, 2I, H]} (gate rows then up rows) — 2·2·H·I FLOPs per pair;</li>
 *   <li>{@link #launchDown}: {@code contrib[p] = bf16(bf16(act_r·Wdᵀ) · w_p)} with {@code down [E, H, I]} — 2·H·I FLOPs
 *       per pair — written in pair order ([tokens·topK, H]) for {@link MoeCombineKernel}.</li>
 * </ul>
 */
public final class MoeExpertGemm {
    /** Tile height: the grouping's segment padding. */
    public static final int BLOCK_M = 128;
    static final int BLOCK_N = 128;
    static final int BLOCK_K = 64;
    static final int STAGES = 3;
    static final int THREADS = 256;
    static final int SMEM_BYTES = STAGES * (BLOCK_M + BLOCK_N) * BLOCK_K * 2;

    private final Kernel gateUp;
    private final Kernel down;

    public MoeExpertGemm(KernelLibrary lib) {
        this.gateUp = lib.kernel("moe_gemm", "moe_gemm_gate_up").allowDynamicSharedMemory(SMEM_BYTES);
        this.down = lib.kernel("moe_gemm", "moe_gemm_down").allowDynamicSharedMemory(SMEM_BYTES);
    }

    /** {@code x [tokens, H]}, sorted rows from the grouping → {@code act [maxTiles·BLOCK_M, I]} (sorted order). */
    public void launchGateUp(Stream s, long x, long sortedPairs, long tileExpert, int maxTiles, long gateUpWeights, long act,
                             int topK, int hidden, int inter) {
        checkShape(hidden, inter, maxTiles);
        gateUp.args().ptr(x).ptr(sortedPairs).ptr(tileExpert).ptr(gateUpWeights).ptr(act).i32(topK).i32(hidden).i32(inter);
        gateUp.launch(s, Dim3.of(inter / (BLOCK_N / 2), maxTiles), Dim3.of(THREADS), SMEM_BYTES);
    }

    /** {@code act} (sorted order) → {@code contrib [pairs, H]} (pair order), weighted by {@code topkWeights [pairs]}. */
    public void launchDown(Stream s, long act, long sortedPairs, long tileExpert, int maxTiles, long downWeights, long topkWeights,
                           long contrib, int hidden, int inter) {
        checkShape(hidden, inter, maxTiles);
        down.args().ptr(act).ptr(sortedPairs).ptr(tileExpert).ptr(downWeights).ptr(topkWeights).ptr(contrib).i32(hidden).i32(inter);
        down.launch(s, Dim3.of(hidden / BLOCK_N, maxTiles), Dim3.of(THREADS), SMEM_BYTES);
    }

    static void checkShape(int hidden, int inter, int maxTiles) {
        if (hidden < BLOCK_N || hidden % BLOCK_N != 0) {
            throw new IllegalArgumentException("moe grouped GEMM: hidden must be a positive multiple of " + BLOCK_N + ", got " + hidden);
        }
        if (inter < BLOCK_K || inter % BLOCK_K != 0) {
            throw new IllegalArgumentException("moe grouped GEMM: expert width must be a positive multiple of " + BLOCK_K + ", got " + inter);
        }
        if (maxTiles < 1 || maxTiles > 65535) {
            throw new IllegalArgumentException("moe grouped GEMM: m-tiles must be in [1, 65535], got " + maxTiles);
        }
    }

    /**
     * CPU reference of one expert MLP on one token with the kernels' rounding points: gate/up outputs, SiLU, the
     * activation and the down output each round to bf16; the routing weight multiplies the rounded output.
     * Returns the weighted contribution [H] as floats holding bf16 values.
     */
    public static float[] referenceExpert(short[] x, int xOffset, short[] gateUp, short[] down, int expert, int hidden, int inter,
                                          float weight) {
        float[] act = referenceAct(x, xOffset, gateUp, expert, hidden, inter);
        float[] out = new float[hidden];
        long dBase = (long) expert * hidden * inter;
        for (int h = 0; h < hidden; h++) {
            float y = 0;
            for (int i = 0; i < inter; i++) y += act[i] * Bf16.toFloat(down[(int) (dBase + (long) h * inter + i)]);
            out[h] = Bf16.round(Bf16.round(y) * weight);
        }
        return out;
    }

    /** The bf16 activation row silu(gate)·up of one expert on one token (as floats holding bf16 values). */
    public static float[] referenceAct(short[] x, int xOffset, short[] gateUp, int expert, int hidden, int inter) {
        float[] act = new float[inter];
        long base = (long) expert * 2 * inter * hidden;
        for (int i = 0; i < inter; i++) {
            float g = 0, u = 0;
            for (int c = 0; c < hidden; c++) {
                float xv = Bf16.toFloat(x[xOffset + c]);
                g += xv * Bf16.toFloat(gateUp[(int) (base + (long) i * hidden + c)]);
                u += xv * Bf16.toFloat(gateUp[(int) (base + (long) (inter + i) * hidden + c)]);
            }
            g = Bf16.round(g);
            u = Bf16.round(u);
            act[i] = Bf16.round(Bf16.round((float) (g / (1.0 + Math.exp(-g)))) * u);
        }
        return act;
    }
}
