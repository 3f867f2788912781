package dev.jnext.fuzz;

import org.junit.jupiter.api.RepetitionInfo;
import org.junit.jupiter.api.function.ThrowingConsumer;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;

/**
 * The generated inputs of the fuzz properties, one per repetition of a {@code @RepeatedTest}: repetition i draws its
 * input from {@code new SplittableRandom(seed)} with seed = base seed + i. The base seed is fixed, so every run tries
 * the same inputs and running the test again reproduces a failure; {@code -Djnext.fuzz.seed=N} draws other inputs.
 * A failure names the seed and the input.
 */
final class Tries {
    static final long BASE_SEED = 0x6a6e657874L;

    private Tries() {}

    /** Draws repetition's input and checks the property on it. */
    static <T> void check(RepetitionInfo repetition, Function<SplittableRandom, T> draw, ThrowingConsumer<T> property)
            throws Throwable {
        long seed = Long.decode(System.getProperty("jnext.fuzz.seed", Long.toString(BASE_SEED)))
                + repetition.getCurrentRepetition();
        T input = draw.apply(new SplittableRandom(seed));
        try {
            property.accept(input);
        } catch (Throwable e) {
            throw new AssertionError("repetition " + repetition.getCurrentRepetition() + " (seed " + seed + "), input " + input
                    + ": " + e.getMessage(), e);
        }
    }

    /** An int in [min, max]; one draw in eight is a bound (the edges a property tester favours). */
    static int between(SplittableRandom r, int min, int max) {
        if (r.nextInt(8) == 0) return r.nextBoolean() ? min : max;
        return r.nextInt(min, max + 1);
    }

    /** One of {@code options}; one draw in eight is the first or the last. */
    static <T> T pick(SplittableRandom r, List<T> options) {
        return options.get(between(r, 0, options.size() - 1));
    }

    /** Between min and max draws. */
    static <T> List<T> list(SplittableRandom r, int min, int max, Function<SplittableRandom, T> draw) {
        int n = between(r, min, max);
        List<T> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) out.add(draw.apply(r));
        return out;
    }
}
