package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;
import dev.jnext.numeric.Bf16;

/**
 * The MoE router after its GEMM (kernels-ptx/moe_route.cu): per token, fp32 softmax over the E router logits, top-k in
 * descending order with the lowest expert index winning ties, optional renormalisation in fp32, weights cast to bf16
 * (transformers 5.17). Semantics of {@link dev.jnext.cpu.ops.SparseMoe#route} on finite logits; any other row (garbage in a
 * padded row) still yields distinct ids in [0, experts) and finite weights: NaN counts as −inf, +inf logits share the
 * mass, and a row without a finite logit picks experts 0..k−1 with weight 0.
 */
public final class MoeRouterKernel {
    static final int WARPS = 8;
    public static final int MAX_EXPERTS = 1024;
    public static final int MAX_TOP_K = 32;

    private final Kernel kernel;

    public MoeRouterKernel(KernelLibrary lib) {
        this.kernel = lib.kernel("moe_route", "moe_route_topk");
    }

    /**
     * {@code logits [rows, logitStride]} bf16 (columns ≥ experts ignored) → {@code topkIds [rows, topK]} int32 and
     * {@code topkWeights [rows, topK]} bf16.
     */
    public void launch(Stream s, long logits, int logitStride, long topkIds, long topkWeights, int rows, int experts, int topK,
                       boolean normTopkProb) {
        check(rows, experts, topK, logitStride);
        kernel.args().ptr(logits).i32(logitStride).ptr(topkIds).ptr(topkWeights).i32(rows).i32(experts).i32(topK)
                .i32(normTopkProb ? 1 : 0);
        kernel.launch(s, Dim3.of((rows + WARPS - 1) / WARPS), Dim3.of(WARPS * 32), 0);
    }

    static void check(int rows, int experts, int topK, int logitStride) {
        if (rows < 1) throw new IllegalArgumentException("moe router: rows must be >= 1, got " + rows);
        if (experts < 1 || experts > MAX_EXPERTS) {
            throw new IllegalArgumentException("moe router: experts must be in [1, " + MAX_EXPERTS + "], got " + experts);
        }
        if (topK < 1 || topK > Math.min(MAX_TOP_K, experts)) {
            throw new IllegalArgumentException("moe router: top-k must be in [1, " + Math.min(MAX_TOP_K, experts) + "], got " + topK);
        }
        if (logitStride < experts) {
            throw new IllegalArgumentException("moe router: logit row stride " + logitStride + " is shorter than " + experts + " experts");
        }
    }

    /** The routing of every row: ids and bf16 weights, each [rows, topK]. */
    public record Routes(int[] ids, short[] weights) {}
}
