package dev.jnext.backend;

/**
 * What a backend's prefix cache ({@link PrefixCacheOptions}) has done since it opened, and what it holds now.
 *
 * @param enabled             whether the backend caches prefixes (false on the CUDA backend, and when switched off)
 * @param hits                prompts that resumed from a cached prefix
 * @param misses              prompts looked up that found no usable cached prefix
 * @param evictions           snapshots evicted to stay within the budgets (with the KV of their tokens where no other
 *                            node needed it)
 * @param cachedTokens        prompt tokens taken from the cache instead of being computed, all requests together (the
 *                            sum of OpenAI's {@code usage.prompt_tokens_details.cached_tokens})
 * @param storedTokens        tokens whose KV the cache holds now
 * @param snapshots           GDN state snapshots the cache holds now
 * @param kvBytes             bytes of KV held now
 * @param snapshotBytes       bytes of snapshots held now
 * @param kvBudgetBytes       the KV budget
 * @param snapshotBudgetBytes the snapshot budget
 */
public record PrefixCacheStats(boolean enabled, long hits, long misses, long evictions, long cachedTokens,
                               long storedTokens, long snapshots, long kvBytes, long snapshotBytes, long kvBudgetBytes,
                               long snapshotBudgetBytes) {

    /** A backend without prefix caching. */
    public static final PrefixCacheStats DISABLED = new PrefixCacheStats(false, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
}
