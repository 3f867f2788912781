package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.numeric.Bf16;

/** CPU references of {@link GatedRmsNormKernel}'s kernels (test oracles: they live with the tests, not in the library). */
public final class GatedRmsNormKernelReference {
    private GatedRmsNormKernelReference() {}

    /** CPU reference with the torch path's roundings (QWEN3_NEXT_MODEL.md §3.2). */
    public static short[] reference(short[] x, short[] z, short[] w, int rows, int dim, float eps) {
        short[] out = new short[rows * dim];
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int c = 0; c < dim; c++) {
                float v = Bf16.toFloat(x[r * dim + c]);
                ss += v * v;
            }
            float inv = (float) (1.0 / Math.sqrt((float) (ss / dim) + eps));
            for (int c = 0; c < dim; c++) {
                float n = Bf16.round(Bf16.toFloat(x[r * dim + c]) * inv);
                float y = Bf16.round(Bf16.toFloat(w[c]) * n);
                float zf = Bf16.toFloat(z[r * dim + c]);
                float silu = (float) (zf / (1.0 + Math.exp(-zf)));
                out[r * dim + c] = Bf16.fromFloat(y * silu);
            }
        }
        return out;
    }
}
