package dev.jnext.tokenizer;

import java.util.Arrays;

/**
 * The BPE merge table of a byte-level vocabulary and the merge loop: a word starts as one token per
 * byte and the adjacent pair with the lowest merge rank is merged until none is left (ties: leftmost
 * first), exactly as Hugging Face's BPE model with no dropout does.
 */
final class BytePairMerges {
    private static final long EMPTY = -1L;
    /** Words longer than this merge through a heap (n log n) instead of rescanning all pairs (n^2). */
    static final int HEAP_THRESHOLD = 48;

    private final long[] keys;
    private final int[] ranks;
    private final int[] mergedIds;
    private final int mask;
    private final int size;

    /**
     * @param lefts  left token id of each merge, in rank order
     * @param rights right token id of each merge
     * @param merged the id of the concatenation of each merge
     */
    BytePairMerges(int[] lefts, int[] rights, int[] merged) {
        int capacity = Integer.highestOneBit(Math.max(16, lefts.length * 3)) << 1;
        keys = new long[capacity];
        Arrays.fill(keys, EMPTY);
        ranks = new int[capacity];
        mergedIds = new int[capacity];
        mask = capacity - 1;
        int n = 0;
        for (int r = 0; r < lefts.length; r++) {
            long key = key(lefts[r], rights[r]);
            int slot = slot(key);
            while (keys[slot] != EMPTY && keys[slot] != key) slot = (slot + 1) & mask;
            if (keys[slot] == key) continue; // a repeated merge keeps its first (lowest) rank
            keys[slot] = key;
            ranks[slot] = r;
            mergedIds[slot] = merged[r];
            n++;
        }
        size = n;
    }

    int size() {
        return size;
    }

    private static long key(int left, int right) {
        return ((long) left << 32) | (right & 0xFFFFFFFFL);
    }

    private int slot(long key) {
        long h = key * 0x9E3779B97F4A7C15L;
        return (int) (h >>> 40) & mask;
    }

    /** The slot of the merge (left, right), or -1 when the pair never merges. */
    private int find(int left, int right) {
        long key = key(left, right);
        int slot = slot(key);
        while (true) {
            long k = keys[slot];
            if (k == key) return slot;
            if (k == EMPTY) return -1;
            slot = (slot + 1) & mask;
        }
    }

    /** Rank of merging (left, right), or {@link Integer#MAX_VALUE} when the pair never merges. */
    int rank(int left, int right) {
        int s = find(left, right);
        return s < 0 ? Integer.MAX_VALUE : ranks[s];
    }

    /**
     * Merges {@code symbols[0, n)} (initial token ids, one per byte) in place and returns the number of
     * tokens left at the start of the array.
     */
    int merge(int[] symbols, int n) {
        return n > HEAP_THRESHOLD ? mergeWithHeap(symbols, n) : mergeByScan(symbols, n);
    }

    int mergeByScan(int[] sym, int n) {
        if (n < 2) return n;
        int[] pairSlot = new int[n - 1];
        for (int k = 0; k < n - 1; k++) pairSlot[k] = find(sym[k], sym[k + 1]);
        while (n > 1) {
            int best = -1, bestRank = Integer.MAX_VALUE;
            for (int k = 0; k < n - 1; k++) {
                int s = pairSlot[k];
                if (s >= 0 && ranks[s] < bestRank) {
                    bestRank = ranks[s];
                    best = k;
                }
            }
            if (best < 0) break;
            sym[best] = mergedIds[pairSlot[best]];
            System.arraycopy(sym, best + 2, sym, best + 1, n - best - 2);
            System.arraycopy(pairSlot, best + 1, pairSlot, best, n - best - 2);
            n--;
            if (best > 0) pairSlot[best - 1] = find(sym[best - 1], sym[best]);
            if (best < n - 1) pairSlot[best] = find(sym[best], sym[best + 1]);
        }
        return n;
    }

    int mergeWithHeap(int[] sym, int n) {
        if (n < 2) return n;
        int[] prev = new int[n], next = new int[n];
        boolean[] gone = new boolean[n];
        for (int k = 0; k < n; k++) {
            prev[k] = k - 1;
            next[k] = k + 1 < n ? k + 1 : -1;
        }
        LongMinHeap heap = new LongMinHeap(n);
        for (int k = 0; k < n - 1; k++) {
            int s = find(sym[k], sym[k + 1]);
            if (s >= 0) heap.push(((long) ranks[s] << 32) | k);
        }
        while (!heap.isEmpty()) {
            long top = heap.pop();
            int rank = (int) (top >>> 32), pos = (int) top;
            int right = next[pos];
            if (gone[pos] || right < 0) continue;
            int s = find(sym[pos], sym[right]);
            if (s < 0 || ranks[s] != rank) continue; // stale: a neighbour has merged since
            sym[pos] = mergedIds[s];
            gone[right] = true;
            next[pos] = next[right];
            if (next[pos] >= 0) prev[next[pos]] = pos;
            if (prev[pos] >= 0) {
                int sl = find(sym[prev[pos]], sym[pos]);
                if (sl >= 0) heap.push(((long) ranks[sl] << 32) | prev[pos]);
            }
            if (next[pos] >= 0) {
                int sr = find(sym[pos], sym[next[pos]]);
                if (sr >= 0) heap.push(((long) ranks[sr] << 32) | pos);
            }
        }
        int out = 0;
        for (int k = 0; k >= 0; k = next[k]) sym[out++] = sym[k];
        return out;
    }

    /** A binary min-heap of longs: (rank << 32 | position), so ties on rank go to the leftmost pair. */
    private static final class LongMinHeap {
        private long[] a;
        private int size;

        LongMinHeap(int capacity) {
            a = new long[Math.max(4, capacity)];
        }

        boolean isEmpty() {
            return size == 0;
        }

        void push(long v) {
            if (size == a.length) a = Arrays.copyOf(a, size * 2);
            int i = size++;
            while (i > 0) {
                int p = (i - 1) >>> 1;
                if (a[p] <= v) break;
                a[i] = a[p];
                i = p;
            }
            a[i] = v;
        }

        long pop() {
            long top = a[0];
            long last = a[--size];
            int i = 0;
            while (true) {
                int c = 2 * i + 1;
                if (c >= size) break;
                if (c + 1 < size && a[c + 1] < a[c]) c++;
                if (a[c] >= last) break;
                a[i] = a[c];
                i = c;
            }
            a[i] = last;
            return top;
        }
    }
}
