package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;
import dev.jnext.numeric.Bf16;

/** SiLU-and-multiply of a fused gate|up row (kernels-ptx/silu_mul.cu): {@code out = bf16(bf16(silu(gate)) · up)}. */
public final class SiluMulKernel {
    private static final int THREADS = 256;
    private final Kernel kernel;

    public SiluMulKernel(KernelLibrary lib) {
        this.kernel = lib.kernel("silu_mul", "silu_mul_bf16");
    }

    /**
     * The launch's tensors: {@code out [≥rows, inter]} bf16 fixes inter (a positive multiple of 8);
     * {@code gateUp [≥rows, 2·inter]} bf16, gate first, then up. Row counts are capacities, checked per launch.
     */
    public record Args(DeviceTensor gateUp, DeviceTensor out) {
        static final String OP = "silu_mul";

        public Args {
            int inter = TensorContract.require(OP, "out", out, DType.BF16, TensorContract.ANY, TensorContract.ANY).dim(1);
            if (inter < 8 || inter % 8 != 0) throw TensorContract.fail(OP, "out", "must be a positive multiple of 8 wide, got " + out);
            TensorContract.require(OP, "gateUp", gateUp, DType.BF16, TensorContract.ANY, 2 * inter);
        }

        public int inter() {
            return out.dim(1);
        }

        void checkRows(int rows) {
            TensorContract.rows(OP, "gateUp", gateUp, rows);
            TensorContract.rows(OP, "out", out, rows);
        }
    }

    /** {@code gateUp[rows, 2·inter]} → {@code out[rows, inter]} over the first {@code rows} rows. */
    public void launch(Stream s, Args a, int rows) {
        int inter = a.inter();
        if (rows < 1) throw new IllegalArgumentException("silu_mul: need rows >= 1 and inter a positive multiple of 8, got rows="
                + rows + " inter=" + inter);
        a.checkRows(rows);
        long threads = (long) rows * (inter / 8);
        kernel.args().ptr(a.gateUp().address()).ptr(a.out().address()).i32(rows).i32(inter);
        kernel.launch(s, Dim3.of((int) ((threads + THREADS - 1) / THREADS)), Dim3.of(THREADS), 0);
    }
}
