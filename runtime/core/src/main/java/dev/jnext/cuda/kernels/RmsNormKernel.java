package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;
import dev.jnext.numeric.Bf16;

/**
 * Zero-centred RMSNorm over rows of {@code hidden} bf16 values, optionally fused with the residual add
 * (kernels-ptx/rmsnorm.cu): {@code y = bf16(x · rsqrt(mean(x²) + eps) · (1 + w))}, fp32 inside.
 */
public final class RmsNormKernel {
    static final int THREADS = 256;
    static final int MAX_HIDDEN = THREADS * 8 * 4;

    private final Kernel plain;
    private final Kernel fused;

    public RmsNormKernel(KernelLibrary lib) {
        this.plain = lib.kernel("rmsnorm", "rmsnorm_bf16");
        this.fused = lib.kernel("rmsnorm", "add_rmsnorm_bf16");
    }

    /** {@code y[rows, hidden] = rmsnorm(x) · (1 + w)}. */
    public void launch(Stream s, long x, long w, long y, int rows, int hidden, float eps) {
        check(rows, hidden);
        plain.args().ptr(x).ptr(w).ptr(y).i32(rows).i32(hidden).f32(eps);
        plain.launch(s, Dim3.of(rows), Dim3.of(THREADS), 0);
    }

    /** {@code residual = bf16(residual + delta)} in place, then {@code y = rmsnorm(residual) · (1 + w)}. */
    public void launchAdd(Stream s, long delta, long residual, long w, long y, int rows, int hidden, float eps) {
        check(rows, hidden);
        fused.args().ptr(delta).ptr(residual).ptr(w).ptr(y).i32(rows).i32(hidden).f32(eps);
        fused.launch(s, Dim3.of(rows), Dim3.of(THREADS), 0);
    }

    private static void check(int rows, int hidden) {
        if (rows < 1) throw new IllegalArgumentException("rmsnorm: rows must be >= 1, got " + rows);
        if (hidden % 8 != 0 || hidden > MAX_HIDDEN) {
            throw new IllegalArgumentException("rmsnorm: hidden must be a multiple of 8 up to " + MAX_HIDDEN + ", got " + hidden);
        }
    }
}
