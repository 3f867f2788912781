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
     * {@code contrib [rows·topK, H]}, {@code shared [rows, H]} (0: no shared expert), shared-gate logits at
     * {@code gateLogits + t·gateStride} (bf16) → {@code out [rows, H]}. {@code topkIds [rows·topK]}: a pair whose expert id is
     * outside [0, experts) was dropped by the grouping (its contrib row was never written) and is skipped, not read.
     */
    public void launch(Stream s, long contrib, long topkIds, int experts, long shared, long gateLogits, int gateStride, long out,
                       int rows, int topK, int hidden) {
        if (rows < 1 || topK < 1) throw new IllegalArgumentException("moe combine: rows and top-k must be >= 1, got " + rows + ", " + topK);
        if (hidden < 8 || hidden % 8 != 0) throw new IllegalArgumentException("moe combine: hidden must be a positive multiple of 8, got " + hidden);
        if (experts < 1) throw new IllegalArgumentException("moe combine: experts must be >= 1, got " + experts);
        if (topkIds == 0) throw new IllegalArgumentException("moe combine: the expert ids are a null device pointer");
        if (shared != 0 && (gateLogits == 0 || gateStride < 1)) {
            throw new IllegalArgumentException("moe combine: a shared expert needs its gate logits and a positive stride");
        }
        long threads = (long) rows * (hidden / 8);
        kernel.args().ptr(contrib).ptr(topkIds).i32(experts).ptr(shared).ptr(gateLogits).i32(gateStride).ptr(out).i32(rows).i32(topK)
                .i32(hidden);
        kernel.launch(s, Dim3.of((int) ((threads + THREADS - 1) / THREADS)), Dim3.of(THREADS), 0);
    }
}
