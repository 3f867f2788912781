package dev.jnext.model.tp;


import dev.jnext.model.ModelConfig;
import dev.jnext.model.weights.LayerWeights;
import dev.jnext.model.weights.Matrix;
import dev.jnext.model.weights.ModelWeights;
import dev.jnext.model.weights.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The weights one rank of a {@link TpPlan} holds, as the same plain records the unsharded model uses, shaped by
 * {@link TpPlan#rankConfig()}: row splits are views of the mapped checkpoint, column splits (o_proj, out_proj,
 * down_proj) and the conv channels are copies in the stored dtype, replicated parts are the same objects.
 *
 * @param plan        the split
 * @param rank        this rank, 0 ≤ rank &lt; plan.size()
 * @param embedTokens the whole embedding (replicated)
 * @param finalNorm   the final norm's weight (replicated)
 * @param lmHead      lm_head's rows {@code plan.vocab(rank)}
 * @param layers      every layer's share
 */
public record TpShard(TpPlan plan, int rank, Tensor embedTokens, float[] finalNorm, Matrix lmHead,
                      List<LayerWeights> layers) {

    /** Copies the layer list. */
    public TpShard {
        layers = List.copyOf(layers);
    }

    /** Rank {@code rank}'s share of {@code weights}. */
    public static TpShard of(TpPlan plan, ModelWeights weights, int rank) {
        return of(plan, weights, weights.layers(), rank);
    }

    /** Rank {@code rank}'s share of {@code weights} with {@code layers} in place of its own layer records. */
    public static TpShard of(TpPlan plan, ModelWeights weights, List<LayerWeights> layers, int rank) {
        List<LayerWeights> own = new ArrayList<>(layers.size());
        for (LayerWeights l : layers) own.add(layer(plan, l, rank));
        TpPlan.Range v = plan.vocab(rank);
        return new TpShard(plan, rank, weights.embedTokens(), weights.finalNorm(), weights.lmHead().rows(v.start(), v.count()),
                own);
    }

    /** The geometry this rank computes with. */
    public ModelConfig config() {
        return plan.rankConfig();
    }

    /** The first vocabulary id of this rank's logits. */
    public int vocabStart() {
        return plan.vocab(rank).start();
    }

    /** Rank {@code rank}'s share of one layer. */
    public static LayerWeights layer(TpPlan plan, LayerWeights l, int rank) {
        LayerWeights.Mixer mixer = switch (l.mixer()) {
            case LayerWeights.Attention a -> attention(plan, a, rank);
            case LayerWeights.DeltaNet g -> deltaNet(plan, g, rank);
        };
        LayerWeights.FeedForward ffn = switch (l.feedForward()) {
            case LayerWeights.Mlp m -> mlp(plan, m, rank, "intermediate_size");
            case LayerWeights.Moe m -> moe(plan, m, rank);
        };
        return new LayerWeights(l.index(), l.inputNorm(), mixer, l.postAttentionNorm(), ffn);
    }

    /** Query heads [query | gate] and o_proj's columns by head; k/v rows of the rank's KV heads; q/k norms replicated. */
    static LayerWeights.Attention attention(TpPlan plan, LayerWeights.Attention a, int rank) {
        int hd = plan.config().headDim();
        TpPlan.Range q = plan.attentionHeads(rank);
        TpPlan.Range kv = plan.kvHeads(rank);
        return new LayerWeights.Attention(
                a.qProj().rows(q.start() * 2 * hd, q.count() * 2 * hd),
                a.kProj().rows(kv.start() * hd, kv.count() * hd),
                a.vProj().rows(kv.start() * hd, kv.count() * hd),
                a.oProj().columns(q.start() * hd, q.count() * hd),
                a.qNorm(), a.kNorm());
    }

    /**
     * Whole key groups: their contiguous in_proj_qkvz rows [q_g | k_g | v_g | z_g] and in_proj_ba rows [b_g | a_g] (or,
     * for Qwen3.5's split projections, the same heads' rows of in_proj_qkv, in_proj_z, in_proj_b and in_proj_a), the
     * matching conv channels of each of the q, k and v parts, A_log and dt_bias of their value heads, out_proj's columns
     * of their value heads; the gated norm's weight replicated.
     */
    static LayerWeights.DeltaNet deltaNet(TpPlan plan, LayerWeights.DeltaNet g, int rank) {
        ModelConfig c = plan.config();
        int hk = c.linearNumKeyHeads();
        int dk = c.linearKeyHeadDim();
        int dv = c.linearValueHeadDim();
        int r = c.valueHeadsPerKeyHead();
        int kernel = c.linearConvKernelDim();
        TpPlan.Range keys = plan.keyHeads(rank);
        TpPlan.Range values = plan.valueHeads(rank);
        int group = 2 * dk + 2 * r * dv;
        int qk = keys.count() * dk;
        int vw = values.count() * dv;
        LayerWeights.DeltaNetInput input = switch (g.input()) {
            case LayerWeights.GroupedInput in -> new LayerWeights.GroupedInput(
                    in.qkvz().rows(keys.start() * group, keys.count() * group),
                    in.ba().rows(keys.start() * 2 * r, keys.count() * 2 * r));
            // Qwen3.5: in_proj_qkv's rows are [all q | all k | all v]; the rank's are its key heads' q and k rows and its
            // value heads' v rows, concatenated (a copy); in_proj_z, in_proj_b and in_proj_a by value head (views)
            case LayerWeights.SplitInput in -> new LayerWeights.SplitInput(
                    Matrix.concatRows(in.qkv().name() + "[rank " + rank + "]", List.of(
                            in.qkv().rows(keys.start() * dk, qk),
                            in.qkv().rows(hk * dk + keys.start() * dk, qk),
                            in.qkv().rows(2 * hk * dk + values.start() * dv, vw))),
                    in.z().rows(values.start() * dv, vw),
                    in.b().rows(values.start(), values.count()),
                    in.a().rows(values.start(), values.count()));
        };
        float[] conv = new float[(2 * qk + vw) * kernel];
        // channels [all q | all k | all v] of the whole model → the same three parts of this rank's key groups
        System.arraycopy(g.conv1d(), keys.start() * dk * kernel, conv, 0, qk * kernel);
        System.arraycopy(g.conv1d(), (hk * dk + keys.start() * dk) * kernel, conv, qk * kernel, qk * kernel);
        System.arraycopy(g.conv1d(), (2 * hk * dk + values.start() * dv) * kernel, conv, 2 * qk * kernel, vw * kernel);
        return new LayerWeights.DeltaNet(input, conv,
                Arrays.copyOfRange(g.aLog(), values.start(), values.end()),
                Arrays.copyOfRange(g.dtBias(), values.start(), values.end()),
                g.norm(),
                g.outProj().columns(values.start() * dv, vw));
    }

    /** Routed and shared experts split by their intermediate dimension; router and shared gate replicated. */
    static LayerWeights.Moe moe(TpPlan plan, LayerWeights.Moe m, int rank) {
        List<LayerWeights.Mlp> experts = new ArrayList<>(m.experts().size());
        for (LayerWeights.Mlp e : m.experts()) experts.add(mlp(plan, e, rank, "moe_intermediate_size"));
        LayerWeights.Mlp shared = m.sharedExpert().intermediate() == 0 ? m.sharedExpert()
                : mlp(plan, m.sharedExpert(), rank, "shared_expert_intermediate_size");
        return new LayerWeights.Moe(m.router(), experts, shared, m.sharedGate());
    }

    /** gate/up rows and down columns of the rank's share of the intermediate dimension. */
    static LayerWeights.Mlp mlp(TpPlan plan, LayerWeights.Mlp m, int rank, String what) {
        TpPlan.Range i = plan.intermediate(m.intermediate(), rank, what);
        return new LayerWeights.Mlp(m.gate().rows(i.start(), i.count()), m.up().rows(i.start(), i.count()),
                m.down().columns(i.start(), i.count()));
    }
}
