package dev.jnext.engine;

import dev.jnext.backend.PrefixCacheStats;

/**
 * A snapshot of an engine's load, for metrics and soak checks.
 *
 * @param queued            requests waiting for a slot
 * @param running           requests holding a slot
 * @param freeSlots         sequence slots not in use
 * @param promptTokens      prompt tokens run through the model since the engine opened (those restored from the
 *                          prefix cache not counted)
 * @param generatedTokens   tokens generated since the engine opened
 * @param steps             forward steps run
 * @param tokensPerSecond   generated tokens per second over the last few seconds
 * @param deviceMemoryUsed  bytes of device memory the backend holds; −1 on the CPU
 * @param prefixCache       the backend's prefix cache: hits, misses, evictions, cached tokens, what it holds
 *                          ({@link PrefixCacheStats#DISABLED} without one)
 * @param kvTokensReserved  KV tokens the running requests hold reserved ({@link
 *                          dev.jnext.backend.ModelBackend#kvTokensReserved()}); −1 when the backend does not count them
 */
public record EngineStats(int queued, int running, int freeSlots, long promptTokens, long generatedTokens, long steps,
                          double tokensPerSecond, long deviceMemoryUsed, PrefixCacheStats prefixCache, long kvTokensReserved) {}
