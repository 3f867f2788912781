package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.numeric.Bf16;

/** CPU references of {@link MoeExpertGemm}'s kernels (test oracles: they live with the tests, not in the library). */
public final class MoeExpertGemmReference {
    private MoeExpertGemmReference() {}

    /**
     * CPU reference of one expert MLP on one token with the kernels' rounding points: gate/up outputs, SiLU, the
     * activation and the down output each round to bf16; the routing weight multiplies the rounded output.
     * Returns the weighted contribution [H] as floats holding bf16 values.
     */
    public static float[] referenceExpert(short[] x, int xOffset, short[] gateUp, short[] down, int expert, int hidden, int inter,
                                          float weight) {
        float[] act = referenceAct(x, xOffset, gateUp, expert, hidden, inter);
        float[] out = new float[hidden];
        long dBase = (long) expert * hidden * inter;
        for (int h = 0; h < hidden; h++) {
            float y = 0;
            for (int i = 0; i < inter; i++) y += act[i] * Bf16.toFloat(down[(int) (dBase + (long) h * inter + i)]);
            out[h] = Bf16.round(Bf16.round(y) * weight);
        }
        return out;
    }

    /** The bf16 activation row silu(gate)·up of one expert on one token (as floats holding bf16 values). */
    public static float[] referenceAct(short[] x, int xOffset, short[] gateUp, int expert, int hidden, int inter) {
        float[] act = new float[inter];
        long base = (long) expert * 2 * inter * hidden;
        for (int i = 0; i < inter; i++) {
            float g = 0, u = 0;
            for (int c = 0; c < hidden; c++) {
                float xv = Bf16.toFloat(x[xOffset + c]);
                g += xv * Bf16.toFloat(gateUp[(int) (base + (long) i * hidden + c)]);
                u += xv * Bf16.toFloat(gateUp[(int) (base + (long) (inter + i) * hidden + c)]);
            }
            g = Bf16.round(g);
            u = Bf16.round(u);
            act[i] = Bf16.round(Bf16.round((float) (g / (1.0 + Math.exp(-g)))) * u);
        }
        return act;
    }
}
