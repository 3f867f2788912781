package dev.jnext.tokenizer;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/** Finds added tokens in text: leftmost match first, and the longest one where several start there. */
final class AddedTokenMatcher {
    private final boolean[] firstChar = new boolean[0x10000];
    private final AddedToken[][] byFirstChar = new AddedToken[0x10000][];

    AddedTokenMatcher(List<AddedToken> tokens) {
        List<AddedToken> sorted = new ArrayList<>(tokens);
        sorted.removeIf(t -> t.content().isEmpty());
        sorted.sort(Comparator.comparingInt((AddedToken t) -> t.content().length()).reversed());
        for (AddedToken t : sorted) {
            char c = t.content().charAt(0);
            firstChar[c] = true;
            AddedToken[] old = byFirstChar[c];
            AddedToken[] grown = old == null ? new AddedToken[1] : java.util.Arrays.copyOf(old, old.length + 1);
            grown[grown.length - 1] = t;
            byFirstChar[c] = grown;
        }
    }

    /** The longest added token starting at {@code i}, or null. */
    AddedToken matchAt(String s, int i) {
        char c = s.charAt(i);
        if (!firstChar[c]) return null;
        for (AddedToken t : byFirstChar[c]) {
            if (s.startsWith(t.content(), i)) return t;
        }
        return null;
    }
}
