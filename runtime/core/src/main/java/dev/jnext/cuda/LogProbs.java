package dev.jnext.cuda;

import dev.jnext.backend.ModelBackend.StepOutput;

import java.util.Arrays;

/** Log-probabilities from one logits row: log-softmax of the raw logits (before penalties and temperature), in double. */
final class LogProbs {
    private LogProbs() {}

    /** The chosen token's log-probability and the {@code top} most likely tokens (descending, lower id first on ties). */
    static StepOutput of(float[] logits, int token, int top) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : logits) max = Math.max(max, v);
        double sum = 0;
        for (float v : logits) sum += Math.exp(v - max);
        double lse = max + Math.log(sum);
        int k = Math.min(top, logits.length);
        Integer[] order = new Integer[logits.length];
        for (int i = 0; i < order.length; i++) order[i] = i;
        Arrays.sort(order, (a, b) -> logits[a] != logits[b] ? Float.compare(logits[b], logits[a]) : Integer.compare(a, b));
        int[] ids = new int[k];
        float[] lps = new float[k];
        for (int i = 0; i < k; i++) {
            ids[i] = order[i];
            lps[i] = (float) (logits[order[i]] - lse);
        }
        return new StepOutput(token, (float) (logits[token] - lse), ids, lps);
    }
}
