package dev.jnext.backend;

import java.util.Arrays;

/**
 * The token ids a step may sample for one sequence (constrained decoding, e.g. a JSON schema): a bit per id below
 * {@link #size()}, 64 ids per {@code long} word, id {@code i} at bit {@code i % 64} of word {@code i / 64} — the layout
 * a device-side mask would upload as is. Ids at or past {@link #size()} are not allowed. Immutable.
 *
 * <p>A backend applies it before sampling: the logits of ids it does not allow become −∞, so greedy decoding and every
 * sampling rule see only allowed ids ({@link #apply}). Log-probabilities are still reported from the raw logits.
 */
public final class TokenMask {
    private final long[] words;
    private final int size;
    private final int count;

    private TokenMask(long[] words, int size) {
        this.words = words;
        this.size = size;
        int c = 0;
        for (long w : words) c += Long.bitCount(w);
        this.count = c;
    }

    /**
     * A mask over ids {@code [0, size)} from its words (copied; bits at or past {@code size} are cleared).
     *
     * @throws IllegalArgumentException when {@code words} has not {@code ceil(size / 64)} words
     */
    public static TokenMask ofWords(long[] words, int size) {
        if (size < 0 || words.length != (size + 63) >>> 6) {
            throw new IllegalArgumentException("a mask of " + size + " ids has " + ((size + 63) >>> 6) + " words, got " + words.length);
        }
        long[] w = words.clone();
        if ((size & 63) != 0) w[w.length - 1] &= (1L << (size & 63)) - 1;
        return new TokenMask(w, size);
    }

    /** A mask over ids {@code [0, size)} allowing {@code ids} (ids outside the range are ignored). */
    public static TokenMask of(int size, int... ids) {
        long[] w = new long[(size + 63) >>> 6];
        for (int id : ids) if (id >= 0 && id < size) w[id >>> 6] |= 1L << id;
        return new TokenMask(w, size);
    }

    /** This mask with {@code ids} allowed too. */
    public TokenMask with(int... ids) {
        long[] w = words.clone();
        for (int id : ids) if (id >= 0 && id < size) w[id >>> 6] |= 1L << id;
        return new TokenMask(w, size);
    }

    /** Whether {@code id} may be sampled. */
    public boolean allows(int id) {
        return id >= 0 && id < size && (words[id >>> 6] & (1L << id)) != 0;
    }

    /** Ids the mask covers: {@code [0, size)}. */
    public int size() {
        return size;
    }

    /** How many ids it allows. */
    public int count() {
        return count;
    }

    /** The first allowed id at or after {@code from}, or −1. */
    public int nextAllowed(int from) {
        if (from < 0) from = 0;
        if (from >= size) return -1;
        int i = from >>> 6;
        long w = words[i] & (-1L << from);
        while (true) {
            if (w != 0) {
                int id = (i << 6) + Long.numberOfTrailingZeros(w);
                return id < size ? id : -1;
            }
            if (++i == words.length) return -1;
            w = words[i];
        }
    }

    /** A copy of the words (for a device upload). */
    public long[] words() {
        return words.clone();
    }

    /**
     * Sets the logits of the ids below {@code n} that the mask does not allow to −∞ (ids past {@link #size()} included).
     *
     * @return how many of the ids below {@code n} remain allowed
     */
    public int apply(float[] logits, int n) {
        int allowed = 0;
        for (int base = 0; base < n; base += 64) {
            int word = base >>> 6;
            long w = word < words.length ? words[word] : 0;
            int width = Math.min(64, n - base);
            long zeros = width == 64 ? ~w : ~w & ((1L << width) - 1);
            if (zeros == 0) {
                allowed += width;
            } else if (w == 0) {
                Arrays.fill(logits, base, base + width, Float.NEGATIVE_INFINITY);
            } else {
                allowed += width - Long.bitCount(zeros);
                for (; zeros != 0; zeros &= zeros - 1) logits[base + Long.numberOfTrailingZeros(zeros)] = Float.NEGATIVE_INFINITY;
            }
        }
        return allowed;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TokenMask m && m.size == size && Arrays.equals(m.words, words);
    }

    @Override
    public int hashCode() {
        return 31 * size + Arrays.hashCode(words);
    }

    @Override
    public String toString() {
        return "TokenMask[" + count + " of " + size + " ids]";
    }
}
