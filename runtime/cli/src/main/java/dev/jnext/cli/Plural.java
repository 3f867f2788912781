package dev.jnext.cli;

/** "1 token", "2 tokens": counts in the CLI's messages. */
final class Plural {
    private Plural() {}

    /** {@code n} and the noun, with an "s" unless {@code n} is 1 (every noun the CLI counts takes a plain "s"). */
    static String of(long n, String noun) {
        return n + " " + noun + (n == 1 ? "" : "s");
    }
}
