package dev.jnext.cpu;

import dev.jnext.JnextException;
import dev.jnext.backend.SamplingParams;
import dev.jnext.backend.TokenMask;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A token mask before sampling: greedy and every sampling rule take allowed ids only; the logits stay untouched. */
class MaskedSamplingTest {
    private static float[] logits(int n, long seed) {
        Random r = new Random(seed);
        float[] l = new float[n];
        for (int i = 0; i < n; i++) l[i] = (float) (r.nextGaussian() * 3);
        return l;
    }

    @Test
    void greedyTakesTheMostLikelyAllowedId() {
        float[] l = logits(5000, 1);
        int[] allowed = {17, 4001, 333, 2999};
        int best = 17;
        for (int id : allowed) if (l[id] > l[best]) best = id;
        float[] copy = l.clone();
        assertEquals(best, new Sampler(SamplingParams.greedy(), l.length).next(l, TokenMask.of(l.length, allowed)));
        assertTrue(java.util.Arrays.equals(copy, l), "the logits are not modified (log-probabilities come from them)");
    }

    @Test
    void everySamplingRuleDrawsOnlyAllowedIds() {
        float[] l = logits(3000, 2);
        TokenMask mask = TokenMask.of(l.length, 5, 6, 7, 2500, 2999);
        SamplingParams[] params = {new SamplingParams(1f, 0, 1f, 0f, 1f, 0f, 3), new SamplingParams(0.7f, 2, 1f, 0f, 1f, 0f, 4),
                new SamplingParams(1.5f, 0, 0.5f, 0f, 1f, 0f, 5), new SamplingParams(1f, 0, 1f, 0.3f, 1.3f, 0.5f, 6),
                new SamplingParams(100f, 1000, 0.99f, 0f, 1f, 0f, 7)};
        for (SamplingParams p : params) {
            Sampler s = new Sampler(p, l.length);
            java.util.Set<Integer> drawn = new java.util.TreeSet<>();
            for (int i = 0; i < 400; i++) drawn.add(s.next(l, mask));
            for (int id : drawn) assertTrue(mask.allows(id), p + " drew " + id);
            if (p.temperature() == 100f) assertEquals(5, drawn.size(), "a hot draw reaches every allowed id: " + drawn);
        }
    }

    @Test
    void aMaskThatAllowsNothingSampleableIsRefused() {
        float[] l = logits(100, 3);
        var e = assertThrows(JnextException.class, () -> new Sampler(SamplingParams.greedy(), 50).next(l, TokenMask.of(100, 60, 70)));
        assertTrue(e.getMessage().contains("token mask allows none"), e.getMessage());
    }

    @Test
    void aMaskIsItsWordsAndAppliesToEveryIdBelowTheLimit() {
        TokenMask m = TokenMask.of(130, 0, 63, 64, 129, 130, -1);
        assertEquals(4, m.count());
        assertEquals(63, m.nextAllowed(1));
        assertEquals(129, m.nextAllowed(65));
        assertEquals(-1, m.nextAllowed(130));
        assertEquals(m, TokenMask.ofWords(m.words(), 130));
        assertTrue(m.with(5).allows(5) && !m.allows(5));
        float[] l = new float[140];
        assertEquals(4, m.apply(l, 140));
        assertEquals(Float.NEGATIVE_INFINITY, l[1]);
        assertEquals(Float.NEGATIVE_INFINITY, l[135], "past the mask's size nothing is allowed");
        assertEquals(0f, l[129]);
    }
}
