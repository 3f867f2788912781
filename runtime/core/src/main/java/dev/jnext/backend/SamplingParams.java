package dev.jnext.backend;

import dev.jnext.JnextException;

/**
 * How the next token is chosen from the logits. {@code temperature == 0} is greedy (argmax); otherwise the
 * logits are penalized, divided by the temperature, cut by top-k, top-p and min-p, and one token is drawn
 * with a generator seeded by {@code seed}, so equal inputs give equal outputs.
 *
 * @param temperature       0 for greedy, else > 0
 * @param topK              keep the k most likely tokens; 0 keeps all
 * @param topP              keep the most likely tokens whose probabilities add up to at least topP; 1 keeps all
 * @param minP              drop tokens less likely than minP times the most likely one; 0 keeps all
 * @param repetitionPenalty Hugging Face's: logits of tokens seen in prompt or output are divided by it when
 *                          positive and multiplied by it when negative; 1 is off
 * @param presencePenalty   OpenAI's: subtracted once from the logit of every token already generated; 0 is off
 * @param seed              seeds the draw
 */
public record SamplingParams(float temperature, int topK, float topP, float minP, float repetitionPenalty,
                             float presencePenalty, long seed) {

    /** Checks every parameter; a value out of range is a {@link JnextException} naming it. */
    public SamplingParams {
        check(Float.isFinite(temperature) && temperature >= 0, "temperature must be >= 0 (0 = greedy), got " + temperature);
        check(topK >= 0, "top-k must be >= 0 (0 = off), got " + topK);
        check(topP > 0 && topP <= 1, "top-p must be in (0, 1], got " + topP);
        check(minP >= 0 && minP < 1, "min-p must be in [0, 1), got " + minP);
        check(Float.isFinite(repetitionPenalty) && repetitionPenalty > 0, "repetition penalty must be > 0 (1 = off), got " + repetitionPenalty);
        check(Float.isFinite(presencePenalty), "presence penalty must be a finite number, got " + presencePenalty);
    }

    /**
     * Greedy decoding: always the most likely token (the lowest id on ties), no penalties.
     *
     * @return temperature 0, top-k 0, top-p 1, min-p 0, repetition penalty 1, presence penalty 0, seed 0
     */
    public static SamplingParams greedy() {
        return new SamplingParams(0, 0, 1, 0, 1, 0, 0);
    }

    /**
     * A builder starting from {@link #greedy()}: {@code SamplingParams.builder().temperature(0.7f).topP(0.8f).seed(42).build()}
     * — named parameters, so top-p and min-p cannot be swapped.
     */
    public static Builder builder() {
        return new Builder();
    }

    /** A builder starting from these parameters. */
    public Builder toBuilder() {
        return new Builder().temperature(temperature).topK(topK).topP(topP).minP(minP)
                .repetitionPenalty(repetitionPenalty).presencePenalty(presencePenalty).seed(seed);
    }

    /** These parameters with {@code temperature} set. */
    public SamplingParams withTemperature(float v) {
        return toBuilder().temperature(v).build();
    }

    /** These parameters with {@code topK} set. */
    public SamplingParams withTopK(int v) {
        return toBuilder().topK(v).build();
    }

    /** These parameters with {@code topP} set. */
    public SamplingParams withTopP(float v) {
        return toBuilder().topP(v).build();
    }

    /** These parameters with {@code minP} set. */
    public SamplingParams withMinP(float v) {
        return toBuilder().minP(v).build();
    }

    /** These parameters with {@code repetitionPenalty} set. */
    public SamplingParams withRepetitionPenalty(float v) {
        return toBuilder().repetitionPenalty(v).build();
    }

    /** These parameters with {@code presencePenalty} set. */
    public SamplingParams withPresencePenalty(float v) {
        return toBuilder().presencePenalty(v).build();
    }

    /** These parameters with {@code seed} set. */
    public SamplingParams withSeed(long v) {
        return toBuilder().seed(v).build();
    }

    /** Named parameters for a {@link SamplingParams}; {@link #build()} checks them. Not thread-safe. */
    public static final class Builder {
        private float temperature;
        private int topK;
        private float topP = 1;
        private float minP;
        private float repetitionPenalty = 1;
        private float presencePenalty;
        private long seed;

        private Builder() {}

        /** 0 for greedy, else > 0. */
        public Builder temperature(float v) {
            temperature = v;
            return this;
        }

        /** Keep the k most likely tokens; 0 keeps all. */
        public Builder topK(int v) {
            topK = v;
            return this;
        }

        /** Keep the most likely tokens whose probabilities add up to at least this; 1 keeps all. */
        public Builder topP(float v) {
            topP = v;
            return this;
        }

        /** Drop tokens less likely than this times the most likely one; 0 keeps all. */
        public Builder minP(float v) {
            minP = v;
            return this;
        }

        /** Hugging Face's repetition penalty; 1 is off. */
        public Builder repetitionPenalty(float v) {
            repetitionPenalty = v;
            return this;
        }

        /** OpenAI's presence penalty; 0 is off. */
        public Builder presencePenalty(float v) {
            presencePenalty = v;
            return this;
        }

        /** Seeds the draw. */
        public Builder seed(long v) {
            seed = v;
            return this;
        }

        /** The parameters, checked as by the constructor. */
        public SamplingParams build() {
            return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, presencePenalty, seed);
        }
    }

    /** Whether the next token is the argmax ({@code temperature == 0}). */
    public boolean isGreedy() {
        return temperature == 0;
    }

    private static void check(boolean ok, String message) {
        if (!ok) throw new JnextException(message);
    }
}
