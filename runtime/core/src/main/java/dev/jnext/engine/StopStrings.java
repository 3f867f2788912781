package dev.jnext.engine;

import java.util.List;

/**
 * Watches streamed text for stop strings. Text that might be the beginning of a stop string is held back
 * until it is known not to be; once a stop string appears, everything from it on is dropped and
 * {@link #stopped()} turns true. Concatenating what {@link #accept} and {@link #finish} return gives the
 * output up to (not including) the first stop string.
 */
public final class StopStrings {
    private final List<String> stops;
    private final StringBuilder held = new StringBuilder();
    private boolean stopped;

    /** Watches for {@code stops} (empty strings are ignored). */
    public StopStrings(List<String> stops) {
        this.stops = stops.stream().filter(s -> !s.isEmpty()).toList();
    }

    /** Adds newly decoded text; returns what can be shown now. */
    public String accept(String text) {
        if (stopped) return "";
        held.append(text);
        int first = -1;
        for (String s : stops) {
            int at = held.indexOf(s);
            if (at >= 0 && (first < 0 || at < first)) first = at;
        }
        if (first >= 0) {
            stopped = true;
            String out = held.substring(0, first);
            held.setLength(0);
            return out;
        }
        int keep = longestPendingPrefix();
        String out = held.substring(0, held.length() - keep);
        held.delete(0, held.length() - keep);
        return out;
    }

    /** The held-back tail, once no more text will come. */
    public String finish() {
        String out = stopped ? "" : held.toString();
        held.setLength(0);
        return out;
    }

    /** Whether a stop string has appeared: everything from it on is dropped. */
    public boolean stopped() {
        return stopped;
    }

    /** Length of the longest end of the held text that is a proper prefix of some stop string. */
    private int longestPendingPrefix() {
        int best = 0;
        String h = held.toString();
        for (String s : stops) {
            for (int k = Math.min(s.length() - 1, h.length()); k > best; k--) {
                if (h.regionMatches(h.length() - k, s, 0, k)) {
                    best = k;
                    break;
                }
            }
        }
        return best;
    }
}
