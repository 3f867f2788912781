package dev.jnext.model.tp;

import dev.jnext.model.LayerType;
import dev.jnext.model.ModelConfig;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What one rank of a {@link TpPlan} holds on its GPU, in the CUDA runner's storage types: every weight in bf16 but
 * A_log and dt_bias (fp32), KV cache in bf16, GDN conv state in bf16 and recurrent state in fp32. Weights are those of
 * rank 0 (the largest vocabulary shard); the runner's image adds at most 7 zero rows to lm_head and to each router
 * GEMM, which this leaves out. Items are named like the runner's {@code MemoryPlan} items ("weights", "KV cache",
 * "GDN state") so that a TP runner can add them as they are.
 *
 * @param plan                the split
 * @param embedding           model.embed_tokens (replicated)
 * @param lmHead              lm_head's vocabulary shard (0 when tied: the replicated embedding serves)
 * @param attention           every full-attention layer's share (q/k/v/o projections, q/k norms)
 * @param deltaNet            every Gated DeltaNet layer's share (in_proj_qkvz/ba, conv, A_log, dt_bias, norm, out_proj)
 * @param routedExperts       every MoE layer's routed experts' share (gate, up, down)
 * @param sharedExperts       every MoE layer's shared expert's share
 * @param routers             every MoE layer's router and shared-expert gate (replicated)
 * @param denseMlps           every dense layer's MLP share
 * @param norms               input/post-attention norms of every layer and the final norm (replicated)
 * @param kvBytesPerToken     KV cache of one token over all full-attention layers on this rank
 * @param gdnBytesPerSequence conv and recurrent state of one sequence over all GDN layers on this rank
 */
public record TpMemory(TpPlan plan, long embedding, long lmHead, long attention, long deltaNet, long routedExperts,
                       long sharedExperts, long routers, long denseMlps, long norms, long kvBytesPerToken,
                       long gdnBytesPerSequence) {

    private static final long BF16 = 2;
    private static final long F32 = 4;

    /** The bytes of one rank of {@code plan}. */
    public static TpMemory of(TpPlan plan) {
        ModelConfig c = plan.config();
        ModelConfig r = plan.rankConfig();
        long h = c.hiddenSize();
        int attnLayers = c.countLayers(LayerType.FULL_ATTENTION);
        int gdnLayers = c.countLayers(LayerType.LINEAR_ATTENTION);
        int moeLayers = TpPlan.countMoe(c);
        int denseLayers = c.numHiddenLayers() - moeLayers;

        long embedding = BF16 * c.vocabSize() * h;
        long lmHead = c.tieWordEmbeddings() ? 0 : BF16 * plan.vocabPerRank() * h;

        long hd = r.headDim();
        long nh = r.numAttentionHeads();
        long kv = r.numKeyValueHeads();
        long attentionLayer = BF16 * (nh * 2 * hd * h + 2 * kv * hd * h + h * nh * hd + 2 * hd);

        long hk = r.linearNumKeyHeads();
        long hv = r.linearNumValueHeads();
        long dk = r.linearKeyHeadDim();
        long dv = r.linearValueHeadDim();
        long kernel = r.linearConvKernelDim();
        long convDim = 2 * hk * dk + hv * dv;
        long gdnLayer = BF16 * ((2 * hk * dk + 2 * hv * dv) * h + 2 * hv * h + convDim * kernel + dv + h * hv * dv)
                + F32 * 2 * hv;

        long routed = BF16 * c.numExperts() * 3L * r.moeIntermediateSize() * h;
        long shared = BF16 * 3L * r.sharedExpertIntermediateSize() * h;
        long router = BF16 * ((long) c.numExperts() + 1) * h;
        long dense = BF16 * 3L * r.intermediateSize() * h;
        long norms = BF16 * (2L * c.numHiddenLayers() + 1) * h;

        long kvPerToken = attnLayers * 2 * kv * hd * BF16;
        long gdnPerSequence = gdnLayers * (BF16 * convDim * (kernel - 1) + F32 * hv * dk * dv);
        return new TpMemory(plan, embedding, lmHead, attnLayers * attentionLayer, gdnLayers * gdnLayer,
                moeLayers * routed, moeLayers * shared, moeLayers * router, denseLayers * dense, norms, kvPerToken,
                gdnPerSequence);
    }

    /** All weights of the rank. */
    public long weights() {
        return embedding + lmHead + attention + deltaNet + routedExperts + sharedExperts + routers + denseMlps + norms;
    }

    /** The weights by part, in bytes (for a log line or a table). */
    public Map<String, Long> weightParts() {
        Map<String, Long> m = new LinkedHashMap<>();
        m.put("embedding", embedding);
        m.put("lm_head", lmHead);
        m.put("attention", attention);
        m.put("GDN", deltaNet);
        m.put("routed experts", routedExperts);
        m.put("shared experts", sharedExperts);
        m.put("routers", routers);
        m.put("dense MLPs", denseMlps);
        m.put("norms", norms);
        return m;
    }

    /** Bytes left for KV cache, GDN state, activations and scratch on a GPU with {@code deviceBytes} free (may be negative). */
    public long headroom(long deviceBytes) {
        return deviceBytes - weights();
    }
}
