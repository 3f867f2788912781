package dev.jnext.backend;

import dev.jnext.JnextException;

import java.util.Locale;
import java.util.Objects;

/**
 * How much KV cache a backend may hold: a number of tokens (all sequences together), or a fraction of the GPU memory
 * that is free once the weights, activations and state pools are placed. The CPU backend honours a token budget; a
 * fraction sets no limit there. The one spelling of the concept (CLI {@code --kv-budget 64k|0.9|90%}).
 */
public sealed interface KvBudget {

    /**
     * At most this many tokens of KV, all sequences together.
     *
     * @param tokens at least 1
     */
    record Tokens(long tokens) implements KvBudget {
        /** @throws JnextException when {@code tokens} is below 1 */
        public Tokens {
            if (tokens < 1) throw new JnextException("the KV budget must be at least 1 token, got " + tokens);
        }

        @Override
        public String toString() {
            return Long.toString(tokens);
        }
    }

    /**
     * This fraction of the GPU memory free after weights, activations and state.
     *
     * @param fraction in (0, 1]
     */
    record MemoryFraction(double fraction) implements KvBudget {
        /** @throws JnextException when {@code fraction} is outside (0, 1] */
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

    /**
     * Parses a token count ({@code 65536}, {@code 64k}) or a memory fraction ({@code 0.9}, {@code 90%}).
     *
     * @throws JnextException naming what was given when it is neither
     */
    static KvBudget parse(String s) {
        Objects.requireNonNull(s, "KV budget");
        String t = s.trim().toLowerCase(Locale.ROOT);
        try {
            if (t.endsWith("%")) return new MemoryFraction(Double.parseDouble(t.substring(0, t.length() - 1)) / 100);
            if (t.contains(".")) return new MemoryFraction(Double.parseDouble(t));
            if (t.endsWith("k")) return new Tokens(Math.multiplyExact(Long.parseLong(t.substring(0, t.length() - 1)), 1024));
            return new Tokens(Long.parseLong(t));
        } catch (NumberFormatException | ArithmeticException e) {
            throw new JnextException("the KV budget must be a token count (65536, 64k) or a memory fraction (0.9, 90%), got \"" + s + "\"");
        }
    }
}
