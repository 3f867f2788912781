package dev.jnext.structured;

import dev.jnext.backend.TokenMask;

import java.util.Arrays;

/**
 * One sequence's JSON constraint: the automaton's state over the tokens generated so far, the mask of the next token
 * ({@link #mask()}), and the step that takes a sampled token ({@link #advance}). The end-of-sequence ids (and the
 * request's stop ids) are allowed only where the document is complete, and then only they are. Optionally the
 * constraint starts only after a given token (e.g. {@code </think>}: the reasoning before it is free text). Used by
 * one thread at a time (the engine's).
 */
public final class JsonConstraint {
    private final TokenMasks masks;
    private final JsonGrammar grammar;
    private final int[] endIds;
    private final int startAfter;
    private final long[] state = JsonAutomaton.newStack();
    private int size;
    private boolean started;
    private boolean failed;

    /**
     * @param endIds     ids that end the sequence (EOS, stop ids): allowed exactly when the document is complete
     * @param startAfter an id after which the constraint starts (everything before it, it included, is free); −1: from
     *                   the first token
     */
    public JsonConstraint(TokenMasks masks, JsonGrammar grammar, int[] endIds, int startAfter) {
        this.masks = masks;
        this.grammar = grammar;
        this.endIds = Arrays.stream(endIds).filter(id -> id >= 0 && id < masks.vocabSize()).distinct().sorted().toArray();
        this.startAfter = startAfter;
        this.started = startAfter < 0;
        this.size = JsonAutomaton.start(grammar, state);
    }

    /** The ids the next token may be; null while the constraint has not started (any id). */
    public TokenMask mask() {
        if (!started) return null;
        if (failed) return TokenMask.of(masks.vocabSize(), endIds);
        TokenMask m = masks.mask(grammar, state, size);
        return JsonAutomaton.canEnd(grammar, state, size) ? m.with(endIds) : m;
    }

    /**
     * Takes the sampled token.
     *
     * @return false when the mask did not allow it (the constraint is then failed: only the end ids remain)
     */
    public boolean advance(int id) {
        if (!started) {
            if (id == startAfter) started = true;
            return true;
        }
        if (failed) return false;
        if (Arrays.binarySearch(endIds, id) >= 0) {
            if (JsonAutomaton.canEnd(grammar, state, size)) return true;
            failed = true;
            return false;
        }
        byte[] b = masks.bytes(id);
        if (b == null) {
            failed = true;
            return false;
        }
        long[] next = Arrays.copyOf(state, state.length);
        int s = size;
        for (byte x : b) {
            s = JsonAutomaton.feed(grammar, next, s, x & 0xFF);
            if (s < 0) {
                failed = true;
                return false;
            }
        }
        System.arraycopy(next, 0, state, 0, 2 * s);
        size = s;
        return true;
    }

    /** Whether the text so far is a whole document of the grammar. */
    public boolean complete() {
        return started && !failed && JsonAutomaton.canEnd(grammar, state, size);
    }

    /** Whether the constraint applies now (false before its start token). */
    public boolean started() {
        return started;
    }
}
