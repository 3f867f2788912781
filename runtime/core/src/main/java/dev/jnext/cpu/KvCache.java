package dev.jnext.cpu;

import java.util.Arrays;

/**
 * Keys and values of one full-attention layer per sequence slot (CPU, fp32), each laid out
 * {@code [tokens, kvHeads, headDim]} with keys stored after k_norm and RoPE. Grows by doubling.
 */
public final class KvCache {
    private final int rowWidth;
    private final float[][] keys;
    private final float[][] values;
    private final int[] length;

    /** An empty cache of {@code slots} sequences, rows of {@code kvHeads · headDim} floats. */
    public KvCache(int slots, int kvHeads, int headDim) {
        this.rowWidth = kvHeads * headDim;
        this.keys = new float[slots][];
        this.values = new float[slots][];
        this.length = new int[slots];
        for (int s = 0; s < slots; s++) reset(s);
    }

    /** Floats of one token's keys (or values): kvHeads · headDim. */
    public int rowWidth() {
        return rowWidth;
    }

    /** Cached tokens of the slot. */
    public int length(int slot) {
        return length[slot];
    }

    /** The slot's keys, row-major [capacity, kvHeads · headDim]; the first {@link #length} rows are valid. */
    public float[] keys(int slot) {
        return keys[slot];
    }

    /** The slot's values, laid out as {@link #keys}. */
    public float[] values(int slot) {
        return values[slot];
    }

    /** Appends {@code rows} rows of k and v (from offset {@code rowOffset} in rows) to the slot. */
    public void append(int slot, float[] k, float[] v, int rowOffset, int rows) {
        int need = (length[slot] + rows) * rowWidth;
        if (need > keys[slot].length) {
            int cap = Math.max(need, keys[slot].length * 2);
            keys[slot] = Arrays.copyOf(keys[slot], cap);
            values[slot] = Arrays.copyOf(values[slot], cap);
        }
        System.arraycopy(k, rowOffset * rowWidth, keys[slot], length[slot] * rowWidth, rows * rowWidth);
        System.arraycopy(v, rowOffset * rowWidth, values[slot], length[slot] * rowWidth, rows * rowWidth);
        length[slot] += rows;
    }

    /** Empties the slot. */
    public void reset(int slot) {
        keys[slot] = new float[16 * rowWidth];
        values[slot] = new float[16 * rowWidth];
        length[slot] = 0;
    }
}
