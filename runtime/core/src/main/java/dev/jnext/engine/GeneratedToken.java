package dev.jnext.engine;

/**
 * One generated token with its log-probability under the model's distribution (log-softmax of the raw logits,
 * before penalties and temperature) and, when the request asked for them, the most likely alternatives.
 */
public record GeneratedToken(int id, float logprob, int[] topIds, float[] topLogprobs) {}
