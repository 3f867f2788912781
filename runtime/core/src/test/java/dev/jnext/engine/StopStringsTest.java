package dev.jnext.engine;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StopStringsTest {

    private static String feed(StopStrings s, String... pieces) {
        StringBuilder out = new StringBuilder();
        for (String p : pieces) out.append(s.accept(p));
        return out.append(s.finish()).toString();
    }

    @Test
    void aStopStringSplitAcrossPiecesIsCaughtAndNotShown() {
        StopStrings s = new StopStrings(List.of("\nUser:"));
        assertEquals("Hello there.", feed(s, "Hello", " there.", "\nUs", "er:", " more"));
        assertTrue(s.stopped());
    }

    @Test
    void aPossiblePrefixIsHeldBackThenReleased() {
        StopStrings s = new StopStrings(List.of("STOP"));
        assertEquals("ab", s.accept("abST"));
        assertEquals("STx", s.accept("x"));
        assertEquals("yS", s.accept("yS") + s.finish());
        assertFalse(s.stopped());
    }

    @Test
    void theEarliestOfSeveralStopsWins() {
        StopStrings s = new StopStrings(List.of("cd", "b"));
        assertEquals("a", feed(s, "abcd"));
    }

    @Test
    void withoutStopsEverythingPasses() {
        assertEquals("anything at all", feed(new StopStrings(List.of()), "anything", " at all"));
    }
}
