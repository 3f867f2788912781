package dev.jnext.cpu;

import dev.jnext.cpu.ops.Linear;
import dev.jnext.cpu.ops.RmsNorm;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.tp.TpPlan;
import dev.jnext.model.tp.TpShard;
import dev.jnext.model.weights.LayerWeights;
import dev.jnext.model.weights.ModelWeights;
import dev.jnext.model.weights.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * Tensor parallelism emulated on the CPU: N virtual ranks, each running the CPU blocks of {@link CpuForward} on its
 * {@link TpShard} with its own {@link CpuState} (its KV heads, its GDN heads' conv and recurrent state), joined the
 * way the GPUs will be — a sum over the ranks in rank order where NCCL all-reduces (after every token mixer and every
 * feed-forward half), a concatenation of the vocabulary shards where the logits are gathered. The ranks run one after
 * the other on the calling thread's fork-join pool, like {@link CpuForward}.
 *
 * <p>At N = 1 it runs exactly the operations of {@link CpuForward} (the one partial sum is the sum), so the logits are
 * bitwise equal. At N &gt; 1 every reduced dot product (o_proj, out_proj, down_proj, the MoE combination) is summed in
 * another order, which is the only difference.
 */
public final class TensorParallelEmulation {

    /** One rank: its plan share bound to the CPU blocks. */
    private record Rank(TpShard shard, List<DecoderLayer> layers, RmsNorm finalNorm) {}

    /** The state of every rank for the same slots. */
    public static final class State {
        private final CpuState[] ranks;

        private State(CpuState[] ranks) {
            this.ranks = ranks;
        }

        /** Takes the same free slot on every rank. */
        public int allocate() {
            int slot = ranks[0].allocate();
            for (int r = 1; r < ranks.length; r++) {
                int s = ranks[r].allocate();
                if (s != slot) throw new IllegalStateException("rank " + r + " allocated slot " + s + ", rank 0 " + slot);
            }
            return slot;
        }

        /** Frees the slot on every rank. */
        public void release(int slot) {
            for (CpuState s : ranks) s.release(slot);
        }
    }

    private final ModelConfig config;
    private final TpPlan plan;
    private final List<Rank> ranks = new ArrayList<>();

    /** N ranks over the checkpoint's own layer records. */
    public TensorParallelEmulation(ModelWeights weights, int n) {
        this(weights, weights.layers(), n);
    }

    /** N ranks over {@code layers} (records derived from {@code weights}' checkpoint, e.g. without shared experts). */
    public TensorParallelEmulation(ModelWeights weights, List<LayerWeights> layers, int n) {
        this.config = weights.config();
        this.plan = TpPlan.of(config, n);
        ModelConfig rc = plan.rankConfig();
        for (int r = 0; r < n; r++) {
            TpShard shard = TpShard.of(plan, weights, layers, r);
            List<DecoderLayer> blocks = new ArrayList<>();
            for (LayerWeights l : shard.layers()) blocks.add(CpuModel.layer(rc, l));
            ranks.add(new Rank(shard, List.copyOf(blocks), new RmsNorm(shard.finalNorm(), rc.rmsNormEps())));
        }
    }

    /** The split. */
    public TpPlan plan() {
        return plan;
    }

    /** State for {@code slots} sequences on every rank. */
    public State newState(int slots) {
        CpuState[] s = new CpuState[ranks.size()];
        for (int r = 0; r < s.length; r++) s[r] = new CpuState(plan.rankConfig(), slots);
        return new State(s);
    }

    /** As {@link CpuForward#forward}: per input the logits of every new token, or of its last one. */
    public List<float[]> forward(State state, List<CpuForward.SequenceInput> inputs, boolean allLogits) {
        int h = config.hiddenSize();
        int vocab = config.vocabSize();
        List<SequenceSpan> spans = new ArrayList<>();
        int rows = 0;
        for (CpuForward.SequenceInput in : inputs) {
            for (CpuState s : state.ranks) s.checkSlot(in.slot());
            spans.add(new SequenceSpan(in.slot(), rows, in.tokens().length, state.ranks[0].position(in.slot())));
            rows += in.tokens().length;
        }
        // the embedding is replicated: every rank looks up the same rows, so one copy of x stands for all of them
        float[] x = new float[rows * h];
        Tensor embed = ranks.get(0).shard().embedTokens();
        for (int i = 0; i < inputs.size(); i++) {
            int[] tokens = inputs.get(i).tokens();
            for (int t = 0; t < tokens.length; t++) {
                Tensor.copyToFloats(embed.data(), embed.dtype(), (long) tokens[t] * h, x, (spans.get(i).firstRow() + t) * h, h);
            }
        }
        int n = ranks.size();
        float[][] partial = new float[n][];
        for (int l = 0; l < config.numHiddenLayers(); l++) {
            for (int r = 0; r < n; r++) {
                DecoderLayer layer = ranks.get(r).layers().get(l);
                float[] normed = layer.inputNorm().forward(x, rows);
                partial[r] = new float[x.length];
                layer.mixer().forward(normed, rows, spans, state.ranks[r], l, partial[r]);
            }
            add(x, allReduce(partial));
            for (int r = 0; r < n; r++) {
                DecoderLayer layer = ranks.get(r).layers().get(l);
                float[] normed = new float[x.length];
                layer.postAttentionNorm().forward(x, 0, rows, normed, 0);
                partial[r] = new float[x.length];
                layer.feedForward().forward(normed, rows, partial[r]);
            }
            add(x, allReduce(partial));
        }
        for (SequenceSpan s : spans) for (CpuState st : state.ranks) st.advance(s.slot(), s.rows());

        int outRows = allLogits ? rows : spans.size();
        float[] logits = new float[Math.multiplyExact(outRows, vocab)];
        for (Rank rank : ranks) {
            float[] normed = new float[outRows * h];
            if (allLogits) {
                rank.finalNorm().forward(x, 0, rows, normed, 0);
            } else {
                for (int i = 0; i < spans.size(); i++) {
                    SequenceSpan s = spans.get(i);
                    rank.finalNorm().forward(x, (s.firstRow() + s.rows() - 1) * h, 1, normed, i * h);
                }
            }
            int v = rank.shard().lmHead().rows();
            float[] part = new float[outRows * v];
            Linear.forward(rank.shard().lmHead(), normed, 0, outRows, part, 0);
            // the gather: rank r's columns [vocabStart, vocabStart + v) of every row
            for (int t = 0; t < outRows; t++) System.arraycopy(part, t * v, logits, t * vocab + rank.shard().vocabStart(), v);
        }
        List<float[]> out = new ArrayList<>(spans.size());
        for (int i = 0; i < spans.size(); i++) {
            SequenceSpan s = spans.get(i);
            int from = allLogits ? s.firstRow() : i;
            int k = allLogits ? s.rows() : 1;
            float[] part = new float[k * vocab];
            System.arraycopy(logits, from * vocab, part, 0, k * vocab);
            out.add(part);
        }
        return out;
    }

    /** The all-reduce: rank 0's partial sums plus every other rank's, in rank order (rank 0's array at N = 1). */
    static float[] allReduce(float[][] partial) {
        float[] sum = partial[0];
        for (int r = 1; r < partial.length; r++) {
            float[] p = partial[r];
            for (int i = 0; i < sum.length; i++) sum[i] += p[i];
        }
        return sum;
    }

    private static void add(float[] x, float[] m) {
        for (int i = 0; i < x.length; i++) x[i] += m[i];
    }
}
