package dev.jnext.cpu;

import java.util.Arrays;

/**
 * Gated DeltaNet state of one linear-attention layer for a fixed number of sequence slots (CPU, fp32):
 * <ul>
 *   <li>conv state {@code [slots, convDim, K−1]}: the last K−1 raw conv inputs per channel, column 0 the oldest;</li>
 *   <li>recurrent state {@code [slots, Hv, dk, dv]}: S_h[i][j] with i over key dims and j over value dims, so that
 *       a decode step reads o = Sᵀq (the orientation of transformers' {@code recurrent_states}).</li>
 * </ul>
 * A zeroed slot is a fresh sequence.
 */
public final class SsmSlots {
    private final int convStride;
    private final int recurrentStride;
    private final float[] conv;
    private final float[] recurrent;

    /** Zeroed state for {@code slots} sequences of one layer. */
    public SsmSlots(int slots, int convDim, int kernel, int valueHeads, int keyDim, int valueDim) {
        this.convStride = convDim * (kernel - 1);
        this.recurrentStride = valueHeads * keyDim * valueDim;
        this.conv = new float[Math.multiplyExact(slots, convStride)];
        this.recurrent = new float[Math.multiplyExact(slots, recurrentStride)];
    }

    /** The conv state of every slot, {@code [slots, convDim, K−1]}. */
    public float[] conv() {
        return conv;
    }

    /** The recurrent state of every slot, {@code [slots, Hv, dk, dv]}. */
    public float[] recurrent() {
        return recurrent;
    }

    /** Index of the slot's first conv value in {@link #conv()}. */
    public int convOffset(int slot) {
        return slot * convStride;
    }

    /** Index of the slot's first recurrent value in {@link #recurrent()}. */
    public int recurrentOffset(int slot) {
        return slot * recurrentStride;
    }

    /** Floats of conv state per slot: convDim · (K−1). */
    public int convSize() {
        return convStride;
    }

    /** Floats of recurrent state per slot: Hv · dk · dv. */
    public int recurrentSize() {
        return recurrentStride;
    }

    /** Zeroes the slot (a new sequence). */
    public void reset(int slot) {
        Arrays.fill(conv, convOffset(slot), convOffset(slot) + convStride, 0f);
        Arrays.fill(recurrent, recurrentOffset(slot), recurrentOffset(slot) + recurrentStride, 0f);
    }
}
