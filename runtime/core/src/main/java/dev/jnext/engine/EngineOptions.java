package dev.jnext.engine;

import dev.jnext.backend.BackendOptions;
import dev.jnext.backend.DeviceChoice;
import dev.jnext.backend.KvBudget;
import dev.jnext.backend.PrefillMode;
import dev.jnext.backend.PrefixCacheOptions;
import dev.jnext.backend.Quantization;

import dev.jnext.JnextException;

import java.nio.file.Path;
import java.util.Objects;

/**
 * How an {@link Engine} runs: one immutable record shared by the library API, the CLI ({@code generate}, {@code serve},
 * {@code bench serve}) and JMH. Options a backend has no use for are ignored by it (the CPU backend runs no graphs and
 * holds no device memory).
 *
 * @param device         where the model runs
 * @param prefillMode  how prefill/extend steps run on CUDA
 * @param decodeGraphs   whether pure-decode steps replay one CUDA graph per batch-size bucket
 * @param maxSequences   sequence slots: requests that run at once (more wait in the queue)
 * @param kvBudget       how much KV cache the backend may hold for all sequences together
 * @param maxStepTokens  most new tokens one forward step carries (decode tokens plus prompt chunks); must hold one
 *                       decode token of every slot
 * @param queueLimit     requests that may wait for a slot; past it {@link Engine#submit} throws
 *                       {@link EngineOverloadedException}
 * @param tokenizer      folder with tokenizer.json (+ tokenizer_config.json), or null for the model folder
 * @param maxPrefillChunk most prompt tokens one request feeds in one step (chunked prefill), so that a long prompt leaves
 *                       room in every step for the running decodes and for other prompts; rounded down to a multiple of
 *                       the backend's prefill alignment (at least one alignment)
 * @param prefixCache    prefix caching: a request resumes from the longest cached prefix of its prompt that ends at a
 *                       state snapshot and prefills only the rest ({@link PrefixCacheOptions}; off in {@link #defaults()},
 *                       on in {@code jnext serve}; the CPU backend honours it, bitwise exact, the CUDA backend has none yet)
 * @param quantize       quantization applied while the checkpoint loads ({@link Quantization}; none in {@link #defaults()}):
 *                       fp8 block-quantizes an unquantized checkpoint's experts for the CUDA backend; the CPU backend refuses it
 */
