package dev.jnext.engine;

import java.util.Arrays;
import java.util.Objects;

/**
 * One generated token with its log-probability under the model's distribution (log-softmax of the raw logits,
 * before penalties and temperature) and, when the request asked for them, the most likely alternatives. A value: the
 * arrays are copied in and out, and two tokens with equal contents are {@link #equals equal}.
 *
 * @param id          the token id
 * @param logprob     its log-probability
 * @param topIds      the most likely ids, most likely first (empty when none were asked for)
 * @param topLogprobs their log-probabilities, as many as {@code topIds}
 */
public record GeneratedToken(int id, float logprob, int[] topIds, float[] topLogprobs) {

    /**
     * Copies the arrays.
     *
     * @throws NullPointerException     naming {@code topIds} or {@code topLogprobs} when one is null
     * @throws IllegalArgumentException when their lengths differ
     */
    public GeneratedToken {
        topIds = Objects.requireNonNull(topIds, "topIds").clone();
        topLogprobs = Objects.requireNonNull(topLogprobs, "topLogprobs").clone();
        if (topIds.length != topLogprobs.length) {
            throw new IllegalArgumentException("topIds has " + topIds.length + " ids but topLogprobs " + topLogprobs.length + " values");
        }
    }

    /** A copy of the most likely ids. */
    @Override
    public int[] topIds() {
        return topIds.clone();
    }

    /** A copy of their log-probabilities. */
    @Override
    public float[] topLogprobs() {
        return topLogprobs.clone();
    }

    /** How many alternatives there are. */
    public int topCount() {
        return topIds.length;
    }

    /** The {@code i}-th most likely id (no copy). */
    public int topId(int i) {
        return topIds[i];
    }

    /** Its log-probability (no copy). */
    public float topLogprob(int i) {
        return topLogprobs[i];
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GeneratedToken t && id == t.id && Float.compare(logprob, t.logprob) == 0
                && Arrays.equals(topIds, t.topIds) && Arrays.equals(topLogprobs, t.topLogprobs);
    }

    @Override
    public int hashCode() {
        return Objects.hash(id, logprob, Arrays.hashCode(topIds), Arrays.hashCode(topLogprobs));
    }

    @Override
    public String toString() {
        return "GeneratedToken[id=" + id + ", logprob=" + logprob + ", topIds=" + Arrays.toString(topIds)
                + ", topLogprobs=" + Arrays.toString(topLogprobs) + "]";
    }
}
