package dev.jnext.model.tp;

import dev.jnext.JnextException;
import dev.jnext.model.LayerType;
import dev.jnext.model.ModelConfig;

import java.util.ArrayList;
import java.util.List;

/**
 * How a Qwen3-Next model splits over {@code size} tensor-parallel ranks, as sglang does it (plain arithmetic on the
 * config; {@link TpShard} applies it to the weight records):
 *
 * <ul>
 *   <li>full attention: query heads split evenly (q_proj's rows per head [query | gate] follow their head); KV heads
 *       split when {@code size} divides them, replicated ({@code size / nkv} ranks per KV head, rank r holding head
 *       {@code r / (size / nkv)}) when {@code nkv} divides {@code size}; o_proj split by its input columns, an
 *       all-reduce after it;</li>
 *   <li>Gated DeltaNet: whole key groups per rank (the interleaved in_proj_qkvz rows [q_g | k_g | v_g | z_g] and
 *       in_proj_ba rows [b_g | a_g] of key head g are contiguous), their value heads, conv channels, A_log, dt_bias
 *       and recurrent state with them; the gated norm's weight [dv] replicated; out_proj split by its input columns,
 *       an all-reduce after it. Key heads are never replicated (sglang's {@code num_k_heads // tp_size});</li>
 *   <li>MoE: every routed expert's and the shared expert's intermediate dimension split (gate/up rows, down
 *       columns); the router and the shared-expert gate replicated (every rank routes identically); one all-reduce
 *       after the block (routed + gated shared partial sums). A dense MLP the same;</li>
 *   <li>lm_head split by vocabulary ({@code ceil(V / size)} rows per rank, the last rank fewer), the logits gathered
 *       before sampling; the embedding, the norms and the RoPE tables replicated.</li>
 * </ul>
 *
 * Per rank and layer that is two all-reduces of [tokens, H] (after the mixer and after the feed-forward half) and one
 * gather of [rows, V] logits per step.
 *
 * @param config the whole model's config
 * @param size   N, the number of ranks
 */
public record TpPlan(ModelConfig config, int size) {

    /** [start, start + count) of some dimension. */
    public record Range(int start, int count) {
        /** start + count. */
        public int end() {
            return start + count;
        }
    }

    /** Checks that {@code config}'s geometry splits over {@code size} ranks. */
    public TpPlan {
        check(config, size);
    }

    /**
     * The plan of {@code config} over {@code size} ranks.
     *
     * @throws JnextException naming the config field that {@code size} cannot split
     */
    public static TpPlan of(ModelConfig config, int size) {
        return new TpPlan(config, size);
    }

    private static void check(ModelConfig c, int n) {
        if (n < 1) throw new JnextException("tensor parallelism: the number of ranks must be >= 1, got " + n);
        List<String> problems = new ArrayList<>();
        if (hasAttention(c)) {
            if (c.numAttentionHeads() % n != 0) {
                problems.add("num_attention_heads (" + c.numAttentionHeads() + ") is not divisible by " + n);
            }
            int kv = c.numKeyValueHeads();
            if (kv % n != 0 && n % kv != 0) {
                problems.add("num_key_value_heads (" + kv + ") neither divides into " + n
                        + " ranks nor replicates over them (" + n + " is not a multiple of " + kv + ")");
            }
        }
        if (hasDeltaNet(c) && c.linearNumKeyHeads() % n != 0) {
            problems.add("linear_num_key_heads (" + c.linearNumKeyHeads() + ") is not divisible by " + n
                    + " (each rank takes whole key groups with their value heads; key heads are not replicated)");
        }
        if (hasMoe(c)) {
            if (c.moeIntermediateSize() % n != 0) {
                problems.add("moe_intermediate_size (" + c.moeIntermediateSize() + ") is not divisible by " + n);
            }
            if (c.sharedExpertIntermediateSize() % n != 0) {
                problems.add("shared_expert_intermediate_size (" + c.sharedExpertIntermediateSize()
                        + ") is not divisible by " + n);
            }
        }
        if (hasDense(c) && c.intermediateSize() % n != 0) {
            problems.add("intermediate_size (" + c.intermediateSize() + ") is not divisible by " + n);
        }
        if (n > c.vocabSize()) problems.add("vocab_size (" + c.vocabSize() + ") is smaller than " + n);
        if (!problems.isEmpty()) {
            throw new JnextException("tensor parallelism over " + n + " ranks does not fit this model: "
                    + String.join("; ", problems));
        }
    }

    // ---- the split of each dimension ---------------------------------------------------------------------------

    /** Query heads of {@code rank} (of every full-attention layer). */
    public Range attentionHeads(int rank) {
        return even(config.numAttentionHeads(), rank);
    }