public record EngineOptions(DeviceChoice device, PrefillMode prefillMode, boolean decodeGraphs, int maxSequences,
                            KvBudget kvBudget, int maxStepTokens, int queueLimit, Path tokenizer, int maxPrefillChunk,
                            PrefixCacheOptions prefixCache, Quantization quantize) {

    /** Sequence slots of {@link #defaults()}. */
    public static final int DEFAULT_MAX_SEQUENCES = 32;
    /** Step token budget of {@link #defaults()}. */
    public static final int DEFAULT_MAX_STEP_TOKENS = 8192;
    /** Waiting requests {@link #defaults()} accepts before refusing more. */
    public static final int DEFAULT_QUEUE_LIMIT = 1024;
    /** Prompt tokens one request feeds per step in {@link #defaults()}: a quarter of the default step budget. */
    public static final int DEFAULT_MAX_PREFILL_CHUNK = 2048;

    /**
     * Checks every option.
     *
     * @throws NullPointerException naming {@code device}, {@code prefillMode}, {@code kvBudget} or {@code prefixCache}
     *                              when it is null
     * @throws JnextException       naming a number out of its range
     */
    public EngineOptions {
        Objects.requireNonNull(device, "device");
        Objects.requireNonNull(prefixCache, "prefixCache");
        Objects.requireNonNull(quantize, "quantize");
        Objects.requireNonNull(prefillMode, "prefillMode");
        Objects.requireNonNull(kvBudget, "kvBudget");
        if (maxSequences < 1) throw new JnextException("sequence slots must be at least 1, got " + maxSequences);
        if (maxStepTokens < maxSequences) {
            throw new JnextException("the step token budget (" + maxStepTokens + ") must hold one decode token of each of the "
                    + maxSequences + " sequence slots");
        }
        if (queueLimit < 0) throw new JnextException("the queue limit must be >= 0, got " + queueLimit);
        if (maxPrefillChunk < 1) throw new JnextException("the prefill chunk must be at least 1 token, got " + maxPrefillChunk);
    }

    /** The options with the checkpoint run as stored ({@link Quantization#NONE}). */
    public EngineOptions(DeviceChoice device, PrefillMode prefillMode, boolean decodeGraphs, int maxSequences, KvBudget kvBudget,
                         int maxStepTokens, int queueLimit, Path tokenizer, int maxPrefillChunk, PrefixCacheOptions prefixCache) {
        this(device, prefillMode, decodeGraphs, maxSequences, kvBudget, maxStepTokens, queueLimit, tokenizer, maxPrefillChunk,
                prefixCache, Quantization.NONE);
    }

    /** The options without prefix caching ({@link PrefixCacheOptions#off()}). */
    public EngineOptions(DeviceChoice device, PrefillMode prefillMode, boolean decodeGraphs, int maxSequences, KvBudget kvBudget,
                         int maxStepTokens, int queueLimit, Path tokenizer, int maxPrefillChunk) {
        this(device, prefillMode, decodeGraphs, maxSequences, kvBudget, maxStepTokens, queueLimit, tokenizer,
                maxPrefillChunk, PrefixCacheOptions.off());
    }

    /** The options without a prefill chunk of their own ({@link #DEFAULT_MAX_PREFILL_CHUNK}) and without prefix caching. */
    public EngineOptions(DeviceChoice device, PrefillMode prefillMode, boolean decodeGraphs, int maxSequences, KvBudget kvBudget,
                         int maxStepTokens, int queueLimit, Path tokenizer) {
        this(device, prefillMode, decodeGraphs, maxSequences, kvBudget, maxStepTokens, queueLimit, tokenizer,
                DEFAULT_MAX_PREFILL_CHUNK);
    }

    /** Auto device, eager prefill, decode graphs, 32 slots, 90% of free memory for KV, 8,192 tokens a step, no prefix cache. */
    public static EngineOptions defaults() {
        return new EngineOptions(DeviceChoice.AUTO, PrefillMode.EAGER, true, DEFAULT_MAX_SEQUENCES,
                new KvBudget.MemoryFraction(0.9), DEFAULT_MAX_STEP_TOKENS, DEFAULT_QUEUE_LIMIT, null, DEFAULT_MAX_PREFILL_CHUNK,
                PrefixCacheOptions.off());
    }

    /** These options with {@code device} set to {@code d}. */
    public EngineOptions withDevice(DeviceChoice d) {
        return new EngineOptions(d, prefillMode, decodeGraphs, maxSequences, kvBudget, maxStepTokens, queueLimit, tokenizer, maxPrefillChunk, prefixCache, quantize);
    }

    /** These options with {@code prefillMode} set to {@code g}. */
    public EngineOptions withPrefillMode(PrefillMode g) {
        return new EngineOptions(device, g, decodeGraphs, maxSequences, kvBudget, maxStepTokens, queueLimit, tokenizer, maxPrefillChunk, prefixCache, quantize);
    }

    /** These options with {@code decodeGraphs} set to {@code on}. */
    public EngineOptions withDecodeGraphs(boolean on) {
        return new EngineOptions(device, prefillMode, on, maxSequences, kvBudget, maxStepTokens, queueLimit, tokenizer, maxPrefillChunk, prefixCache, quantize);
    }

    /** These options with {@code maxSequences} set to {@code n}. */
    public EngineOptions withMaxSequences(int n) {
        return new EngineOptions(device, prefillMode, decodeGraphs, n, kvBudget, Math.max(maxStepTokens, n), queueLimit, tokenizer, maxPrefillChunk, prefixCache, quantize);
    }

    /** These options with {@code kvBudget} set to {@code b}. */
    public EngineOptions withKvBudget(KvBudget b) {
        return new EngineOptions(device, prefillMode, decodeGraphs, maxSequences, b, maxStepTokens, queueLimit, tokenizer, maxPrefillChunk, prefixCache, quantize);
    }

    /** These options with {@code maxStepTokens} set to {@code n}. */
    public EngineOptions withMaxStepTokens(int n) {
        return new EngineOptions(device, prefillMode, decodeGraphs, maxSequences, kvBudget, n, queueLimit, tokenizer, maxPrefillChunk, prefixCache, quantize);
    }

    /** These options with {@code queueLimit} set to {@code n}. */
    public EngineOptions withQueueLimit(int n) {
        return new EngineOptions(device, prefillMode, decodeGraphs, maxSequences, kvBudget, maxStepTokens, n, tokenizer, maxPrefillChunk, prefixCache, quantize);
    }

    /** These options with {@code maxPrefillChunk} set to {@code n}. */
    public EngineOptions withMaxPrefillChunk(int n) {
        return new EngineOptions(device, prefillMode, decodeGraphs, maxSequences, kvBudget, maxStepTokens, queueLimit, tokenizer, n, prefixCache, quantize);
    }

    /** These options with prefix caching set to {@code p} ({@link PrefixCacheOptions#on()}, {@link PrefixCacheOptions#off()}). */
    public EngineOptions withPrefixCache(PrefixCacheOptions p) {
        return new EngineOptions(device, prefillMode, decodeGraphs, maxSequences, kvBudget, maxStepTokens, queueLimit, tokenizer,
                maxPrefillChunk, p, quantize);
    }

    /** These options with the tokenizer read from {@code dir} instead of the checkpoint folder (synthetic checkpoints have none). */
    public EngineOptions withTokenizer(Path dir) {
        return new EngineOptions(device, prefillMode, decodeGraphs, maxSequences, kvBudget, maxStepTokens, queueLimit, dir, maxPrefillChunk, prefixCache, quantize);
    }

    /** These options with {@code q} applied while the checkpoint loads (CUDA only: the CPU backend refuses anything but none). */
    public EngineOptions withQuantize(Quantization q) {
        return new EngineOptions(device, prefillMode, decodeGraphs, maxSequences, kvBudget, maxStepTokens, queueLimit, tokenizer,
                maxPrefillChunk, prefixCache, q);
    }

    /** One line for logs and benchmark records. */
    public String describe() {
        return "device=" + device + " prefill-mode=" + prefillMode + " decode-graphs=" + (decodeGraphs ? "on" : "off")
                + " slots=" + maxSequences + " kv-budget=" + kvBudget + " step-tokens=" + maxStepTokens + " prefill-chunk=" + maxPrefillChunk + " queue-limit=" + queueLimit
                + " prefix-cache=" + prefixCache + " quantize=" + quantize;
    }

    /** What the backend is opened with: the device, graph switches, slots, KV and step budgets and prefix cache of these options. */
    public BackendOptions backendOptions() {
        return new BackendOptions(device, prefillMode, decodeGraphs, maxSequences, kvBudget, maxStepTokens, prefixCache, quantize);
    }
}
