package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.numeric.Bf16;

/** CPU references of {@link SiluMulKernel}'s kernels (test oracles: they live with the tests, not in the library). */
public final class SiluMulKernelReference {
    private SiluMulKernelReference() {}

    public static short[] reference(short[] gateUp, int rows, int inter) {
        short[] out = new short[rows * inter];
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < inter; i++) {
                float g = Bf16.toFloat(gateUp[r * 2 * inter + i]);
                float u = Bf16.toFloat(gateUp[r * 2 * inter + inter + i]);
                float silu = Bf16.round((float) (g / (1.0 + Math.exp(-g))));
                out[r * inter + i] = Bf16.fromFloat(silu * u);
            }
        }
        return out;
    }
}
