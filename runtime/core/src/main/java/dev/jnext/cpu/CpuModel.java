package dev.jnext.cpu;

import dev.jnext.JnextException;
import dev.jnext.cpu.ops.AttentionCore;
import dev.jnext.cpu.ops.CausalConv1d;
import dev.jnext.cpu.ops.GatedDeltaRule;
import dev.jnext.cpu.ops.GatedRmsNorm;
import dev.jnext.cpu.ops.GdnGating;
import dev.jnext.cpu.ops.RmsNorm;
import dev.jnext.cpu.ops.RotaryEmbedding;
import dev.jnext.cpu.ops.SparseMoe;
import dev.jnext.cpu.ops.SwiGluMlp;
import dev.jnext.model.GdnProjections;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.weights.Checkpoint;
import dev.jnext.model.weights.LayerWeights;
import dev.jnext.model.weights.Matrix;
import dev.jnext.model.weights.ModelWeights;
import dev.jnext.model.weights.Tensor;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The one implementation of {@link Qwen3NextModel}: the checkpoint's plain {@link ModelWeights} bound to the CPU
 * backend's blocks ({@link DecoderLayer}, {@link GatedAttention}, {@link GatedDeltaNet}, {@link FeedForward}) and
 * operations. The blocks hold views of the same mapped weights; nothing is copied but the small vectors.
 */
public final class CpuModel implements Qwen3NextModel {
    private final ModelWeights weights;
    private final RmsNorm finalNorm;
    private final List<DecoderLayer> layers;

    private CpuModel(ModelWeights weights) {
        this(weights, weights.layers());
    }

    /**
     * {@code weights} with {@code layers} bound in place of its own layer records (tests: a model without shared
     * experts, say); {@link #weights()} still answers the checkpoint's records.
     */
    CpuModel(ModelWeights weights, List<LayerWeights> layers) {
        this.weights = weights;
        ModelConfig c = weights.config();
        this.finalNorm = new RmsNorm(weights.finalNorm(), c.rmsNormEps());
        List<DecoderLayer> ls = new ArrayList<>();
        for (LayerWeights l : layers) ls.add(layer(c, l));
        this.layers = List.copyOf(ls);
    }

    /** Loads and binds the checkpoint in {@code dir} (see {@link Qwen3NextModel#load}). */
    public static CpuModel load(Path dir) {
        ModelWeights w = ModelWeights.load(dir);
        try {
            return new CpuModel(w);
        } catch (RuntimeException | Error e) {
            w.close();
            throw e;
        }
    }

    /** The CPU model behind {@code model}, which must come from {@link Qwen3NextModel#load}. */
    public static CpuModel of(Qwen3NextModel model) {
        if (model instanceof CpuModel m) return m;
        throw new JnextException("a " + (model == null ? "null" : model.getClass().getName())
                + " is not a model that jnext loaded: open it with Qwen3NextModel.load(dir)");
    }

    /**
     * One layer's records bound to the CPU blocks, shaped by {@code c} (the model's config, or a tensor-parallel rank's
     * {@code TpPlan.rankConfig()} for that rank's share of the records).
     */
    static DecoderLayer layer(ModelConfig c, LayerWeights l) {
        float eps = c.rmsNormEps();
        TokenMixer mixer = switch (l.mixer()) {
            case LayerWeights.DeltaNet g -> {
                GdnProjections proj = new GdnProjections(c.linearNumKeyHeads(), c.linearNumValueHeads(),
                        c.linearKeyHeadDim(), c.linearValueHeadDim());
                GdnInput input = switch (g.input()) {
                    case LayerWeights.GroupedInput gi -> new GdnInput.Grouped(gi.qkvz(), gi.ba(), proj);
                    case LayerWeights.SplitInput si -> new GdnInput.Split(si.qkv(), si.z(), si.b(), si.a());
                };
                yield new GatedDeltaNet(input, proj,
                        new CausalConv1d(proj.convDim(), c.linearConvKernelDim(), g.conv1d()),
                        new GdnGating(g.aLog(), g.dtBias()),
                        new GatedDeltaRule(proj.keyHeads(), proj.valueHeads(), proj.keyDim(), proj.valueDim()),
                        new GatedRmsNorm(g.norm(), eps), g.outProj());
            }
            case LayerWeights.Attention a -> new GatedAttention(a.qProj(), a.kProj(), a.vProj(), a.oProj(),
                    new RmsNorm(a.qNorm(), eps), new RmsNorm(a.kNorm(), eps),
                    new RotaryEmbedding(c.headDim(), c.rotaryDim(), c.ropeTheta()),
                    new AttentionCore(c.numAttentionHeads(), c.numKeyValueHeads(), c.headDim()));
        };
        FeedForward ffn = switch (l.feedForward()) {
            case LayerWeights.Mlp m -> new FeedForward.Dense(mlp(m));
            case LayerWeights.Moe m -> {
                List<SwiGluMlp> experts = new ArrayList<>(m.experts().size());
                for (LayerWeights.Mlp e : m.experts()) experts.add(mlp(e));
                yield new FeedForward.Moe(new SparseMoe(m.router(), experts, c.numExpertsPerTok(), c.normTopkProb(),
                        mlp(m.sharedExpert()), m.sharedGate()));
            }
        };
        return new DecoderLayer(l.index(), new RmsNorm(l.inputNorm(), eps), mixer,
                new RmsNorm(l.postAttentionNorm(), eps), ffn);
    }

    private static SwiGluMlp mlp(LayerWeights.Mlp m) {
        return new SwiGluMlp(m.gate(), m.up(), m.down());
    }

    @Override
    public ModelConfig config() {
        return weights.config();
    }

    /** The plain weights (what the CUDA backend reads). */
    public ModelWeights weights() {
        return weights;
    }

    /** The mapped files. */
    public Checkpoint checkpoint() {
        return weights.checkpoint();
    }

    /** model.embed_tokens.weight [vocab, H]. */
    public Tensor embedTokens() {
        return weights.embedTokens();
    }

    /** The final norm. */
    public RmsNorm finalNorm() {
        return finalNorm;
    }

    /** lm_head.weight [vocab, H] (the embedding when tied). */
    public Matrix lmHead() {
        return weights.lmHead();
    }

    /** The decoder layers bound to the CPU blocks. */
    public List<DecoderLayer> layers() {
        return layers;
    }

    @Override
    public void close() {
        weights.close();
    }

    @Override
    public String toString() {
        return "Qwen3NextModel[" + weights.checkpoint().dir() + ", " + layers.size() + " layers]";
    }
}
