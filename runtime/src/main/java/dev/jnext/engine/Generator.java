package dev.jnext.engine;

import dev.jnext.JnextException;
import dev.jnext.tokenizer.QwenTokenizer;
import dev.jnext.tokenizer.StreamDecoder;

import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Generates text for one prompt: prefill, then sample and decode one token at a time, streaming the
 * text to a callback as soon as it is complete UTF-8 and clear of any stop string, until an EOS id, a
 * stop string, the token budget or the context length ends it.
 *
 * <pre>{@code
 * QwenTokenizer tokenizer = QwenTokenizer.load(dir);
 * String prompt = ChatTemplate.load(dir).render(List.of(ChatMessage.user("Hi")), true);
 * var options = new Generator.Options(SamplingParams.greedy(), 64, EosTokens.of(dir, dir, tokenizer), List.of());
 * try (Qwen3NextModel model = Qwen3NextModel.load(dir); CpuSequence sequence = new CpuSequence(model)) {
 *     Generator.Result r = new Generator(tokenizer).generate(sequence, tokenizer.encode(prompt), options, System.out::print);
 * }
 * }</pre>
 *
 * <p>One generator serves any number of calls, one at a time per {@link SequenceModel}; a sequence model is used for
 * one prompt (make a new one, or a new session, for the next).
 */
public final class Generator {

    /** Why generation ended. */
    public enum FinishReason {
        /** The model produced one of {@link Options#eosTokenIds()} (not part of the text). */
        EOS,
        /** One of {@link Options#stopStrings()} appeared (the text ends before it). */
        STOP_STRING,
        /** {@link Options#maxNewTokens()} tokens were generated. */
        MAX_TOKENS,
        /** The sequence reached the model's context length. */
        CONTEXT_FULL
    }

    /**
     * What to generate.
     *
     * @param sampling     how each token is chosen (e.g. {@link SamplingParams#greedy()})
     * @param maxNewTokens most tokens to generate, at least 1
     * @param eosTokenIds  ids that end generation (not shown); {@link EosTokens#of} gives a checkpoint's
     * @param stopStrings  texts that end generation (not shown); empty strings are ignored
     */
    public record Options(SamplingParams sampling, int maxNewTokens, Set<Integer> eosTokenIds, List<String> stopStrings) {
        /** Checks {@code maxNewTokens} and copies the collections. */
        public Options {
            if (maxNewTokens < 1) throw new JnextException("--max-new-tokens must be at least 1, got " + maxNewTokens);
            eosTokenIds = Set.copyOf(eosTokenIds);
            stopStrings = List.copyOf(stopStrings);
        }
    }

    /**
     * Wall-clock times in nanoseconds; the first token's time counts from the start of prefill.
     *
     * @param promptTokens    tokens of the prompt
     * @param prefillNanos    the prefill call
     * @param firstTokenNanos from the start of prefill to the first sampled token
     * @param decodeSteps     decode calls (one per generated token after the first)
     * @param decodeNanos     all decode calls together
     */
    public record Timings(int promptTokens, long prefillNanos, long firstTokenNanos, int decodeSteps, long decodeNanos) {
        /** Prompt tokens per second of prefill. */
        public double prefillTokensPerSecond() {
            return promptTokens / (prefillNanos / 1e9);
        }

        /** Decode steps per second; NaN when there was none. */
        public double decodeTokensPerSecond() {
            return decodeSteps == 0 ? Double.NaN : decodeSteps / (decodeNanos / 1e9);
        }
    }

    /**
     * The outcome of one {@link #generate} call.
     *
     * @param text         everything streamed to the callback, concatenated
     * @param tokenIds     every sampled id, the final EOS id included
     * @param finishReason why it ended
     * @param timings      how long prefill and decode took
     */
    public record Result(String text, int[] tokenIds, FinishReason finishReason, Timings timings) {}

    private final QwenTokenizer tokenizer;

    /** A generator that decodes with {@code tokenizer} (the one that encoded the prompt). */
    public Generator(QwenTokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /**
     * Runs one prompt to its end and streams the text.
     *
     * @param model     a fresh sequence (nothing prefilled yet): {@link CpuSequence} or {@code dev.jnext.exec.CudaSession}
     * @param promptIds the prompt's token ids (e.g. {@code tokenizer.encode(chatTemplate.render(messages, true))})
     * @param options   sampling, budget, EOS ids and stop strings
     * @param onText    receives the text piece by piece, each piece whole UTF-8 characters and clear of stop strings;
     *                  it runs on the calling thread, and an exception it throws ends generation
     * @return the whole text, the sampled ids, why it ended and the timings
     * @throws JnextException for an empty prompt, a prompt as long as the context, a token id outside the model's
     *                        vocabulary, or a NaN logit
     */
    public Result generate(SequenceModel model, int[] promptIds, Options options, Consumer<String> onText) {
        if (promptIds.length == 0) throw new JnextException("the prompt is empty: at least one token is needed");
        int context = model.contextLength();
        if (promptIds.length >= context) {
            throw new JnextException("the prompt has " + promptIds.length + " tokens but the model's context holds "
                    + context + " (max_position_embeddings); shorten the prompt");
        }
        for (int id : promptIds) {
            if (id >= model.vocabSize()) {
                throw new JnextException("the prompt has token id " + id + " but the model's vocabulary has only "
                        + model.vocabSize() + " ids (vocab_size in config.json): the tokenizer does not belong to "
                        + "this checkpoint");
            }
        }
        int vocabLimit = Math.min(model.vocabSize(), tokenizer.vocabSize());
        Sampler sampler = new Sampler(options.sampling(), vocabLimit);
        sampler.observePrompt(promptIds);
        StreamDecoder decoder = tokenizer.streamDecoder(true);
        StopStrings stops = new StopStrings(options.stopStrings());
        StringBuilder text = new StringBuilder();
        Consumer<String> emit = s -> {
            if (!s.isEmpty()) {
                text.append(s);
                onText.accept(s);
            }
        };

        long start = System.nanoTime();
        float[] logits = model.prefill(promptIds);
        long prefillNanos = System.nanoTime() - start;
        long firstTokenNanos = 0, decodeNanos = 0;
        int decodeSteps = 0;
        int[] generated = new int[Math.min(options.maxNewTokens(), context - promptIds.length)];
        int count = 0;
        FinishReason reason;
        while (true) {
            int id = sampler.next(logits);
            if (count == 0) firstTokenNanos = System.nanoTime() - start;
            generated[count++] = id;
            if (options.eosTokenIds().contains(id)) {
                reason = FinishReason.EOS;
                break;
            }
            emit.accept(stops.accept(decoder.next(id)));
            if (stops.stopped()) {
                reason = FinishReason.STOP_STRING;
                break;
            }
            if (count == options.maxNewTokens()) {
                reason = FinishReason.MAX_TOKENS;
                break;
            }
            if (count == generated.length) {
                reason = FinishReason.CONTEXT_FULL;
                break;
            }
            long t = System.nanoTime();
            logits = model.decode(id);
            decodeNanos += System.nanoTime() - t;
            decodeSteps++;
        }
        if (!stops.stopped()) {
            emit.accept(stops.accept(decoder.finish()));
            emit.accept(stops.finish());
        }
        return new Result(text.toString(), Arrays.copyOf(generated, count), reason,
                new Timings(promptIds.length, prefillNanos, firstTokenNanos, decodeSteps, decodeNanos));
    }
}
