package dev.jnext.backend;

import java.util.List;

/**
 * What a model backend — the CPU reference or the CUDA runner — offers the engine: sequence slots that hold a
 * sequence's state (KV, conv and recurrent state, the tokens it has seen for the sampling penalties) and one batched
 * forward step over several of them, sampling included. The engine (scheduler, server, CLI) speaks only this
 * interface and never knows which backend runs.
 *
 * <p>A step mixes prefill chunks and decode tokens: each {@link StepInput} appends {@code tokens} to its slot's
 * sequence; when {@link StepInput#sample()} is set the backend also picks the next token from the logits of the
 * input's last token (with the slot's {@link SamplingParams}, penalties over everything the slot has seen) and returns
 * it. The returned token is not yet part of the sequence: the caller appends it in a later step. Not thread-safe: one
 * engine thread drives a backend.
 *
 * <p>Constrained decoding (structured output): an input that samples may carry a {@link TokenMask} of the ids it may
 * sample; a backend that {@link #supportsTokenMasks() applies masks} samples only among them (the logits of the others
 * are −∞ before the penalties, the temperature and the cuts) and reports log-probabilities from the raw logits as
 * always. The caller computes the masks on the host from the tokens sampled so far.
 */
public interface ModelBackend extends AutoCloseable {

    /**
     * New tokens of one sequence in a step.
     *
     * @param slot        the sequence's slot ({@link ModelBackend#openSequence})
     * @param tokens      the tokens to append, at least one
     * @param sample      whether to sample the next token from the last one's logits
     * @param topLogprobs how many of the most likely tokens to report with their log-probabilities (0: none)
     * @param prompt      the tokens are a chunk of the sequence's prompt (prefill), not generated tokens fed back: the
     *                    CPU backend then runs even a one-token chunk through the chunked delta rule, as an uncut
     *                    prompt would, and may snapshot the sequence's state for its prefix cache; the CUDA backend
     *                    ignores it
     * @param allowed     the ids the sampled token may be (structured output), or null for any; only with {@code sample}
     */
    record StepInput(int slot, int[] tokens, boolean sample, int topLogprobs, boolean prompt, TokenMask allowed) {
        /** Checks that there is a token, that {@code topLogprobs} is not negative and that only a sampling input has a mask. */
        public StepInput {
            if (tokens.length == 0) throw new IllegalArgumentException("a step input needs at least one token (slot " + slot + ")");
            if (topLogprobs < 0) throw new IllegalArgumentException("topLogprobs must be >= 0, got " + topLogprobs);
            if (allowed != null && !sample) throw new IllegalArgumentException("a token mask needs sample (slot " + slot + ")");
        }

        /** An input without a token mask. */
        public StepInput(int slot, int[] tokens, boolean sample, int topLogprobs, boolean prompt) {
            this(slot, tokens, sample, topLogprobs, prompt, null);
        }

        /** Tokens that are not marked as a prompt chunk ({@code prompt} false), without a token mask. */
        public StepInput(int slot, int[] tokens, boolean sample, int topLogprobs) {
            this(slot, tokens, sample, topLogprobs, false, null);
        }
    }

    /**
     * What a step produced for one input: the sampled {@code token} (−1 when the input did not ask to sample), its
     * log-probability under the model's distribution (log-softmax of the raw logits, before penalties and
     * temperature), and the {@code topIds}/{@code topLogprobs} of the most likely tokens when asked (else empty).
     *
     * @param token       the sampled id, or −1
     * @param logprob     its log-probability (NaN when nothing was sampled)
     * @param topIds      the most likely ids, most likely first
     * @param topLogprobs their log-probabilities
     */
    record StepOutput(int token, float logprob, int[] topIds, float[] topLogprobs) {
        /** The output of an input that did not sample. */
        public static final StepOutput NONE = new StepOutput(-1, Float.NaN, new int[0], new float[0]);
    }

    /** Where it runs, for logs and /v1/models: {@code "cpu"} or e.g. {@code "cuda:0 NVIDIA H100 80GB HBM3"}. */
    String device();

    /** Where it runs as a device choice: {@link DeviceChoice#CPU} or {@code cuda:N}. */
    default DeviceChoice placement() {
        return DeviceChoice.CPU;
    }

    /** Logits per position (config.json's vocab_size). */
    int vocabSize();

    /** Longest sequence a slot can hold (prompt + generated). */
    int contextLength();

    /** Concurrent sequence slots. */
    int maxSequences();

    /** Most new tokens one {@link #step} may carry, all inputs together. */
    int maxStepTokens();

    /** Slots not open now. */
    int freeSequences();

    /**
     * Prompt chunks that end before their prompt does are cut at multiples of this many tokens (counted from the
     * prompt's start), so that a sequence's results do not depend on how the scheduler split its prompt — e.g. the
     * chunk size of a chunked delta rule, whose rounding depends on where chunks start. 1: any cut gives the same bits.
     */
    default int prefillAlignment() {
        return 1;
    }

