package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.numeric.Bf16;
import dev.jnext.cpu.ops.GatedDeltaRule;

/** CPU references of {@link ChunkedDeltaRuleKernel}'s kernels (test oracles: they live with the tests, not in the library). */
public final class ChunkedDeltaRuleKernelReference {
    private ChunkedDeltaRuleKernelReference() {}

    /**
     * CPU reference on the same inputs: {@link GatedDeltaRule#recurrent} (fp32) per sequence on the bf16 inputs
     * widened to float; slot −1 sequences get zero outputs and leave the pool alone. Updates {@code statePool}.
     */
    public static float[] reference(GatedDeltaRule rule, short[] qkv, float[] beta, float[] g, int[] cuSeqlens, int[] slots,
                                    float[] statePool) {
        int tokens = qkv.length / (2 * rule.keyHeads() * rule.keyDim() + rule.valueHeads() * rule.valueDim());
        float[] q = new float[qkv.length];
        for (int i = 0; i < q.length; i++) q[i] = Bf16.toFloat(qkv[i]);
        float[] out = new float[tokens * rule.valueHeads() * rule.valueDim()];
        for (int b = 0; b < slots.length; b++) {
            int len = cuSeqlens[b + 1] - cuSeqlens[b];
            if (slots[b] < 0 || len == 0) continue;
            rule.recurrent(q, cuSeqlens[b], len, beta, g, statePool, slots[b] * rule.stateSize(), out);
        }
        return out;
    }
}
