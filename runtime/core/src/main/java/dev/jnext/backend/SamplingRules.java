package dev.jnext.backend;

import java.util.Arrays;
import java.util.BitSet;

/**
 * The sampling rules, written once: the CPU {@code dev.jnext.engine.Sampler} is built from these pieces and the device
 * sampler's CPU reference ({@code dev.jnext.kernels.SamplingKernel}) delegates to them. Order as in Hugging Face
 * generate: penalties, temperature, top-k, top-p, min-p, one draw.
 *
 * <ul>
 *   <li>Penalties ({@link #penalize}): Hugging Face's repetition penalty on a seen id ({@code v > 0 ? v / rp : v · rp}),
 *       then OpenAI's presence penalty on a generated id ({@code v − pp}), in fp32. A finite logit stays finite: a result
 *       past the float range saturates at ±{@link Float#MAX_VALUE} (tokens pushed there tie); ±∞ stays ±∞.</li>
 *   <li>Candidates are ordered by penalized logit, descending, equal logits by id ascending; top-k keeps the first k.</li>
 *   <li>Masses ({@link #mass}): relative to the largest logit {@code m}, {@code exp((l − m) / T)} in double, and exactly
 *       1 for every {@code l == m} — so no temperature > 0, however small, and no logit, however large (±∞ included),
 *       gives NaN: every mass lies in [0, 1] and the largest candidate has mass 1.</li>
 *   <li>Top-p keeps the shortest prefix whose mass reaches {@code top_p} of the top-k mass; min-p then keeps the prefix
 *       of masses ≥ {@code min_p} (the largest has mass 1) ({@link #cut}). The largest candidate is always kept.</li>
 *   <li>The draw ({@link #pick}) is an inverse CDF over the kept masses in candidate order; it never returns a
 *       candidate of mass 0.</li>
 * </ul>
 *
 * <p>Consequences at the extremes: a temperature down to {@link Float#MIN_VALUE} gives the argmax when one logit is
 * largest (the tied largest share the draw); {@code top_k = 1}, a tiny {@code top_p} or {@code min_p} near 1 keep the
 * largest only; a huge temperature draws uniformly over the kept set.
 */
public final class SamplingRules {
    private SamplingRules() {}

    /**
     * One logit after the penalties: a seen id (prompt or output) {@code v > 0 ? v / rp : v · rp} (Hugging Face's
     * repetition penalty; {@code rp = 1} is off), then a generated id {@code v − pp} (OpenAI's presence penalty; 0 is off),
     * in fp32; a finite logit saturates at ±{@link Float#MAX_VALUE} instead of overflowing.
     */
    public static float penalize(float logit, boolean seen, boolean generated, float repetitionPenalty, float presencePenalty) {
        float v = logit;
        if (seen && repetitionPenalty != 1f) v = v > 0 ? v / repetitionPenalty : v * repetitionPenalty;
        if (generated && presencePenalty != 0f) v -= presencePenalty;
        if (Float.isFinite(logit) && !Float.isFinite(v) && !Float.isNaN(v)) v = Math.copySign(Float.MAX_VALUE, v);
        return v;
    }

    /** {@link #penalize} over the first {@code vocab} logits ({@code seen} / {@code generated} may be null: none). */
    public static float[] penalize(float[] logits, int vocab, BitSet seen, BitSet generated, float repetitionPenalty,
                                   float presencePenalty) {
        float[] l = Arrays.copyOf(logits, vocab);
        for (int i = 0; i < vocab; i++) {
            boolean s = seen != null && seen.get(i), g = generated != null && generated.get(i);
            if (s || g) l[i] = penalize(l[i], s, g, repetitionPenalty, presencePenalty);
        }
        return l;
    }

    /**
     * The mass of a candidate with logit {@code logit} relative to the largest, {@code max} ({@code logit <= max}): 1 when
     * they are equal, else {@code exp((logit − max) / temperature)} in double; in [0, 1], never NaN for {@code temperature > 0}.
     */
    public static double mass(float logit, float max, float temperature) {
        if (logit == max) return 1;
        return Math.exp(((double) logit - max) / temperature);
    }

    /**
     * How many of the first {@code keep} candidates (after top-k, in candidate order, {@code mass[0] == 1}) top-p and then
     * min-p keep; at least 1.
     */
    public static int cut(double[] mass, int keep, float topP, float minP) {
        if (topP < 1f) {
            double z = 0;
            for (int r = 0; r < keep; r++) z += mass[r];
            double target = topP * z, cumulative = 0;
            int r = 0;
            while (r < keep) {
                cumulative += mass[r++];
                if (cumulative >= target) break;
            }
            keep = Math.max(1, r);
        }
        if (minP > 0f) {
            double floor = minP * mass[0];
            int r = 1;
            while (r < keep && mass[r] >= floor) r++;
            keep = r;
        }
        return keep;
    }

    /**
     * The candidate a uniform {@code u} in [0, 1) draws from the first {@code keep} masses: the first {@code r} whose
     * cumulative mass exceeds {@code u} times the total. Never a candidate of mass 0.
     */
    public static int pick(double[] mass, int keep, double u) {
        double total = 0;
        for (int r = 0; r < keep; r++) total += mass[r];
        double x = u * total, cumulative = 0;
        int last = 0;
        for (int r = 0; r < keep; r++) {
            if (!(mass[r] > 0)) continue;
            cumulative += mass[r];
            last = r;
            if (x < cumulative) return r;
        }
        return last; // u * total rounded up to the total: the last candidate with mass
    }

    /** Greedy: the first id of the largest logit among the first {@code vocab} (−0 equals +0); −1 when one is NaN. */
    public static int argmax(float[] logits, int vocab) {
        int best = 0;
        for (int i = 0; i < vocab; i++) {
            if (Float.isNaN(logits[i])) return -1;
            if (logits[i] > logits[best]) best = i;
        }
        return best;
    }

    /**
     * The reference distribution over the first {@code vocab} (already penalized) logits, by the rules above with a full
     * sort: each id's probability, 0 outside the kept set. No logit may be NaN.
     *
     * @param temperature > 0
     * @param topK        0 keeps all
     * @param topP        in (0, 1]; 1 keeps all
     * @param minP        in [0, 1); 0 keeps all
     */
    public static double[] distribution(float[] logits, int vocab, float temperature, int topK, float topP, float minP) {
        if (!(temperature > 0)) throw new IllegalArgumentException("temperature must be > 0, got " + temperature);
        Integer[] order = new Integer[vocab];
        for (int i = 0; i < vocab; i++) {
            if (Float.isNaN(logits[i])) throw new IllegalArgumentException("logit " + i + " is NaN");
            order[i] = i;
        }
        // Float.compare orders -0 below +0, as the Sampler's and the kernel's keys do
        Arrays.sort(order, (a, b) -> {
            int c = Float.compare(logits[b], logits[a]);
            return c != 0 ? c : Integer.compare(a, b);
        });
        int keep = topK > 0 ? Math.min(topK, vocab) : vocab;
        double[] mass = new double[keep];
        for (int r = 0; r < keep; r++) mass[r] = mass(logits[order[r]], logits[order[0]], temperature);
        keep = cut(mass, keep, topP, minP);
        double total = 0;
        for (int r = 0; r < keep; r++) total += mass[r];
        double[] dist = new double[vocab];
        for (int r = 0; r < keep; r++) dist[order[r]] = mass[r] / total;
        return dist;
    }
}
