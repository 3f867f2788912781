package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.numeric.Bf16;

/** CPU references of {@link MoeCombineKernel}'s kernels (test oracles: they live with the tests, not in the library). */
public final class MoeCombineKernelReference {
    private MoeCombineKernelReference() {}

    /** CPU reference of one output element from its k contributions (bf16 values as floats) and the shared term. */
    public static short reference(float[] contribs, boolean hasShared, float gateLogit, float shared) {
        float acc = 0;
        for (float c : contribs) acc += c;
        if (!hasShared) return Bf16.fromFloat(acc);
        float sg = Bf16.round((float) (1.0 / (1.0 + Math.exp(-gateLogit))));
        return Bf16.fromFloat(Bf16.round(acc) + Bf16.round(sg * shared));
    }
}
