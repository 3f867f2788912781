package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.numeric.Bf16;

/** CPU references of {@link MoeRouterKernel}'s kernels (test oracles: they live with the tests, not in the library). */
public final class MoeRouterKernelReference {
    private MoeRouterKernelReference() {}

    /**
     * CPU reference: the same softmax/top-k/renormalisation as {@link dev.jnext.cpu.ops.SparseMoe#route} on bf16 logits, with the
     * kernel's rules for rows that are not finite (see the class comment).
     */
    public static MoeRouterKernel.Routes reference(short[] logits, int logitStride, int rows, int experts, int topK, boolean normTopkProb) {
        int[] ids = new int[rows * topK];
        short[] weights = new short[rows * topK];
        float[] p = new float[experts];
        boolean[] taken = new boolean[experts];
        for (int r = 0; r < rows; r++) {
            float max = Float.NEGATIVE_INFINITY;
            for (int e = 0; e < experts; e++) {
                float v = Bf16.toFloat(logits[r * logitStride + e]);
                p[e] = Float.isNaN(v) ? Float.NEGATIVE_INFINITY : v;
                max = Math.max(max, p[e]);
            }
            float sum = 0;
            for (int e = 0; e < experts; e++) {
                p[e] = max == Float.NEGATIVE_INFINITY ? 0f : p[e] == max ? 1f : (float) Math.exp(p[e] - max);
                sum += p[e];
            }
            for (int e = 0; e < experts; e++) p[e] = sum > 0 ? p[e] / sum : 0f;
            java.util.Arrays.fill(taken, false);
            float[] w = new float[topK];
            float wsum = 0;
            for (int k = 0; k < topK; k++) {
                int best = -1;
                for (int e = 0; e < experts; e++) if (!taken[e] && (best < 0 || p[e] > p[best])) best = e;
                taken[best] = true;
                ids[r * topK + k] = best;
                w[k] = p[best];
                wsum += w[k];
            }
            for (int k = 0; k < topK; k++) {
                weights[r * topK + k] = Bf16.fromFloat(normTopkProb ? (wsum > 0 ? w[k] / wsum : 0f) : w[k]);
            }
        }
        return new MoeRouterKernel.Routes(ids, weights);
    }
}
