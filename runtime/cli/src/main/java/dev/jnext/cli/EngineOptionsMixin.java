package dev.jnext.cli;

import dev.jnext.backend.KvBudget;
import dev.jnext.backend.PrefillMode;
import dev.jnext.backend.DeviceChoice;

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

    /** The options with the device switches, {@code defaultSequences} slots unless --max-sequences was given. */
    EngineOptions toOptions(DeviceOptions device, int defaultSequences, Path tokenizer) {
        int slots = maxSequences != null ? maxSequences : defaultSequences;
        return device.apply(new EngineOptions(DeviceChoice.AUTO, PrefillMode.EAGER, true, slots,
                KvBudget.parse(kvBudget), Math.max(maxStepTokens, slots), queueLimit, tokenizer, maxPrefillChunk));
    }
}
