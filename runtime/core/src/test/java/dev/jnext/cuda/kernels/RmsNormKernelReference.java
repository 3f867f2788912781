package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.numeric.Bf16;

/** CPU references of {@link RmsNormKernel}'s kernels (test oracles: they live with the tests, not in the library). */
public final class RmsNormKernelReference {
    private RmsNormKernelReference() {}

    /** CPU reference of {@link #launch}: bf16 in and out, fp32 inside, one rounding. */
    public static short[] reference(short[] x, short[] w, int rows, int hidden, float eps) {
        short[] y = new short[rows * hidden];
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int c = 0; c < hidden; c++) {
                float v = Bf16.toFloat(x[r * hidden + c]);
                ss += v * v;
            }
            float inv = (float) (1.0 / Math.sqrt((float) (ss / hidden) + eps));
            for (int c = 0; c < hidden; c++) {
                y[r * hidden + c] = Bf16.fromFloat(Bf16.toFloat(x[r * hidden + c]) * inv * (1f + Bf16.toFloat(w[c])));
            }
        }
        return y;
    }

    /** CPU reference of {@link #launchAdd}: updates {@code residual} in place and returns y. */
    public static short[] referenceAdd(short[] delta, short[] residual, short[] w, int rows, int hidden, float eps) {
        for (int i = 0; i < rows * hidden; i++) {
            residual[i] = Bf16.fromFloat(Bf16.toFloat(residual[i]) + Bf16.toFloat(delta[i]));
        }
        return reference(residual, w, rows, hidden, eps);
    }
}
