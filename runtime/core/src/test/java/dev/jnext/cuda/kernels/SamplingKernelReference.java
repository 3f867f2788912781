package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.backend.SamplingRules;

/** CPU references of {@link SamplingKernel}'s kernels (test oracles: they live with the tests, not in the library). */
public final class SamplingKernelReference {
    private SamplingKernelReference() {}

    /** Greedy reference: the first id of the largest logit; −1 when any logit is NaN ({@link SamplingRules#argmax}). */
    public static int referenceArgmax(float[] logits, int vocab) {
        return SamplingRules.argmax(logits, vocab);
    }

    /**
     * The distribution a stochastic row samples from: {@link SamplingRules#distribution} (candidates ordered by logit
     * descending, ties by lower id; top-k; masses relative to the largest logit; top-p; min-p; the kept masses
     * renormalised, 0 elsewhere).
     */
    public static double[] referenceDistribution(float[] logits, int vocab, SamplingKernel.RowParams p) {
        return SamplingRules.distribution(logits, vocab, p.temperature(), p.topK(), p.topP(), p.minP());
    }
}
