package dev.jnext.bench;

import dev.jnext.JnextException;

import java.util.Locale;

/**
 * What a load or soak mixes in besides plain streaming requests, as fractions of the requests (each request draws its
 * kind from the run's seed): <b>tools</b> — a chat request that offers two functions with {@code tool_choice: auto}, so
 * the server's tool-call parser runs on whatever the model writes; <b>cancel</b> — a stream the client closes after its
 * first chunk (the server must cancel the generation and free the slot); <b>disconnect</b> — a non-streaming request the
 * client abandons after {@link #ABANDON_AFTER_MS} ms (the server must notice the closed connection and cancel it too).
 *
 * @param tools       fraction of tool requests
 * @param cancels     fraction of streams cancelled after the first chunk
 * @param disconnects fraction of non-streaming requests abandoned
 */
public record ServeMix(double tools, double cancels, double disconnects) {
    /** Plain streaming requests only. */
    public static final ServeMix NONE = new ServeMix(0, 0, 0);
    /** How long an abandoning client waits for a non-streaming answer. */
    public static final long ABANDON_AFTER_MS = 150;

    /** What one request is. */
    public enum Kind { PLAIN, TOOLS, CANCEL, DISCONNECT }

    /** @throws JnextException when a fraction is outside [0, 1] or they add up to more than 1 */
    public ServeMix {
        for (double f : new double[]{tools, cancels, disconnects}) {
            if (!(f >= 0 && f <= 1)) throw new JnextException("--mix fractions must be in [0, 1], got " + this);
        }
        if (tools + cancels + disconnects > 1 + 1e-9) throw new JnextException("--mix fractions add up to more than 1: " + this);
    }

    /** {@code tools=0.2,cancel=0.1,disconnect=0.1} (any subset; {@code none}: {@link #NONE}). */
    public static ServeMix parse(String s) {
        String t = s.trim().toLowerCase(Locale.ROOT);
        if (t.isEmpty() || t.equals("none")) return NONE;
        double tools = 0, cancels = 0, disconnects = 0;
        for (String part : t.split(",")) {
            String[] kv = part.split("=", 2);
            double v;
            try {
                v = kv.length == 2 ? Double.parseDouble(kv[1].trim()) : Double.NaN;
            } catch (NumberFormatException e) {
                v = Double.NaN;
            }
            if (Double.isNaN(v)) throw new JnextException("--mix takes tools=F,cancel=F,disconnect=F, got \"" + s + "\"");
            switch (kv[0].trim()) {
                case "tools" -> tools = v;
                case "cancel" -> cancels = v;
                case "disconnect" -> disconnects = v;
                default -> throw new JnextException("--mix knows tools, cancel and disconnect, got \"" + kv[0].trim() + "\"");
            }
        }
        return new ServeMix(tools, cancels, disconnects);
    }

    /** The kind of a request whose uniform draw is {@code u} in [0, 1). */
    public Kind kind(double u) {
        if (u < tools) return Kind.TOOLS;
        if (u < tools + cancels) return Kind.CANCEL;
        if (u < tools + cancels + disconnects) return Kind.DISCONNECT;
        return Kind.PLAIN;
    }

    @Override
    public String toString() {
        return this.equals(NONE) ? "none" : String.format(Locale.ROOT, "tools=%s,cancel=%s,disconnect=%s", tools, cancels, disconnects);
    }
}
