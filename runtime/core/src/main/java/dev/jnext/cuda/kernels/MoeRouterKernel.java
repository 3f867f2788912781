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
     * The launch's tensors: {@code logits [≥rows, stride]} bf16, the router GEMM's output (columns ≥ {@code experts}
     * ignored; stride ≥ experts); {@code topkIds [≥rows, topK]} i32, which fixes top-k; {@code topkWeights [≥rows, topK]}
     * bf16. Row counts are capacities, checked per launch.
     */
    public record Args(DeviceTensor logits, DeviceTensor topkIds, DeviceTensor topkWeights, int experts, boolean normTopkProb) {
        static final String OP = "moe router";

        public Args {
            TensorContract.require(OP, "logits", logits, DType.BF16, TensorContract.ANY, TensorContract.ANY);
            TensorContract.require(OP, "topkIds", topkIds, DType.I32, TensorContract.ANY, TensorContract.ANY);
            int topK = topkIds.dim(1);
            TensorContract.require(OP, "topkWeights", topkWeights, DType.BF16, TensorContract.ANY, topK);
            if (experts < 1 || experts > MAX_EXPERTS) throw TensorContract.fail(OP, "experts", "must be in [1, " + MAX_EXPERTS + "], got " + experts);
            if (topK < 1 || topK > Math.min(MAX_TOP_K, experts)) {
                throw TensorContract.fail(OP, "topkIds", "top-k must be in [1, " + Math.min(MAX_TOP_K, experts) + "], got " + topkIds);
            }
            if (logits.dim(1) < experts) throw TensorContract.fail(OP, "logits", "rows are shorter than " + experts + " experts: " + logits);
        }

        public int topK() {
            return topkIds.dim(1);
        }

        void checkRows(int rows) {
            TensorContract.rows(OP, "logits", logits, rows);
            TensorContract.rows(OP, "topkIds", topkIds, rows);
            TensorContract.rows(OP, "topkWeights", topkWeights, rows);
        }
    }

    /** Routes the first {@code rows} rows: {@code logits} → {@code topkIds} and {@code topkWeights}. */
    public void launch(Stream s, Args a, int rows) {
        int stride = a.logits().dim(1), topK = a.topK();
        check(rows, a.experts(), topK, stride);
        a.checkRows(rows);
        kernel.args().ptr(a.logits().address()).i32(stride).ptr(a.topkIds().address()).ptr(a.topkWeights().address()).i32(rows)
                .i32(a.experts()).i32(topK).i32(a.normTopkProb() ? 1 : 0);
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
