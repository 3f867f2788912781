package dev.jnext.cli;

import dev.jnext.JnextException;
import dev.jnext.engine.EngineOptions;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/**
 * The engine's options on the command line ({@code generate}, {@code serve}, {@code bench serve}): one {@link EngineOptions}.
 * {@code --device}, {@code --graphs} and {@code --decode-graphs} are spelled as in the shared model options of the other
 * commands.
 */
public final class EngineOptionsMixin {

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}; auto = cpu for now)")
    String device;

    @Option(names = "--graphs", defaultValue = "eager", paramLabel = "MODE",
            description = "prefill on CUDA: eager, piecewise or gdn-layer-eager (default: ${DEFAULT-VALUE}; the CPU runs no graphs)")
    String prefillGraphs;

    @Option(names = "--decode-graphs", defaultValue = "on", paramLabel = "ON",
            description = "replay pure-decode steps on CUDA from one graph per batch size: on or off (default: ${DEFAULT-VALUE})")
    String decodeGraphs;

    @Option(names = "--max-sequences", paramLabel = "N", description = "sequence slots: requests running at once")
    Integer maxSequences;

    @Option(names = "--kv-budget", defaultValue = "0.9", paramLabel = "SIZE",
            description = "KV cache for all sequences: tokens (65536, 64k) or a fraction of free GPU memory (0.9, 90%%) (default: ${DEFAULT-VALUE})")
    String kvBudget;

    @Option(names = "--max-step-tokens", defaultValue = "" + EngineOptions.DEFAULT_MAX_STEP_TOKENS, paramLabel = "N",
            description = "most tokens one forward step carries: decode tokens plus prompt chunks (default: ${DEFAULT-VALUE})")
    int maxStepTokens;

    @Option(names = "--queue-limit", defaultValue = "" + EngineOptions.DEFAULT_QUEUE_LIMIT, paramLabel = "N",
            description = "requests that may wait for a slot; more are refused (HTTP 429) (default: ${DEFAULT-VALUE})")
    int queueLimit;

    /** The options, with {@code defaultSequences} slots unless --max-sequences was given. */
    EngineOptions toOptions(int defaultSequences, Path tokenizer) {
        int slots = maxSequences != null ? maxSequences : defaultSequences;
        if (!decodeGraphs.equals("on") && !decodeGraphs.equals("off")) {
            throw new JnextException("--decode-graphs must be on or off, got \"" + decodeGraphs + "\"");
        }
        return new EngineOptions(EngineOptions.Device.parse(device), EngineOptions.PrefillGraphs.parse(prefillGraphs),
                decodeGraphs.equals("on"), slots, EngineOptions.KvBudget.parse(kvBudget), maxStepTokens, queueLimit, tokenizer);
    }
}