    /** Ranks that hold each KV head: 1 when the KV heads split, {@code size / nkv} when they are replicated. */
    public int kvReplicas() {
        return Math.max(1, size / config.numKeyValueHeads());
    }

    /** KV heads of {@code rank}: its even share, or the one head its query heads read when replicated. */
    public Range kvHeads(int rank) {
        checkRank(rank);
        int kv = config.numKeyValueHeads();
        return kv >= size ? even(kv, rank) : new Range(rank / kvReplicas(), 1);
    }

    /** Gated DeltaNet key heads (key groups) of {@code rank}. */
    public Range keyHeads(int rank) {
        return even(config.linearNumKeyHeads(), rank);
    }

    /** Gated DeltaNet value heads of {@code rank}: those of its key groups. */
    public Range valueHeads(int rank) {
        Range k = keyHeads(rank);
        int r = config.valueHeadsPerKeyHead();
        return new Range(k.start() * r, k.count() * r);
    }

    /** The vocabulary rows of lm_head that {@code rank} holds: ceil(V / size) each, the last rank the rest. */
    public Range vocab(int rank) {
        checkRank(rank);
        int v = config.vocabSize();
        int per = (v + size - 1) / size;
        int start = Math.min(v, rank * per);
        return new Range(start, Math.min(v, start + per) - start);
    }

    /** The largest vocabulary shard (rank 0's). */
    public int vocabPerRank() {
        return vocab(0).count();
    }

    /**
     * The share of {@code rank} of an intermediate (expert, shared-expert or dense MLP) dimension of {@code total}
     * columns, named {@code what} in the error.
     *
     * @throws JnextException when {@code size} does not divide {@code total}
     */
    public Range intermediate(int total, int rank, String what) {
        if (total % size != 0) {
            throw new JnextException("tensor parallelism over " + size + " ranks: " + what + " (" + total
                    + ") is not divisible by " + size);
        }
        return even(total, rank);
    }

    /**
     * The geometry every rank computes with: the same config with its share of the heads and intermediate sizes
     * (KV heads at least 1); the vocabulary stays whole (the embedding is replicated; lm_head's rows are
     * {@link #vocab}). A field that no layer of the model uses keeps its value.
     */
    public ModelConfig rankConfig() {
        ModelConfig c = config;
        boolean attn = hasAttention(c);
        boolean gdn = hasDeltaNet(c);
        boolean moe = hasMoe(c);
        return new ModelConfig(c.vocabSize(), c.hiddenSize(),
                hasDense(c) ? c.intermediateSize() / size : c.intermediateSize(),
                c.numHiddenLayers(),
                attn ? c.numAttentionHeads() / size : c.numAttentionHeads(),
                attn ? Math.max(1, c.numKeyValueHeads() / size) : c.numKeyValueHeads(),
                c.headDim(),
                gdn ? c.linearNumKeyHeads() / size : c.linearNumKeyHeads(),
                gdn ? c.linearNumValueHeads() / size : c.linearNumValueHeads(),
                c.linearKeyHeadDim(), c.linearValueHeadDim(), c.linearConvKernelDim(), c.numExperts(),
                c.numExpertsPerTok(),
                moe ? c.moeIntermediateSize() / size : c.moeIntermediateSize(),
                moe ? c.sharedExpertIntermediateSize() / size : c.sharedExpertIntermediateSize(),
                c.decoderSparseStep(), c.mlpOnlyLayers(), c.normTopkProb(), c.layerTypes(), c.ropeTheta(),
                c.partialRotaryFactor(), c.rmsNormEps(), c.maxPositionEmbeddings(), c.tieWordEmbeddings(), c.dtype(),
                c.bosTokenId(), c.eosTokenIds(), c.family(), c.multimodal(), c.mropeSection(), c.mropeInterleaved(),
                c.quantization());
    }

    // ---- helpers -------------------------------------------------------------------------------------------------

    private Range even(int total, int rank) {
        checkRank(rank);
        int per = total / size;
        return new Range(rank * per, per);
    }

    private void checkRank(int rank) {
        if (rank < 0 || rank >= size) throw new IllegalArgumentException("rank " + rank + " of " + size);
    }

    static boolean hasAttention(ModelConfig c) {
        return c.countLayers(LayerType.FULL_ATTENTION) > 0;
    }

    static boolean hasDeltaNet(ModelConfig c) {
        return c.countLayers(LayerType.LINEAR_ATTENTION) > 0;
    }

    static boolean hasMoe(ModelConfig c) {
        return countMoe(c) > 0;
    }

    static boolean hasDense(ModelConfig c) {
        return countMoe(c) < c.numHiddenLayers();
    }

    /** MoE layers of the model. */
    static int countMoe(ModelConfig c) {
        int n = 0;
        for (int i = 0; i < c.numHiddenLayers(); i++) if (c.isMoeLayer(i)) n++;
        return n;
    }
}
