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

    /** {@code gateUp[rows, 2·inter]} (gate first, then up) → {@code out[rows, inter]}. */
    public void launch(Stream s, long gateUp, long out, int rows, int inter) {
        if (rows < 1 || inter < 8 || inter % 8 != 0) {
            throw new IllegalArgumentException("silu_mul: need rows >= 1 and inter a positive multiple of 8, got rows="
                    + rows + " inter=" + inter);
        }
        long threads = (long) rows * (inter / 8);
        kernel.args().ptr(gateUp).ptr(out).i32(rows).i32(inter);
        kernel.launch(s, Dim3.of((int) ((threads + THREADS - 1) / THREADS)), Dim3.of(THREADS), 0);
    }
}
