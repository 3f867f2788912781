package dev.jnext.cli;

import dev.jnext.backend.KvBudget;
import dev.jnext.backend.PrefillMode;
import dev.jnext.backend.DeviceChoice;
import dev.jnext.backend.PrefixCacheOptions;

import dev.jnext.JnextException;
import dev.jnext.engine.EngineOptions;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/**
 * The engine's serving options on the command line ({@code generate}, {@code serve}, {@code bench serve}); with the
 * {@link DeviceOptions} they make one {@link EngineOptions}.
 */
public final class EngineOptionsMixin {

    @Option(names = "--max-sequences", paramLabel = "N", description = "Sequence slots: requests running at once (default: 1 for generate, 32 for serve).")
    Integer maxSequences;

    @Option(names = "--kv-budget", defaultValue = "0.9", paramLabel = "SIZE",
            description = "KV cache for all sequences: tokens (65536, 64k) or a fraction of free GPU memory (0.9, 90%%) (default: ${DEFAULT-VALUE}).")
    String kvBudget;

    @Option(names = "--max-step-tokens", defaultValue = "" + EngineOptions.DEFAULT_MAX_STEP_TOKENS, paramLabel = "N",
            description = "Most tokens one forward step carries: decode tokens plus prompt chunks (default: ${DEFAULT-VALUE}).")
    int maxStepTokens;

    @Option(names = "--max-prefill-chunk", defaultValue = "" + EngineOptions.DEFAULT_MAX_PREFILL_CHUNK, paramLabel = "N",
            description = "Most prompt tokens one request feeds in one step, so that a long prompt leaves room for running decodes and short prompts (default: ${DEFAULT-VALUE}).")
    int maxPrefillChunk;

    @Option(names = "--queue-limit", defaultValue = "" + EngineOptions.DEFAULT_QUEUE_LIMIT, paramLabel = "N",
            description = "Requests that may wait for a slot; more are refused (HTTP 429) (default: ${DEFAULT-VALUE}).")
    int queueLimit;

    @Option(names = "--prefix-cache", paramLabel = "on|off",
            description = "Prefix caching: a request resumes from the longest cached prefix of its prompt that ends at a state snapshot and prefills only the rest, bitwise as without it (CPU backend; the CUDA backend has none yet) (default: on for serve and bench serve, off for generate).")
    String prefixCache;

    @Option(names = "--prefix-cache-kv", defaultValue = "1g", paramLabel = "BYTES",
            description = "Most memory the prefix cache may hold for the cached tokens' keys and values (bytes, or 512m, 2g) (default: ${DEFAULT-VALUE}).")
    String prefixCacheKv;

    @Option(names = "--prefix-cache-snapshots", defaultValue = "1g", paramLabel = "BYTES",
            description = "Most memory the prefix cache may hold for snapshots of the linear-attention state (bytes, or 512m, 2g) (default: ${DEFAULT-VALUE}).")
    String prefixCacheSnapshots;

    @Option(names = "--prefix-cache-interval", defaultValue = "" + PrefixCacheOptions.DEFAULT_SNAPSHOT_INTERVAL, paramLabel = "N",
            description = "Tokens between two state snapshots along a prompt, rounded up to the backend's prefill alignment (default: ${DEFAULT-VALUE}).")
    int prefixCacheInterval;

    /**
     * The options with the device switches, {@code defaultSequences} slots unless --max-sequences was given, and prefix
     * caching as {@code --prefix-cache} says (else {@code prefixCacheByDefault}).
     */
    EngineOptions toOptions(DeviceOptions device, int defaultSequences, Path tokenizer, boolean prefixCacheByDefault) {
        int slots = maxSequences != null ? maxSequences : defaultSequences;
        return device.apply(new EngineOptions(DeviceChoice.AUTO, PrefillMode.EAGER, true, slots,
                KvBudget.parse(kvBudget), Math.max(maxStepTokens, slots), queueLimit, tokenizer, maxPrefillChunk,
                prefixCache(prefixCacheByDefault)));
    }

    private PrefixCacheOptions prefixCache(boolean byDefault) {
        boolean on = switch (prefixCache == null ? (byDefault ? "on" : "off") : prefixCache) {
            case "on" -> true;
            case "off" -> false;
            default -> throw new JnextException("--prefix-cache must be on or off, got \"" + prefixCache + "\"");
        };
        if (prefixCacheInterval < 1) {
            throw new JnextException("--prefix-cache-interval must be at least 1, got " + prefixCacheInterval);
        }
        return new PrefixCacheOptions(on, PrefixCacheOptions.parseBytes(prefixCacheKv, "--prefix-cache-kv"),
                PrefixCacheOptions.parseBytes(prefixCacheSnapshots, "--prefix-cache-snapshots"), prefixCacheInterval);
    }
}
