package dev.jnext.cpu;

import dev.jnext.JnextException;
import dev.jnext.model.LayerType;
import dev.jnext.model.ModelConfig;

/**
 * All per-sequence state of the CPU forward for up to {@code slots} concurrent sequences: {@link SsmSlots} for
 * every Gated DeltaNet layer, a {@link KvCache} for every full-attention layer, and the number of tokens each slot
 * has seen. A slot is owned by one sequence from {@link #allocate()} to {@link #release(int)}.
 */
public final class CpuState {
    private final SsmSlots[] ssm;
    private final KvCache[] kv;
    private final int[] position;
    private final boolean[] inUse;

    /** State for {@code slots} concurrent sequences of a model with {@code config}, every slot free. */
    public CpuState(ModelConfig config, int slots) {
        if (slots < 1) throw new IllegalArgumentException("slots must be >= 1");
        int layers = config.numHiddenLayers();
        ssm = new SsmSlots[layers];
        kv = new KvCache[layers];
        for (int l = 0; l < layers; l++) {
            if (config.layerType(l) == LayerType.LINEAR_ATTENTION) {
                ssm[l] = new SsmSlots(slots, config.convDim(), config.linearConvKernelDim(),
                        config.linearNumValueHeads(), config.linearKeyHeadDim(), config.linearValueHeadDim());
            } else {
                kv[l] = new KvCache(slots, config.numKeyValueHeads(), config.headDim());
            }
        }
        position = new int[slots];
        inUse = new boolean[slots];
    }

    /** Number of layers (one {@link #ssm} or {@link #kv} each). */
    public int layers() {
        return ssm.length;
    }

    /** Number of slots. */
    public int slots() {
        return position.length;
    }

    /** Takes a free slot, reset to an empty sequence. */
    public int allocate() {
        for (int s = 0; s < inUse.length; s++) {
            if (!inUse[s]) {
                inUse[s] = true;
                reset(s);
                return s;
            }
        }
        throw new JnextException("all " + inUse.length + " sequence slots are in use");
    }

    /** Gives the slot back (its state is reset when it is taken again). */
    public void release(int slot) {
        checkSlot(slot);
        inUse[slot] = false;
    }

    /** Forgets the slot's tokens (conv, recurrent and KV state). */
    public void reset(int slot) {
        for (SsmSlots s : ssm) if (s != null) s.reset(slot);
        for (KvCache c : kv) if (c != null) c.reset(slot);
        position[slot] = 0;
    }

    /** Tokens the slot's sequence has consumed so far (the position of its next token). */
    public int position(int slot) {
        return position[slot];
    }

    /** Records that the slot's sequence consumed {@code tokens} more tokens. */
    public void advance(int slot, int tokens) {
        position[slot] += tokens;
    }

    /** Gated DeltaNet state of layer {@code layer} (null for full-attention layers). */
    public SsmSlots ssm(int layer) {
        return ssm[layer];
    }

    /** KV cache of layer {@code layer} (null for linear-attention layers). */
    public KvCache kv(int layer) {
        return kv[layer];
    }

    /** Throws a {@link dev.jnext.JnextException} unless {@code slot} is allocated. */
    public void checkSlot(int slot) {
        if (slot < 0 || slot >= inUse.length || !inUse[slot]) {
            throw new JnextException("sequence slot " + slot + " is not allocated");
        }
    }
}
