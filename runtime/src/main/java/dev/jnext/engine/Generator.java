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
 */
public final class Generator {

    public enum FinishReason { EOS, STOP_STRING, MAX_TOKENS, CONTEXT_FULL }

    /**
     * @param maxNewTokens most tokens to generate
     * @param eosTokenIds  ids that end generation (not shown)
     * @param stopStrings  texts that end generation (not shown)
     */
    public record Options(SamplingParams sampling, int maxNewTokens, Set<Integer> eosTokenIds, List<String> stopStrings) {
        public Options {
            if (maxNewTokens < 1) throw new JnextException("--max-new-tokens must be at least 1, got " + maxNewTokens);
            eosTokenIds = Set.copyOf(eosTokenIds);
            stopStrings = List.copyOf(stopStrings);
        }
    }

    /** Wall-clock times in nanoseconds; the first token's time counts from the start of prefill. */
    public record Timings(int promptTokens, long prefillNanos, long firstTokenNanos, int decodeSteps, long decodeNanos) {
        public double prefillTokensPerSecond() {
            return promptTokens / (prefillNanos / 1e9);
        }

        public double decodeTokensPerSecond() {
            return decodeSteps == 0 ? Double.NaN : decodeSteps / (decodeNanos / 1e9);
        }
    }

    public record Result(String text, int[] tokenIds, FinishReason finishReason, Timings timings) {}

    private final QwenTokenizer tokenizer;

    public Generator(QwenTokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

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
