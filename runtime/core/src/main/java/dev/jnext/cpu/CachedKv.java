package dev.jnext.cpu;

import java.util.Arrays;

/**
 * The keys and values of some consecutive tokens of one sequence, every full-attention layer ({@code keys[layer]},
 * {@code values[layer]}: {@code [tokens, kvHeads · headDim]} as {@link KvCache} holds them; null at linear-attention
 * layers). The KV payload of a prefix-cache node.
 *
 * @param tokens how many tokens
 */
public record CachedKv(int tokens, float[][] keys, float[][] values) {

    /** Rows {@code [from, to)} of {@code slot}'s cache in every attention layer of {@code state}. */
    public static CachedKv copy(CpuState state, int slot, int from, int to) {
        int layers = state.layers();
        float[][] k = new float[layers][];
        float[][] v = new float[layers][];
        for (int l = 0; l < layers; l++) {
            KvCache c = state.kv(l);
            if (c == null) continue;
            if (to > c.length(slot)) throw new IllegalStateException("slot " + slot + " holds " + c.length(slot) + " tokens, not " + to);
            int w = c.rowWidth();
            k[l] = Arrays.copyOfRange(c.keys(slot), from * w, to * w);
            v[l] = Arrays.copyOfRange(c.values(slot), from * w, to * w);
        }
        return new CachedKv(to - from, k, v);
    }

    /** Tokens {@code [from, to)} of these. */
    public CachedKv slice(int from, int to) {
        float[][] k = new float[keys.length][];
        float[][] v = new float[values.length][];
        for (int l = 0; l < keys.length; l++) {
            if (keys[l] == null) continue;
            int w = keys[l].length / tokens;
            k[l] = Arrays.copyOfRange(keys[l], from * w, to * w);
            v[l] = Arrays.copyOfRange(values[l], from * w, to * w);
        }
        return new CachedKv(to - from, k, v);
    }

    /** Appends these tokens to {@code slot}'s cache in every attention layer of {@code state}. */
    public void appendTo(CpuState state, int slot) {
        for (int l = 0; l < keys.length; l++) {
            KvCache c = state.kv(l);
            if (c == null) continue;
            c.append(slot, keys[l], values[l], 0, tokens);
        }
    }
}
