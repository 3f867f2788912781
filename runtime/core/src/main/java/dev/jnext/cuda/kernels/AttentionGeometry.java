package dev.jnext.cuda.kernels;

/**
 * Head geometry of a full-attention layer as the attention kernels see it: query heads, KV heads (GQA group
 * {@code heads / kvHeads}, at most 16), head size (32, 64, 128 or 256; 256 is the tuned one) and rotary dims.
 * Qwen3-Next-80B: 16, 2, 256, 64.
 */
public record AttentionGeometry(int heads, int kvHeads, int headDim, int rotaryDim) {
    public static final int MAX_GROUP = 16;

    public AttentionGeometry {
        if (heads < 1 || kvHeads < 1 || heads % kvHeads != 0) {
            throw new IllegalArgumentException("attention: heads (" + heads + ") must be a positive multiple of kvHeads (" + kvHeads + ")");
        }
        if (heads / kvHeads > MAX_GROUP) {
            throw new IllegalArgumentException("attention: at most " + MAX_GROUP + " query heads per KV head, got " + heads / kvHeads);
        }
        if (headDim != 32 && headDim != 64 && headDim != 128 && headDim != 256) {
            throw new IllegalArgumentException("attention: head_dim must be 32, 64, 128 or 256, got " + headDim);
        }
        if (rotaryDim < 0 || rotaryDim > headDim || rotaryDim % 2 != 0) {
            throw new IllegalArgumentException("attention: rotary dims must be even and within head_dim " + headDim + ", got " + rotaryDim);
        }
    }

    /** Query heads per KV head. */
    public int group() {
        return heads / kvHeads;
    }

    /** hd^-½ · log2(e): the kernels' score scale in the log2 domain. */
    public float scaleLog2() {
        return (float) (Math.pow(headDim, -0.5) / Math.log(2));
    }
}
