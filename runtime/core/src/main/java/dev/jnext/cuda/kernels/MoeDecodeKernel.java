package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;

/**
 * The decode expert MLPs (kernels-ptx/moe_decode.cu): bandwidth-bound GEMVs over the selected experts only, with the
 * expert ids read from device memory (graph-capturable). The shared expert, when given, runs as one more slot per token.
 * Two launches after the router: gate_up+SiLU per slot, then down per slot (weighted) whose last block per (token,
 * row block) does the combine of {@link MoeCombineKernel} (k-ordered fp32 sum with one rounding, plus the gated shared
 * expert).
 * Bytes that must move per token: topK·3·H·I·2 (+ 3·H·I·2 shared) of weights. Same rounding points as the prefill path.
 */
public final class MoeDecodeKernel {
    static final int THREADS = 256;
    static final int COLS_PER_BLOCK = 16;  // gate_up: 8 warps x 2 activation columns
    static final int ROWS_PER_BLOCK = 64;  // down: 8 warps x 8 output rows
    public static final int MAX_TOP_K = 32;
    /** A slot's activation row and its down-weight pieces stay on chip. */
    public static final int MAX_INTER = 512;

    private final Kernel gateUp;
    private final Kernel down;

    public MoeDecodeKernel(KernelLibrary lib) {
        this.gateUp = lib.kernel("moe_decode", "moe_decode_gate_up");
        this.down = lib.kernel("moe_decode", "moe_decode_down");
    }

    /** Rows of activations and of down outputs: one per (token, k), then one per token for the shared expert. */
    public static int actRows(int tokens, int topK, boolean shared) {
        return tokens * topK + (shared ? tokens : 0);
    }

    /**
     * {@code x [tokens, H]}, ids [tokens·topK] → {@code act [actRows, I]}. {@code sharedGateUp} [2I, H] or 0. An id outside
     * [0, experts) reads no weight and gets a zero activation row.
     */
    public void launchGateUp(Stream s, long x, long topkIds, long gateUpWeights, long sharedGateUp, long act, int tokens, int topK,
                             int hidden, int inter, int experts) {
        check(tokens, topK, hidden, inter, experts);
        int slots = actRows(tokens, topK, sharedGateUp != 0);
        int smem = hidden * 4;
        if (smem > 48 * 1024) throw new IllegalArgumentException("moe decode: hidden " + hidden + " exceeds 12288");
        gateUp.args().ptr(x).ptr(topkIds).ptr(gateUpWeights).ptr(sharedGateUp).ptr(act).i32(tokens).i32(topK).i32(hidden).i32(inter)
                .i32(experts);
        gateUp.launch(s, Dim3.of(inter / COLS_PER_BLOCK, slots), Dim3.of(THREADS), smem);
    }

    /** Per-(token, row block) counters {@link #launchDown} needs: zeroed once, left zeroed by every launch. */
    public static long counterBytes(int tokens, int hidden) {
        return 4L * tokens * (hidden / ROWS_PER_BLOCK);
    }

    /**
     * {@code act} → {@code contrib [actRows, H]} (per-slot weighted down outputs, scratch) → {@code out [tokens, H]} =
     * routed sum (+ gated shared expert when {@code sharedDown} [H, I] is given, its gate logit at
     * {@code gateLogits + t·gateStride}); one launch: the last block of each (token, row block) combines. A pair whose id is
     * outside [0, experts) contributes zero and reads no weight.
     */
    public void launchDown(Stream s, long act, long topkIds, long topkWeights, long downWeights, long sharedDown, long gateLogits,
                           int gateStride, long contrib, long counters, long out, int tokens, int topK, int hidden, int inter,
                           int experts) {
        check(tokens, topK, hidden, inter, experts);
        boolean shared = sharedDown != 0;
        if (shared && (gateLogits == 0 || gateStride < 1)) {
            throw new IllegalArgumentException("moe decode: a shared expert needs its gate logits and a positive stride");
        }
        down.args().ptr(act).ptr(topkIds).ptr(topkWeights).ptr(downWeights).ptr(sharedDown).ptr(gateLogits).i32(gateStride)
                .ptr(contrib).ptr(counters).ptr(out).i32(tokens).i32(topK).i32(hidden).i32(inter).i32(experts);
        down.launch(s, Dim3.of(hidden / ROWS_PER_BLOCK, actRows(tokens, topK, shared)), Dim3.of(THREADS), 0);
    }

    static void check(int tokens, int topK, int hidden, int inter, int experts) {
        if (experts < 1) throw new IllegalArgumentException("moe decode: experts must be >= 1, got " + experts);
        if (tokens < 1 || tokens > 65535) throw new IllegalArgumentException("moe decode: tokens must be in [1, 65535], got " + tokens);
        if (topK < 1 || topK > MAX_TOP_K) throw new IllegalArgumentException("moe decode: top-k must be in [1, " + MAX_TOP_K + "], got " + topK);
        if (hidden < ROWS_PER_BLOCK || hidden % ROWS_PER_BLOCK != 0) {
            throw new IllegalArgumentException("moe decode: hidden must be a positive multiple of " + ROWS_PER_BLOCK + ", got " + hidden);
        }
        if (inter < 16 || inter % 16 != 0 || inter > MAX_INTER) {
            throw new IllegalArgumentException("moe decode: expert width must be a positive multiple of 16 up to " + MAX_INTER + ", got " + inter);
        }
    }
}
