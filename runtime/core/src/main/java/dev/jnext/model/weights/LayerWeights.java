package dev.jnext.model.weights;

import java.util.List;
import java.util.Objects;

/**
 * The weights of one decoder layer as the checkpoint holds them, named and shaped by the config: the two norms' weights,
 * the token mixer (gated attention or Gated DeltaNet) and the feed-forward half (sparse MoE or a dense MLP). Plain data
 * — views of the memory-mapped files ({@link Matrix}) and small copied vectors — with no compute: the CPU backend binds
 * them to its blocks, the CUDA backend packs them into its device image.
 *
 * @param index             the layer's index
 * @param inputNorm         {@code input_layernorm.weight} [H]
 * @param mixer             the token mixer's weights
 * @param postAttentionNorm {@code post_attention_layernorm.weight} [H]
 * @param feedForward       the feed-forward half's weights
 */
public record LayerWeights(int index, float[] inputNorm, Mixer mixer, float[] postAttentionNorm, FeedForward feedForward) {

    /** @throws NullPointerException naming a null part */
    public LayerWeights {
        Objects.requireNonNull(inputNorm, "inputNorm");
        Objects.requireNonNull(mixer, "mixer");
        Objects.requireNonNull(postAttentionNorm, "postAttentionNorm");
        Objects.requireNonNull(feedForward, "feedForward");
    }

    /** The token-mixing half of a layer. */
    public sealed interface Mixer permits Attention, DeltaNet {}

    /**
     * {@code self_attn.*}: q_proj [2·nh·hd, H] (query and gate rows interleaved per head), k_proj and v_proj
     * [nkv·hd, H], o_proj [H, nh·hd], q_norm and k_norm [hd].
     */
    public record Attention(Matrix qProj, Matrix kProj, Matrix vProj, Matrix oProj, float[] qNorm, float[] kNorm)
            implements Mixer {}

    /**
     * {@code linear_attn.*}: the input projections ({@link GroupedInput} in Qwen3-Next, {@link SplitInput} in Qwen3.5),
     * conv1d [conv_dim·K] (the [C, 1, K] tensor flattened; channels q | k | v in both layouts), A_log and dt_bias [Hv],
     * the gated norm's weight [dv], out_proj [H, Hv·dv].
     */
    public record DeltaNet(DeltaNetInput input, float[] conv1d, float[] aLog, float[] dtBias, float[] norm,
                           Matrix outProj) implements Mixer {
        /** @throws NullPointerException naming a null part */
        public DeltaNet {
            Objects.requireNonNull(input, "input");
        }

        /** Qwen3-Next's in_proj_qkvz. @throws IllegalStateException for the split (Qwen3.5) layout */
        public Matrix inProjQkvz() {
            return grouped().qkvz();
        }

        /** Qwen3-Next's in_proj_ba. @throws IllegalStateException for the split (Qwen3.5) layout */
        public Matrix inProjBa() {
            return grouped().ba();
        }

        private GroupedInput grouped() {
            if (input instanceof GroupedInput g) return g;
            throw new IllegalStateException("this Gated DeltaNet has split input projections (Qwen3.5), not in_proj_qkvz / in_proj_ba");
        }
    }

    /** How a Gated DeltaNet layer stores its input projections. */
    public sealed interface DeltaNetInput permits GroupedInput, SplitInput {}

    /**
     * Qwen3-Next: in_proj_qkvz [2·Hk·dk + 2·Hv·dv, H] and in_proj_ba [2·Hv, H], rows grouped per key head
     * ({@link dev.jnext.model.GdnProjections}).
     */
    public record GroupedInput(Matrix qkvz, Matrix ba) implements DeltaNetInput {}

    /**
     * Qwen3.5: in_proj_qkv [2·Hk·dk + Hv·dv, H] (all q | all k | all v: the conv's channel order), in_proj_z [Hv·dv, H],
     * in_proj_b and in_proj_a [Hv, H].
     */
    public record SplitInput(Matrix qkv, Matrix z, Matrix b, Matrix a) implements DeltaNetInput {}

    /** The token-wise half of a layer. */
    public sealed interface FeedForward permits Mlp, Moe {}

    /** A SwiGLU MLP: gate_proj and up_proj [I, H], down_proj [H, I] (a dense layer's, an expert's or the shared expert's). */
    public record Mlp(Matrix gate, Matrix up, Matrix down) implements FeedForward {
        /** I. */
        public int intermediate() {
            return gate.rows();
        }
    }

    /**
     * {@code mlp.*} of a sparse MoE layer: the router gate [E, H], the experts (per-expert or sliced from the fused
     * layout), the shared expert (of intermediate size 0 when the config has none) and its gate [1, H].
     */
    public record Moe(Matrix router, List<Mlp> experts, Mlp sharedExpert, Matrix sharedGate) implements FeedForward {
        /** Copies the expert list. */
        public Moe {
            experts = List.copyOf(experts);
        }
    }
}
