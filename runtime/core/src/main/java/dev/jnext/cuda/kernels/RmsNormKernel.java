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

    /**
     * The plain launch's tensors: the norm weight {@code w [hidden]} bf16 fixes hidden; {@code x} and {@code y}
     * {@code [≥rows, hidden]} bf16. Row counts are capacities, checked per launch.
     */
    public record Args(DeviceTensor x, DeviceTensor w, DeviceTensor y) {
        static final String OP = "rmsnorm";

        public Args {
            int hidden = TensorContract.require(OP, "w", w, DType.BF16, TensorContract.ANY).dim(0);
            TensorContract.require(OP, "x", x, DType.BF16, TensorContract.ANY, hidden);
            TensorContract.require(OP, "y", y, DType.BF16, TensorContract.ANY, hidden);
        }

        public int hidden() {
            return w.dim(0);
        }

        void checkRows(int rows) {
            TensorContract.rows(OP, "x", x, rows);
            TensorContract.rows(OP, "y", y, rows);
        }
    }

    /**
     * The fused launch's tensors: the norm weight {@code w [hidden]} bf16 fixes hidden; {@code delta}, {@code residual}
     * (updated in place) and {@code y} {@code [≥rows, hidden]} bf16. Row counts are capacities, checked per launch.
     */
    public record AddArgs(DeviceTensor delta, DeviceTensor residual, DeviceTensor w, DeviceTensor y) {
        static final String OP = "add + rmsnorm";

        public AddArgs {
            int hidden = TensorContract.require(OP, "w", w, DType.BF16, TensorContract.ANY).dim(0);
            TensorContract.require(OP, "delta", delta, DType.BF16, TensorContract.ANY, hidden);
            TensorContract.require(OP, "residual", residual, DType.BF16, TensorContract.ANY, hidden);
            TensorContract.require(OP, "y", y, DType.BF16, TensorContract.ANY, hidden);
        }

        public int hidden() {
            return w.dim(0);
        }

        void checkRows(int rows) {
            TensorContract.rows(OP, "delta", delta, rows);
            TensorContract.rows(OP, "residual", residual, rows);
            TensorContract.rows(OP, "y", y, rows);
        }
    }

    /** {@code y[rows, hidden] = rmsnorm(x) · (1 + w)} over the first {@code rows} rows. */
    public void launch(Stream s, Args a, int rows, float eps) {
        int hidden = a.hidden();
        check(rows, hidden);
        a.checkRows(rows);
        plain.args().ptr(a.x().address()).ptr(a.w().address()).ptr(a.y().address()).i32(rows).i32(hidden).f32(eps);
        plain.launch(s, Dim3.of(rows), Dim3.of(THREADS), 0);
    }

    /** {@code residual = bf16(residual + delta)} in place, then {@code y = rmsnorm(residual) · (1 + w)}. */
    public void launchAdd(Stream s, AddArgs a, int rows, float eps) {
        int hidden = a.hidden();
        check(rows, hidden);
        a.checkRows(rows);
        fused.args().ptr(a.delta().address()).ptr(a.residual().address()).ptr(a.w().address()).ptr(a.y().address()).i32(rows)
                .i32(hidden).f32(eps);
        fused.launch(s, Dim3.of(rows), Dim3.of(THREADS), 0);
    }

    private static void check(int rows, int hidden) {
        if (rows < 1) throw new IllegalArgumentException("rmsnorm: rows must be >= 1, got " + rows);
        if (hidden % 8 != 0 || hidden > MAX_HIDDEN) {
            throw new IllegalArgumentException("rmsnorm: hidden must be a multiple of 8 up to " + MAX_HIDDEN + ", got " + hidden);
        }
    }
}
