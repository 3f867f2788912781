package dev.jnext.model;

/**
 * What a configuration's text model weighs, from the config alone: parameters (all, and those one token reads), the
 * weights in bf16 (what one GPU holds for them), and the per-sequence state (Gated DeltaNet recurrent state in fp32,
 * conv state) and per-token KV cache (bf16) of the full-attention layers.
 *
 * @param parameters        every parameter of the text model (embedding, layers, final norm, LM head unless tied)
 * @param activeParameters  the parameters less the routed experts a token does not use (all but top-k per MoE
 *                          layer; the embedding and the LM head counted in full)
 * @param weightBytesBf16   parameters × 2
 * @param stateBytesPerSequence recurrent state (fp32) and conv state (bf16) of every Gated DeltaNet layer
 * @param kvBytesPerToken   keys and values (bf16) of every full-attention layer
 * @param weightBytesFp8Experts the weights with the routed and shared experts in FP8 (one byte a weight, one fp32 scale a
 *                          128 × 128 block) and the rest in bf16: what the CUDA backend holds for an FP8 checkpoint or
 *                          {@code --quantize fp8}
 */
public record ModelSize(long parameters, long activeParameters, long weightBytesBf16, long stateBytesPerSequence,
                        long kvBytesPerToken, long weightBytesFp8Experts) {

    /** The sizes of {@code c}'s text model. */
    public static ModelSize of(ModelConfig c) {
        long h = c.hiddenSize();
        long v = c.vocabSize();
        long total = v * h + h + (c.tieWordEmbeddings() ? 0 : v * h);
        long inactive = 0;
        long experts = 0, expertScales = 0;
        long state = 0;
        long kv = 0;
        long hv = c.linearNumValueHeads();
        long dk = c.linearKeyHeadDim();
        long dv = c.linearValueHeadDim();
        long conv = c.convDim();
        long k = c.linearConvKernelDim();
        long nh = c.numAttentionHeads();
        long nkv = c.numKeyValueHeads();
        long hd = c.headDim();
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            total += 2 * h;
            if (c.layerType(i) == LayerType.LINEAR_ATTENTION) {
                // in_proj_qkvz + in_proj_ba, or in_proj_qkv + z + b + a: the same rows
                total += (conv + hv * dv + 2 * hv) * h + conv * k + 2 * hv + dv + h * hv * dv;
                state += hv * dk * dv * 4 + conv * (k - 1) * 2;
            } else {
                total += nh * hd * 2 * h + 2 * nkv * hd * h + h * nh * hd + 2 * hd;
                kv += 2 * nkv * hd * 2;
            }
            if (c.isMoeLayer(i)) {
                long e = c.numExperts();
                long expert = 3L * c.moeIntermediateSize() * h;
                long mi = c.moeIntermediateSize(), si = c.sharedExpertIntermediateSize();
                total += e * h + e * expert + 3L * si * h + h;
                inactive += (e - c.numExpertsPerTok()) * expert;
                experts += e * expert + 3L * si * h;
                // gate and up blocked separately (the hub's files), down whole; likewise the shared expert's
                expertScales += 4L * (e * blocks(mi, h) * 3 + (si > 0 ? 3L * blocks(si, h) : 0));
            } else {
                total += 3L * c.intermediateSize() * h;
            }
        }
        return new ModelSize(total, total - inactive, total * 2, state, kv, total * 2 - experts + expertScales);
    }

    /** 128 × 128 blocks of an {@code a × b} matrix. */
    private static long blocks(long a, long b) {
        return ((a + 127) / 128) * ((b + 127) / 128);
    }
}
