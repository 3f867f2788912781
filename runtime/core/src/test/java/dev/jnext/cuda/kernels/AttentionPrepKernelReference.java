package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.numeric.Bf16;
import dev.jnext.cpu.ops.RmsNorm;

/** CPU references of {@link AttentionPrepKernel}'s kernels (test oracles: they live with the tests, not in the library). */
public final class AttentionPrepKernelReference {
    private AttentionPrepKernelReference() {}

    /**
     * CPU reference of one head row: zero-centred RMSNorm ({@link RmsNorm}, fp32) rounded to bf16, then RoPE at
     * {@code position} with transformers' bf16 roundings. {@code x} holds headDim bf16 values from {@code offset}.
     */
    public static short[] referenceRow(short[] x, int offset, short[] normWeight, float eps, float[] invFreq, int rotaryDim,
                                       int position) {
        int hd = normWeight.length;
        float[] w = new float[hd], xf = new float[hd], y = new float[hd];
        for (int i = 0; i < hd; i++) {
            w[i] = Bf16.toFloat(normWeight[i]);
            xf[i] = Bf16.toFloat(x[offset + i]);
        }
        new RmsNorm(w, eps).forward(xf, 0, 1, y, 0);
        for (int i = 0; i < hd; i++) y[i] = Bf16.round(y[i]);
        short[] out = new short[hd];
        int half = rotaryDim / 2;
        for (int i = 0; i < hd; i++) {
            if (i < rotaryDim) {
                int f = i < half ? i : i - half;
                float angle = (float) position * invFreq[f];
                float c = Bf16.round((float) Math.cos(angle)), sn = Bf16.round((float) Math.sin(angle));
                float rot = i < half ? -y[i + half] : y[i - half];
                out[i] = Bf16.fromFloat(Bf16.round(y[i] * c) + Bf16.round(rot * sn));
            } else {
                out[i] = Bf16.fromFloat(y[i]);
            }
        }
        return out;
    }
}
