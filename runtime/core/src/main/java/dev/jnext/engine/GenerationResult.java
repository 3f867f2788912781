package dev.jnext.engine;

import java.util.List;

/**
 * A finished generation: the text (without stop strings or EOS), every generated token with its log-probabilities,
 * why it ended, when things happened, and how many prompt tokens came from the prefix cache ({@code
 * cachedPromptTokens}, 0 without one).
 */
public record GenerationResult(String text, List<GeneratedToken> tokens, FinishReason finishReason, int promptTokens,
                               Timings timings, int cachedPromptTokens) {

    /** A result none of whose prompt tokens came from the prefix cache. */
    public GenerationResult(String text, List<GeneratedToken> tokens, FinishReason finishReason, int promptTokens,
                            Timings timings) {
        this(text, tokens, finishReason, promptTokens, timings, 0);
    }

    /** The generated token ids, in order. */
    public int[] tokenIds() {
        return tokens.stream().mapToInt(GeneratedToken::id).toArray();
    }

    /**
     * Nanoseconds from submission: {@code admitted} (a slot was taken), {@code firstToken}, {@code finished}.
     * {@code firstToken} is 0 when no token was generated.
     */
    public record Timings(long admitted, long firstToken, long finished, int promptTokens, int generatedTokens) {

        /** Prompt tokens per second from admission to the first token (prefill, plus other requests' steps). */
        public double prefillTokensPerSecond() {
            return firstToken == 0 ? Double.NaN : promptTokens / ((firstToken - admitted) / 1e9);
        }

        /** Tokens per second after the first one. */
        public double decodeTokensPerSecond() {
            return generatedTokens < 2 ? Double.NaN : (generatedTokens - 1) / ((finished - firstToken) / 1e9);
        }
    }
}
