package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;
import dev.jnext.numeric.Bf16;

/**
 * The MoE combine of the prefill path (kernels-ptx/moe_combine.cu): each token's k weighted expert rows summed in k order
 * in fp32 with one bf16 rounding (transformers 5.17's grouped_mm semantics), plus the shared expert behind its sigmoid
 * gate: {@code out = bf16(bf16(Σ_k contrib_k) + bf16(bf16(sigmoid(g)) · shared))}. Deterministic: no atomics.
 */
public final class MoeCombineKernel {
    private static final int THREADS = 256;
    private final Kernel kernel;

    public MoeCombineKernel(KernelLibrary lib) {
        this.kernel = lib.kernel("moe_combine", "moe_combine");
    }

    /**
     * The launch's tensors: {@code out [≥rows, H]} bf16 fixes H (a positive multiple of 8); {@code contrib [≥rows·topK, H]}
     * bf16 (pair order); {@code topkIds [≥rows, topK]} i32, which fixes top-k — a pair whose expert id is outside
     * [0, {@code experts}) was dropped by the grouping (its contrib row was never written) and is skipped, not read;
     * {@code shared [≥rows, H]} bf16, the shared expert's output, or null (none); {@code gateLogits [≥rows, stride]} bf16,
     * the router's logits whose column {@code gateColumn} is the shared expert's gate logit (needed with a shared expert;
     * without one it may be null, and only its row stride reaches the kernel). Row counts are capacities, checked per launch.
     */
    public record Args(DeviceTensor contrib, DeviceTensor topkIds, int experts, DeviceTensor shared, DeviceTensor gateLogits,
                       int gateColumn, DeviceTensor out) {
        static final String OP = "moe combine";

        public Args {
            int any = TensorContract.ANY;
            int h = TensorContract.require(OP, "out", out, DType.BF16, any, any).dim(1);
            if (h < 8 || h % 8 != 0) throw TensorContract.fail(OP, "out", "must be a positive multiple of 8 wide, got " + out);
            TensorContract.require(OP, "contrib", contrib, DType.BF16, any, h);
            TensorContract.require(OP, "topkIds", topkIds, DType.I32, any, any);
            TensorContract.positive(OP, "topkIds", topkIds, 1);
            if (experts < 1) throw TensorContract.fail(OP, "experts", "must be >= 1, got " + experts);
            TensorContract.optional(OP, "shared", shared, DType.BF16, any, h);
            if (shared != null || gateLogits != null) {
                TensorContract.require(OP, "gateLogits", gateLogits, DType.BF16, any, any);
                TensorContract.positive(OP, "gateLogits", gateLogits, 1);
            }
            if (shared != null && (gateColumn < 0 || gateColumn >= gateLogits.dim(1))) {
                throw TensorContract.fail(OP, "gateColumn", "must name a column of " + gateLogits + ", got " + gateColumn);
            }
        }

        public int hidden() {
            return out.dim(1);
        }

        public int topK() {
            return topkIds.dim(1);
        }

        void checkRows(int rows) {
            TensorContract.rows(OP, "contrib", contrib, (long) rows * topK());
            TensorContract.rows(OP, "topkIds", topkIds, rows);
            if (shared != null) {
                TensorContract.rows(OP, "shared", shared, rows);
                TensorContract.rows(OP, "gateLogits", gateLogits, rows);
            }
            TensorContract.rows(OP, "out", out, rows);
        }
    }

    /** {@code out [rows, H]} = the first {@code rows} tokens' weighted expert rows summed, plus the gated shared expert. */
    public void launch(Stream s, Args a, int rows) {
        if (rows < 1) throw new IllegalArgumentException("moe combine: rows and top-k must be >= 1, got " + rows + ", " + a.topK());
        a.checkRows(rows);
        int hidden = a.hidden();
        boolean shared = a.shared() != null;
        long gate = shared ? a.gateLogits().address() + (long) DType.BF16.bytes() * a.gateColumn() : 0;
        int gateStride = a.gateLogits() == null ? 0 : a.gateLogits().dim(1);
        long threads = (long) rows * (hidden / 8);
        kernel.args().ptr(a.contrib().address()).ptr(a.topkIds().address()).i32(a.experts()).ptr(shared ? a.shared().address() : 0)
                .ptr(gate).i32(gateStride).ptr(a.out().address()).i32(rows).i32(a.topK()).i32(hidden);
        kernel.launch(s, Dim3.of((int) ((threads + THREADS - 1) / THREADS)), Dim3.of(THREADS), 0);
    }
}
