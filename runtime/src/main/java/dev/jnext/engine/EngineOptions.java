package dev.jnext.engine;

import dev.jnext.JnextException;

import java.nio.file.Path;
import java.util.Locale;

/**
 * How an {@link Engine} runs: one immutable record shared by the library API, the CLI ({@code generate}, {@code serve},
 * {@code bench serve}) and JMH. Options a backend has no use for are ignored by it (the CPU backend runs no graphs and
 * holds no device memory).
 *
 * @param device         where the model runs
 * @param prefillGraphs  how prefill/extend steps run on CUDA
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
 */
public record EngineOptions(Device device, PrefillGraphs prefillGraphs, boolean decodeGraphs, int maxSequences,
                            KvBudget kvBudget, int maxStepTokens, int queueLimit, Path tokenizer, int maxPrefillChunk) {

    /** Sequence slots of {@link #defaults()}. */
    public static final int DEFAULT_MAX_SEQUENCES = 32;
    /** Step token budget of {@link #defaults()}. */
    public static final int DEFAULT_MAX_STEP_TOKENS = 8192;
    /** Waiting requests {@link #defaults()} accepts before refusing more. */
    public static final int DEFAULT_QUEUE_LIMIT = 1024;
    /** Prompt tokens one request feeds per step in {@link #defaults()}: a quarter of the default step budget. */
    public static final int DEFAULT_MAX_PREFILL_CHUNK = 2048;

    /** Where the model runs. */
    public enum Device {
        /** The GPU when a CUDA driver, a Hopper GPU and a geometry the kernels run are present, else the CPU. */
        AUTO,
        /** The CPU reference backend. */
        CPU,
        /** The CUDA runner on GPU 0. */
        CUDA;

        /** {@code auto}, {@code cpu} or {@code cuda} (any case); anything else is a {@link JnextException}. */
        public static Device parse(String s) {
            return switch (s.toLowerCase(Locale.ROOT)) {
                case "auto" -> AUTO;
                case "cpu" -> CPU;
                case "cuda" -> CUDA;
                default -> throw new JnextException("device must be auto, cpu or cuda, got \"" + s + "\"");
            };
        }

        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** How prefill and extend steps run on CUDA. */
    public enum PrefillGraphs {
        /** every kernel launched one by one */
        EAGER,
        /** the pieces between the attention and delta-rule cores replayed from graphs per token bucket */
        PIECEWISE,
        /** piecewise, but each Gated DeltaNet layer eager as a whole */
        GDN_LAYER_EAGER;

        /** {@code eager}, {@code piecewise} or {@code gdn-layer-eager}; anything else is a {@link JnextException}. */
        public static PrefillGraphs parse(String s) {
            for (PrefillGraphs g : values()) if (g.toString().equals(s.toLowerCase(Locale.ROOT))) return g;
            throw new JnextException("prefill graph mode must be eager, piecewise or gdn-layer-eager, got \"" + s + "\"");
        }

        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT).replace('_', '-');
        }
    }

    /** How much KV cache the sequences may hold together. */
    public sealed interface KvBudget {
        /** A number of tokens over all sequences. */
        record Tokens(long tokens) implements KvBudget {
            /** Checks that it is at least one token. */
            public Tokens {
                if (tokens < 1) throw new JnextException("the KV budget must be at least 1 token, got " + tokens);
            }

            @Override
            public String toString() {
                return Long.toString(tokens);
            }
        }

        /** A fraction of the device memory left after weights and activations (the CPU backend sets no limit). */
        record MemoryFraction(double fraction) implements KvBudget {
            /** Checks that it is in (0, 1]. */
            public MemoryFraction {
                if (!(fraction > 0 && fraction <= 1)) {
                    throw new JnextException("the KV memory fraction must be in (0, 1], got " + fraction);
                }
            }

            @Override
            public String toString() {
                return fraction * 100 + "%";
            }
        }

        /** {@code 65536} or {@code 64k} tokens; {@code 0.9} or {@code 90%} of the free device memory. */
        static KvBudget parse(String s) {
            String t = s.trim().toLowerCase(Locale.ROOT);
            try {
                if (t.endsWith("%")) return new MemoryFraction(Double.parseDouble(t.substring(0, t.length() - 1)) / 100);
                if (t.contains(".")) return new MemoryFraction(Double.parseDouble(t));
                if (t.endsWith("k")) return new Tokens(Math.multiplyExact(Long.parseLong(t.substring(0, t.length() - 1)), 1024));
                return new Tokens(Long.parseLong(t));
            } catch (NumberFormatException | ArithmeticException e) {
                throw new JnextException("KV budget must be a token count (65536, 64k) or a memory fraction (0.9, 90%), got \"" + s + "\"");
            }
        }
    }

    /** Checks every option; a bad value is a {@link JnextException} naming it. */
    public EngineOptions {
        if (device == null) throw new JnextException("device must be given (auto, cpu or cuda)");
        if (prefillGraphs == null) throw new JnextException("prefill graph mode must be given");
        if (kvBudget == null) throw new JnextException("KV budget must be given");
        if (maxSequences < 1) throw new JnextException("sequence slots must be at least 1, got " + maxSequences);
        if (maxStepTokens < maxSequences) {
            throw new JnextException("the step token budget (" + maxStepTokens + ") must hold one decode token of each of the "
                    + maxSequences + " sequence slots");
        }
        if (queueLimit < 0) throw new JnextException("the queue limit must be >= 0, got " + queueLimit);
        if (maxPrefillChunk < 1) throw new JnextException("the prefill chunk must be at least 1 token, got " + maxPrefillChunk);
    }

    /** The options without a prefill chunk of their own: {@link #DEFAULT_MAX_PREFILL_CHUNK}. */
    public EngineOptions(Device device, PrefillGraphs prefillGraphs, boolean decodeGraphs, int maxSequences, KvBudget kvBudget,
                         int maxStepTokens, int queueLimit, Path tokenizer) {
        this(device, prefillGraphs, decodeGraphs, maxSequences, kvBudget, maxStepTokens, queueLimit, tokenizer,
                DEFAULT_MAX_PREFILL_CHUNK);
    }

    /**
     * Auto device, eager prefill, decode graphs, 32 slots, 90% of free memory for KV, 8,192 tokens a step, at most 2,048
     * prompt tokens of one request a step.
     */
    public static EngineOptions defaults() {
        return new EngineOptions(Device.AUTO, PrefillGraphs.EAGER, true, DEFAULT_MAX_SEQUENCES,
                new KvBudget.MemoryFraction(0.9), DEFAULT_MAX_STEP_TOKENS, DEFAULT_QUEUE_LIMIT, null, DEFAULT_MAX_PREFILL_CHUNK);
    }

    /** These options with {@code device} set to {@code d}. */
    public EngineOptions withDevice(Device d) {
        return new EngineOptions(d, prefillGraphs, decodeGraphs, maxSequences, kvBudget, maxStepTokens, queueLimit, tokenizer, maxPrefillChunk);
    }

    /** These options with {@code prefillGraphs} set to {@code g}. */
    public EngineOptions withPrefillGraphs(PrefillGraphs g) {
        return new EngineOptions(device, g, decodeGraphs, maxSequences, kvBudget, maxStepTokens, queueLimit, tokenizer, maxPrefillChunk);
    }

    /** These options with {@code decodeGraphs} set to {@code on}. */
    public EngineOptions withDecodeGraphs(boolean on) {
        return new EngineOptions(device, prefillGraphs, on, maxSequences, kvBudget, maxStepTokens, queueLimit, tokenizer, maxPrefillChunk);
    }

    /** These options with {@code maxSequences} set to {@code n}. */
    public EngineOptions withMaxSequences(int n) {
        return new EngineOptions(device, prefillGraphs, decodeGraphs, n, kvBudget, Math.max(maxStepTokens, n), queueLimit, tokenizer, maxPrefillChunk);
    }

    /** These options with {@code kvBudget} set to {@code b}. */
    public EngineOptions withKvBudget(KvBudget b) {
        return new EngineOptions(device, prefillGraphs, decodeGraphs, maxSequences, b, maxStepTokens, queueLimit, tokenizer, maxPrefillChunk);
    }

    /** These options with {@code maxStepTokens} set to {@code n}. */
    public EngineOptions withMaxStepTokens(int n) {
        return new EngineOptions(device, prefillGraphs, decodeGraphs, maxSequences, kvBudget, n, queueLimit, tokenizer, maxPrefillChunk);
    }

    /** These options with {@code queueLimit} set to {@code n}. */
    public EngineOptions withQueueLimit(int n) {
        return new EngineOptions(device, prefillGraphs, decodeGraphs, maxSequences, kvBudget, maxStepTokens, n, tokenizer, maxPrefillChunk);
    }

    /** These options with {@code maxPrefillChunk} set to {@code n}. */
    public EngineOptions withMaxPrefillChunk(int n) {
        return new EngineOptions(device, prefillGraphs, decodeGraphs, maxSequences, kvBudget, maxStepTokens, queueLimit, tokenizer, n);
    }

    /** These options with the tokenizer read from {@code dir} instead of the checkpoint folder (synthetic checkpoints have none). */
    public EngineOptions withTokenizer(Path dir) {
        return new EngineOptions(device, prefillGraphs, decodeGraphs, maxSequences, kvBudget, maxStepTokens, queueLimit, dir, maxPrefillChunk);
    }

    /** One line for logs and benchmark records. */
    public String describe() {
        return "device=" + device + " prefill-graphs=" + prefillGraphs + " decode-graphs=" + (decodeGraphs ? "on" : "off")
                + " slots=" + maxSequences + " kv-budget=" + kvBudget + " step-tokens=" + maxStepTokens + " prefill-chunk=" + maxPrefillChunk + " queue-limit=" + queueLimit;
    }
}