    /**
     * Whether {@link #step} applies {@link StepInput#allowed() token masks}; the engine refuses constrained requests
     * (structured output) on a backend that does not. Both do: the CPU backend in its sampler, the CUDA backend by
     * uploading the masks and setting the logits they do not allow to −∞ on the device before its sampler.
     */
    default boolean supportsTokenMasks() {
        return false;
    }

    /**
     * KV tokens the open sequences hold reserved now (what {@link #reserve} granted, all slots together; the prefix
     * cache's own holdings are in {@link #prefixCacheStats()}), −1 when the backend does not count them. Safe to call from
     * any thread. A soak run checks that it is 0 once every request has ended.
     */
    default long kvTokensReserved() {
        return -1;
    }

    /** Device memory this backend holds now, in bytes (a soak run checks that it does not grow); −1 when it holds none. */
    default long deviceMemoryUsed() {
        return -1;
    }

    /**
     * Opens a sequence slot with its sampling parameters (seed included). {@code vocabLimit}: only ids below it can be
     * sampled (the tokenizer's vocabulary when the embedding table is padded beyond it). Throws
     * {@link dev.jnext.JnextException} when no slot is free.
     */
    int openSequence(SamplingParams sampling, int vocabLimit);

    /**
     * Makes sure the slot's sequence can grow to {@code totalTokens} tokens (KV pages on CUDA); all or nothing.
     * Returns false, reserving nothing, when the pool cannot hold them now.
     */
    boolean reserve(int slot, int totalTokens);

    /**
     * Prefix caching ({@link PrefixCacheOptions}): called once (by {@link #admit}) for a freshly opened (and {@link
     * #reserve reserved}) slot, before its first step, with the sequence's whole prompt. The backend restores into the slot the longest prefix of
     * the prompt that its cache holds up to a state snapshot, and returns that prefix's length {@code n}: the slot is
     * then at position {@code n} (its sampler has seen those tokens) and the caller feeds {@code prompt[n..]} as
     * {@link StepInput#prompt() prompt} chunks. {@code n} is 0 (nothing restored) or a multiple of {@link
     * #prefillAlignment()} below {@code prompt.length}, so at least the last prompt token is computed (its logits give
     * the first sampled token) and the remaining chunks start where a cold prefill's would. The backend also remembers
     * the prompt so that the slot's prefill leaves snapshots in the cache for later requests; the slot holds the node it
     * resumed from until {@link #closeSequence}, and the cache never evicts a node a slot holds.
     *
     * <p>The default, for backends without a prefix cache, restores nothing and returns 0.
     *
     * @return how many prompt tokens came from the cache
     */
    default int restorePrefix(int slot, int[] prompt) {
        return 0;
    }

    /**
     * Admits a request into a freshly opened slot: makes sure its sequence can grow to {@code totalTokens} and restores
     * the longest cached prefix of {@code prompt} ({@link #restorePrefix}), all or nothing. Returns the restored length
     * (0: none), or −1 when the KV pool cannot hold the sequence now (nothing reserved, nothing restored, nothing
     * counted). The default reserves, then restores; a backend whose cached prefixes share the pool's pages (the CUDA
     * backend) restores first, so the request needs room only for what it does not share and the reservation cannot
     * evict the prefix it resumes from.
     */
    default int admit(int slot, int[] prompt, int totalTokens) {
        if (!reserve(slot, totalTokens)) return -1;
        return restorePrefix(slot, prompt);
    }

    /**
     * Prefix caching on a backend that can snapshot a sequence's state only between steps (the CUDA backend): the
     * position at which the slot's next prompt chunk, starting at {@code position}, must end at the latest, so that the
     * state there can be cached — a multiple of {@link #prefillAlignment()} after {@code position} and before the prompt's
     * end — or {@link Integer#MAX_VALUE} when the chunk may run to wherever the scheduler cuts it. The scheduler asks before
     * each prompt chunk. The default (no prefix cache, or one that snapshots inside a step as the CPU backend does): no stop.
     */
    default int prefillStop(int slot, int position) {
        return Integer.MAX_VALUE;
    }

    /**
     * What the prefix cache has done and holds ({@link PrefixCacheStats#DISABLED} for a backend without one). Safe to
     * call from any thread (unlike the rest of this interface): it reads a published snapshot of the counters.
     */
    default PrefixCacheStats prefixCacheStats() {
        return PrefixCacheStats.DISABLED;
    }

    /** Frees the slot and everything its sequence holds; the slot id may be handed out again. */
    void closeSequence(int slot);

    /** Runs one forward step over the inputs (each slot at most once); returns one output per input, in order. */
    List<StepOutput> step(List<StepInput> inputs);

    /** Frees every device and host resource. */
    @Override
    void close();
}
