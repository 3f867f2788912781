package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;
import dev.jnext.numeric.Bf16;

/**
 * The Gated DeltaNet's gated RMSNorm (kernels-ptx/gated_rmsnorm.cu) over rows of {@code dim} values
 * (one row per token × value head): {@code out = bf16(bf16(w · bf16(x/rms(x))) · silu(z))}.
 *
 * <p>Rows per block follow sglang's rule (docs: PIECEWISE_GRAPHS.md): eagerly
 * {@code min(next_pow2(ceil(M / (2·SMs))), 4)}; inside a stream capture always the cap, 4, so that one
 * captured graph per bucket does not depend on a value derived from M. Each row is reduced by one warp
 * in the same order in every variant, so the choice never changes the bits.
 */
public final class GatedRmsNormKernel {
    /** The rows-per-block used whenever the launch is being captured into a graph. */
    public static final int CAPTURE_ROWS_PER_BLOCK = 4;
    static final int MAX_DIM = 4 * 32 * 2;

    private final Kernel[] variants = new Kernel[5];
    private final int smCount;

    public GatedRmsNormKernel(KernelLibrary lib) {
        variants[1] = lib.kernel("gated_rmsnorm", "gated_rmsnorm_bf16_r1");
        variants[2] = lib.kernel("gated_rmsnorm", "gated_rmsnorm_bf16_r2");
        variants[4] = lib.kernel("gated_rmsnorm", "gated_rmsnorm_bf16_r4");
        this.smCount = lib.gpu().device().smCount();
    }

    /** sglang's eager rule: {@code min(next_pow2(ceil(M / (2·SMs))), 4)}; 4 when capturing. */
    public static int rowsPerBlock(long rows, int smCount, boolean capturing) {
        if (capturing) return CAPTURE_ROWS_PER_BLOCK;
        long perBlock = Math.max(1, (rows + 2L * smCount - 1) / (2L * smCount));
        long pow2 = Long.highestOneBit(perBlock);
        if (pow2 < perBlock) pow2 <<= 1;
        return (int) Math.min(pow2, 4);
    }

    /**
     * The launch's tensors: {@code x}, {@code z} and {@code out} {@code [≥rows, dim]} bf16 (one row per token × value head),
     * the norm weight {@code w [dim]} bf16, which fixes dim. Row counts are capacities, checked per launch.
     */
    public record Args(DeviceTensor x, DeviceTensor z, DeviceTensor w, DeviceTensor out) {
        static final String OP = "gated rmsnorm";

        public Args {
            TensorContract.require(OP, "w", w, DType.BF16, TensorContract.ANY);
            int dim = w.dim(0);
            TensorContract.require(OP, "x", x, DType.BF16, TensorContract.ANY, dim);
            TensorContract.require(OP, "z", z, DType.BF16, TensorContract.ANY, dim);
            TensorContract.require(OP, "out", out, DType.BF16, TensorContract.ANY, dim);
        }

        public int dim() {
            return w.dim(0);
        }

        void checkRows(int rows) {
            TensorContract.rows(OP, "x", x, rows);
            TensorContract.rows(OP, "z", z, rows);
            TensorContract.rows(OP, "out", out, rows);
        }
    }

    /** Launches with the rows-per-block rule, detecting capture from the stream. */
    public void launch(Stream s, Args a, int rows, float eps) {
        launch(s, a, rows, eps, rowsPerBlock(rows, smCount, s.isCapturing()));
    }

    /** Launches the variant with {@code rowsPerBlock} ∈ {1, 2, 4} over the first {@code rows} rows. */
    public void launch(Stream s, Args a, int rows, float eps, int rowsPerBlock) {
        if (rowsPerBlock != 1 && rowsPerBlock != 2 && rowsPerBlock != 4) {
            throw new IllegalArgumentException("gated rmsnorm: rows per block must be 1, 2 or 4, got " + rowsPerBlock);
        }
        if (rows < 1) throw new IllegalArgumentException("gated rmsnorm: rows must be >= 1, got " + rows);
        int dim = a.dim();
        if (dim % 4 != 0 || dim > MAX_DIM) {
            throw new IllegalArgumentException("gated rmsnorm: dim must be a multiple of 4 up to " + MAX_DIM + ", got " + dim);
        }
        a.checkRows(rows);
        Kernel k = variants[rowsPerBlock];
        k.args().ptr(a.x().address()).ptr(a.z().address()).ptr(a.w().address()).ptr(a.out().address()).i32(rows).i32(dim).f32(eps);
        k.launch(s, Dim3.of((rows + rowsPerBlock - 1) / rowsPerBlock), Dim3.of(32 * rowsPerBlock), 0);
    }
}
