package dev.jnext.cpu;

import dev.jnext.backend.SamplingParams;

import dev.jnext.JnextException;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SamplerTest {

    private static float[] randomLogits(int n, long seed) {
        Random r = new Random(seed);
        float[] l = new float[n];
        for (int i = 0; i < n; i++) l[i] = (float) (r.nextGaussian() * 2);
        return l;
    }

    private static SamplingParams params(float temperature, int topK, float topP, float minP, long seed) {
        return new SamplingParams(temperature, topK, topP, minP, 1f, 0f, seed);
    }

    private static int[] histogram(SamplingParams p, float[] logits, int draws) {
        Sampler s = new Sampler(p, logits.length);
        int[] h = new int[logits.length];
        for (int i = 0; i < draws; i++) h[s.next(logits)]++;
        return h;
    }

    @Test
    void greedyTakesTheArgmaxAndTheLowestIdOnTies() {
        float[] l = randomLogits(1000, 1);
        int best = 0;
        for (int i = 1; i < l.length; i++) if (l[i] > l[best]) best = i;
        assertEquals(best, new Sampler(SamplingParams.greedy(), 1000).next(l));
        assertEquals(2, new Sampler(SamplingParams.greedy(), 5).next(new float[] {0, 1, 3, 3, -1}));
    }

    @Test
    void theSameSeedGivesTheSameTokensAndAnotherSeedOthers() {
        float[] l = randomLogits(500, 2);
        Sampler a = new Sampler(params(1, 0, 1, 0, 42), 500), b = new Sampler(params(1, 0, 1, 0, 42), 500);
        Sampler c = new Sampler(params(1, 0, 1, 0, 43), 500);
        int[] ta = new int[50], tb = new int[50], tc = new int[50];
        for (int i = 0; i < 50; i++) {
            ta[i] = a.next(l);
            tb[i] = b.next(l);
            tc[i] = c.next(l);
        }
        assertArrayEquals(ta, tb);
        assertNotEquals(java.util.Arrays.toString(ta), java.util.Arrays.toString(tc));
    }

    /** Chi-square goodness of fit of the draws against softmax(logits / T), 5 categories. */
    @Test
    void temperatureSamplingFollowsTheSoftmax() {
        float[] l = {1.0f, 0.5f, 0.0f, -0.5f, -1.5f};
        for (float t : new float[] {0.5f, 1f, 2f}) {
            int draws = 40_000;
            int[] h = histogram(params(t, 0, 1, 0, 7), l, draws);
            double z = 0;
            double[] p = new double[l.length];
            for (int i = 0; i < l.length; i++) z += p[i] = Math.exp(l[i] / t);
            double chi2 = 0;
            for (int i = 0; i < l.length; i++) {
                double expected = draws * p[i] / z;
                chi2 += (h[i] - expected) * (h[i] - expected) / expected;
            }
            assertTrue(chi2 < 18.47, "T=" + t + ": chi-square " + chi2 + " (4 dof, p=0.001 bound 18.47)");
        }
    }

    @Test
    void topKKeepsOnlyTheKMostLikely() {
        float[] l = randomLogits(300, 3);
        int[] h = histogram(params(5f, 3, 1, 0, 9), l, 3000);
        Integer[] idx = new Integer[300];
        for (int i = 0; i < 300; i++) idx[i] = i;
        java.util.Arrays.sort(idx, (x, y) -> Float.compare(l[y], l[x]));
        int drawnInTop3 = h[idx[0]] + h[idx[1]] + h[idx[2]];
        assertEquals(3000, drawnInTop3);
        assertTrue(h[idx[0]] > 0 && h[idx[1]] > 0 && h[idx[2]] > 0, "all three should be drawn at T=5");
    }

    @Test
    void topKOnALargeVocabularyDrawsExactlyLikeTheFullSort() {
        // k < n/8 takes the heap path; the same draws must come out as with k = n (full sort) restricted by hand
        float[] l = randomLogits(151_936, 4);
        Integer[] idx = new Integer[l.length];
        for (int i = 0; i < l.length; i++) idx[i] = i;
        java.util.Arrays.sort(idx, (x, y) -> l[y] != l[x] ? Float.compare(l[y], l[x]) : Integer.compare(x, y));
        float[] masked = new float[l.length];
        java.util.Arrays.fill(masked, Float.NEGATIVE_INFINITY);
        for (int r = 0; r < 40; r++) masked[idx[r]] = l[idx[r]];
        Sampler heap = new Sampler(params(1.3f, 40, 1, 0, 77), l.length);
        Sampler full = new Sampler(params(1.3f, 0, 1, 0, 77), l.length); // k = 0: the full sort
        for (int i = 0; i < 200; i++) assertEquals(full.next(masked), heap.next(l));
    }

    @Test
    void topPKeepsTheSmallestSetReachingP() {
        // probabilities 0.5, 0.25, 0.125, 0.0625, 0.0625
        float[] l = {(float) Math.log(8), (float) Math.log(4), (float) Math.log(2), 0, 0};
        int[] h = histogram(params(1, 0, 0.7f, 0, 5), l, 6000);
        assertEquals(0, h[2] + h[3] + h[4], "0.5 + 0.25 already reaches 0.7");
        assertTrue(Math.abs(h[0] / 6000.0 - 2.0 / 3) < 0.03, "renormalized 0.5/0.75, got " + h[0] / 6000.0);
        h = histogram(params(1, 0, 0.76f, 0, 5), l, 6000);
        assertTrue(h[2] > 0 && h[3] + h[4] == 0, "0.76 needs the third token");
    }

    @Test
    void minPDropsTokensFarLessLikelyThanTheBest() {
        float[] l = {(float) Math.log(8), (float) Math.log(4), (float) Math.log(2), 0, 0};
        int[] h = histogram(params(1, 0, 1, 0.3f, 5), l, 4000); // floor 0.15: keeps 0.5 and 0.25
        assertEquals(0, h[2] + h[3] + h[4]);
        assertTrue(h[0] > 0 && h[1] > 0);
    }

    @Test
    void repetitionPenaltyAppliesToPromptTokensAsHuggingFaceDoes() {
        float[] l = {2.0f, 1.9f, -1f};
        Sampler s = new Sampler(new SamplingParams(0, 0, 1, 0, 1.2f, 0, 0), 3);
        s.observePrompt(new int[] {0});
        assertEquals(1, s.next(l), "2.0 / 1.2 < 1.9");
        float[] neg = {-1.0f, -1.1f};
        Sampler s2 = new Sampler(new SamplingParams(0, 0, 1, 0, 1.2f, 0, 0), 2);
        s2.observePrompt(new int[] {0});
        assertEquals(1, s2.next(neg), "-1.0 * 1.2 < -1.1");
    }

    @Test
    void presencePenaltyDiscouragesRepeatingGeneratedTokens() {
        float[] l = {1.0f, 0.8f};
        Sampler s = new Sampler(new SamplingParams(0, 0, 1, 0, 1, 0.5f, 0), 2);
        assertEquals(0, s.next(l));
        assertEquals(1, s.next(l), "1.0 - 0.5 < 0.8 once 0 was generated");
    }

    @Test
    void onlyIdsBelowTheVocabLimitAreDrawn() {
        float[] l = {0f, 0f, 100f};
        assertEquals(1, new Sampler(SamplingParams.greedy(), 2).next(new float[] {0f, 1f, 100f}));
        Sampler s = new Sampler(params(1, 0, 1, 0, 1), 2);
        for (int i = 0; i < 200; i++) assertTrue(s.next(l) < 2);
    }

    @Test
    void nanLogitsAndBadParametersFailClearly() {
        var e = assertThrows(JnextException.class, () -> new Sampler(SamplingParams.greedy(), 3).next(new float[] {0, Float.NaN, 1}));
        assertTrue(e.getMessage().contains("NaN"));
        assertThrows(JnextException.class, () -> params(-1, 0, 1, 0, 0));
        assertThrows(JnextException.class, () -> params(1, -2, 1, 0, 0));
        assertThrows(JnextException.class, () -> params(1, 0, 0, 0, 0));
        assertThrows(JnextException.class, () -> params(1, 0, 1, 1, 0));
        assertThrows(JnextException.class, () -> new SamplingParams(1, 0, 1, 0, 0, 0, 0));
    }

    /** Issue 19: logit / T overflowed to +Inf, exp(Inf - Inf) was NaN and every seed got the least likely candidate. */
    @Test
    void aTinyTemperatureIsGreedyWithEveryCutAndSeed() {
        float[] l = randomLogits(151_936, 19);
        l[4242] = 24f; // a clear favourite, as a real model's logits have
        for (float t : new float[] {1e-38f, 1e-40f, Float.MIN_VALUE}) {
            for (int[] cut : new int[][] {{0, 100}, {50, 100}, {0, 50}, {50, 50}}) { // top-k, top-p in percent
                for (long seed = 0; seed < 5; seed++) {
                    var p = new SamplingParams(t, cut[0], cut[1] / 100f, 0, 1f, 0f, seed);
                    assertEquals(4242, new Sampler(p, l.length).next(l), p.toString());
                }
            }
        }
    }

    /** Issue 19: a repetition penalty of 1e-44 pushed seen logits to +Inf; they now saturate and share the draw. */
    @Test
    void anExtremeRepetitionPenaltyFavoursTheSeenTokensWithoutOverflowing() {
        float[] l = randomLogits(2000, 20);
        int[] prompt = {3, 70, 500, 1999};
        l[3] = 0.8f;
        l[70] = 1.5f;
        l[500] = -2f;  // seen but negative: multiplied by 1e-44, so about 0
        l[1999] = 2.5f;
        java.util.Set<Integer> drawn = new java.util.HashSet<>();
        for (long seed = 0; seed < 40; seed++) {
            Sampler s = new Sampler(new SamplingParams(1f, 0, 1f, 0f, 1e-44f, 0f, seed), l.length);
            s.observePrompt(prompt);
            int id = s.next(l);
            assertTrue(id == 3 || id == 70 || id == 1999, "seed " + seed + " drew " + id + " (logit " + l[id] + ")");
            drawn.add(id);
        }
        assertEquals(3, drawn.size(), "the three saturated logits tie, so the seeds spread over them: " + drawn);
        Sampler one = new Sampler(new SamplingParams(1f, 50, 0.5f, 0f, 1e-44f, 0f, 7), l.length);
        one.observePrompt(new int[] {1999});
        for (int i = 0; i < 5; i++) assertEquals(1999, one.next(l), "the one boosted token wins every draw");
    }

    /** The draw never falls through to the last candidate: masked (-Inf) candidates are never drawn. */
    @Test
    void maskedCandidatesAreNeverDrawn() {
        float[] l = new float[1000];
        java.util.Arrays.fill(l, Float.NEGATIVE_INFINITY);
        l[10] = 1f;
        l[20] = 1f;
        l[30] = 0.5f;
        Sampler s = new Sampler(params(Float.MAX_VALUE, 0, 1, 0, 3), l.length);
        for (int i = 0; i < 2000; i++) {
            int id = s.next(l);
            assertTrue(id == 10 || id == 20 || id == 30, "drew masked " + id);
        }
    }
}
