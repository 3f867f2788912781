package dev.jnext.cpu;

import dev.jnext.backend.SamplingParams;

import dev.jnext.JnextException;
import dev.jnext.backend.SamplingRules;
import dev.jnext.backend.TokenMask;

import java.util.Arrays;
import java.util.BitSet;
import java.util.SplittableRandom;

/**
 * The CPU reference sampler: turns one step's logits into a token id following {@link SamplingParams} by the rules of
 * {@link SamplingRules} (the same rules the device sampler's reference follows). Order as in Hugging Face generate:
 * repetition and presence penalties, temperature, top-k, top-p, min-p, then a seeded draw. Every temperature > 0 (down to
 * {@link Float#MIN_VALUE}) and every penalty gives a well-defined draw: masses are formed relative to the largest logit,
 * penalized logits saturate instead of overflowing, and the draw never lands on a candidate of mass 0. One per sequence
 * (it remembers which tokens were seen and holds the random stream).
 */
public final class Sampler {
    private final SamplingParams params;
    private final int vocabLimit;
    private final BitSet seen = new BitSet();
    private final BitSet generated = new BitSet();
    private final SplittableRandom random;

    /**
     * A sampler for one sequence.
     *
     * @param params     how to choose (its seed starts the random stream)
     * @param vocabLimit only ids below this can be drawn (e.g. the tokenizer's vocabulary, when the model's
     *                   embedding table is padded beyond it)
     */
    public Sampler(SamplingParams params, int vocabLimit) {
        this.params = params;
        this.vocabLimit = vocabLimit;
        this.random = new SplittableRandom(params.seed());
    }

    /** Tokens of the prompt: the repetition penalty applies to them. */
    public void observePrompt(int[] ids) {
        for (int id : ids) if (id >= 0) seen.set(id);
    }

    /** Picks the next token from the logits of the last position (the array is not modified). */
    public int next(float[] logits) {
        return next(logits, null);
    }

    /**
     * Picks the next token among the ids {@code allowed} (null: any) from the logits of the last position (the array is
     * not modified): the logits of the other ids are −∞ before the penalties and the sampling rules, so greedy and
     * every draw take an allowed id.
     */
    public int next(float[] logits, TokenMask allowed) {
        int n = Math.min(vocabLimit, logits.length);
        if (n <= 0) throw new JnextException("no token can be sampled: the model returned " + logits.length + " logits");
        float[] l = Arrays.copyOf(logits, n);
        for (int i = 0; i < n; i++) {
            if (Float.isNaN(l[i])) throw new JnextException("the model produced a NaN logit (token id " + i + ")");
        }
        if (allowed != null && allowed.apply(l, n) == 0) {
            throw new JnextException("the token mask allows none of the " + n + " ids that can be sampled");
        }
        applyPenalties(l);
        int id = params.isGreedy() ? SamplingRules.argmax(l, n) : draw(l);
        seen.set(id);
        generated.set(id);
        return id;
    }

    private void applyPenalties(float[] l) {
        float rp = params.repetitionPenalty(), pp = params.presencePenalty();
        if (rp == 1f && pp == 0f) return;
        BitSet touched = (BitSet) seen.clone();
        touched.or(generated);
        for (int id = touched.nextSetBit(0); id >= 0 && id < l.length; id = touched.nextSetBit(id + 1)) {
            l[id] = SamplingRules.penalize(l[id], seen.get(id), generated.get(id), rp, pp);
        }
    }

    private int draw(float[] l) {
        int n = l.length;
        int keep = params.topK() > 0 ? Math.min(params.topK(), n) : n;
        // candidates sorted by logit, descending (ties by lower id), as packed keys
        long[] order = keep < n / 8 ? smallestKeys(l, keep) : allKeysSorted(l);
        float t = params.temperature();
        float max = l[(int) order[0]];
        double[] mass = new double[keep];
        for (int r = 0; r < keep; r++) mass[r] = SamplingRules.mass(l[(int) order[r]], max, t);
        keep = SamplingRules.cut(mass, keep, params.topP(), params.minP());
        return (int) order[SamplingRules.pick(mass, keep, random.nextDouble())];
    }

    private static long key(float[] l, int i) {
        return ((long) descendingKey(l[i]) << 32) | i;
    }

    private static long[] allKeysSorted(float[] l) {
        long[] order = new long[l.length];
        for (int i = 0; i < l.length; i++) order[i] = key(l, i);
        Arrays.sort(order);
        return order;
    }

    /** The k smallest keys (the top-k tokens), sorted, through a max-heap of size k: n log k instead of n log n. */
    private static long[] smallestKeys(float[] l, int k) {
        long[] heap = new long[k];
        for (int i = 0; i < k; i++) {
            long v = key(l, i);
            int j = i;
            while (j > 0 && heap[(j - 1) >>> 1] < v) {
                heap[j] = heap[(j - 1) >>> 1];
                j = (j - 1) >>> 1;
            }
            heap[j] = v;
        }
        for (int i = k; i < l.length; i++) {
            long v = key(l, i);
            if (v >= heap[0]) continue;
            int j = 0;
            while (true) {
                int c = 2 * j + 1;
                if (c >= k) break;
                if (c + 1 < k && heap[c + 1] > heap[c]) c++;
                if (heap[c] <= v) break;
                heap[j] = heap[c];
                j = c;
            }
            heap[j] = v;
        }
        Arrays.sort(heap);
        return heap;
    }

    /** A signed int whose ascending order is the float's descending order. */
    private static int descendingKey(float f) {
        int bits = Float.floatToIntBits(f);
        int ascendingUnsigned = bits >= 0 ? bits ^ 0x80000000 : ~bits;
        return ~ascendingUnsigned ^ 0x80000000;
    }
}
