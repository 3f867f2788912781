package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.numeric.Bf16;

/** CPU references of {@link CausalConv1dKernel}'s kernels (test oracles: they live with the tests, not in the library). */
public final class CausalConv1dKernelReference {
    private CausalConv1dKernelReference() {}

    /**
     * CPU reference of one sequence with torch's bf16 roundings: rows {@code [first, first + rows)} of {@code x [*, C]}
     * into {@code out}, state {@code [C, K−1]} at {@code stateOffset} read and updated (all bf16 bit patterns).
     * {@code preSilu} (may be null) receives the fp32 conv sums, for tolerance checks of the pre-SiLU rounding.
     */
    public static void reference(short[] x, int first, int rows, short[] weight, short[] state, int stateOffset,
                                 int channels, int kernelWidth, short[] out, float[] preSilu) {
        int k1 = kernelWidth - 1;
        float[] win = new float[k1];
        for (int c = 0; c < channels; c++) {
            for (int j = 0; j < k1; j++) win[j] = Bf16.toFloat(state[stateOffset + c * k1 + j]);
            for (int t = first; t < first + rows; t++) {
                float xv = Bf16.toFloat(x[t * channels + c]);
                float acc = 0f;
                for (int j = 0; j < k1; j++) acc += Bf16.toFloat(weight[c * kernelWidth + j]) * win[j];
                acc += Bf16.toFloat(weight[c * kernelWidth + k1]) * xv;
                if (preSilu != null) preSilu[t * channels + c] = acc;
                float a = Bf16.round(acc);
                out[t * channels + c] = Bf16.fromFloat((float) (a / (1.0 + Math.exp(-a))));
                for (int j = 0; j + 1 < k1; j++) win[j] = win[j + 1];
                win[k1 - 1] = xv;
            }
            for (int j = 0; j < k1; j++) state[stateOffset + c * k1 + j] = Bf16.fromFloat(win[j]);
        }
    }
}
