package dev.jnext.cuda;

import dev.jnext.cuda.WeightImage.Piece;
import dev.jnext.cuda.WeightImage.Target;
import dev.jnext.cuda.kernels.GpuSparseMoe;
import dev.jnext.model.GdnProjections;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.weights.LayerWeights.GroupedInput;
import dev.jnext.model.weights.LayerWeights.SplitInput;
import dev.jnext.model.weights.Matrix;
import dev.jnext.model.weights.ModelWeights;

import java.util.ArrayList;
import java.util.List;

/**
 * Where every weight of a model goes in its device image, with the fusions the kernels want done once at load: the
 * experts packed as {@code gate_up [E, 2I, H]} (gate rows then up rows) and {@code down [E, H, I]} whatever the
 * checkpoint's expert layout, the router and the shared-expert gate as one GEMM ({@link GpuSparseMoe#routerRows} rows),
 * k|v as one projection, gate|up of the dense and shared MLPs as one, lm_head padded to a multiple of 8 rows. All bf16
 * except A_log and dt_bias (fp32) — and, in a fine-grained FP8 checkpoint, the routed and shared experts, which stay in
 * 8 bits with their block scales beside them ({@link Fp8ExpertPlan}, {@link GpuSparseMoe.Fp8Scales}) for the FP8 kernels; every other FP8 weight is
 * dequantized to bf16 while it streams. Offsets are relative to the image's start.
 */
record ModelImage(WeightImage image, long embed, long finalNorm, long lmHead, int vocabStride,
                         List<LayerWeights> layers) {

    /** The mixer half of a layer. */
    public sealed interface MixerWeights permits GdnWeights, AttentionWeights {}

    /** in_proj_qkvz, in_proj_ba, conv1d [C, K], A_log and dt_bias (fp32), the gated norm's weight, out_proj. */
    public record GdnWeights(long qkvz, long ba, long conv, long aLog, long dtBias, long norm, long outProj)
            implements MixerWeights {}

    /** q_proj, k|v fused [2·nkv·hd, H], o_proj, q_norm, k_norm. */
    public record AttentionWeights(long q, long kv, long o, long qNorm, long kNorm) implements MixerWeights {}

    /** The feed-forward half of a layer. */
    public sealed interface FfnWeights permits MoeWeights, DenseWeights {}

    /**
     * Offsets of {@link GpuSparseMoe.Weights}; shared ones 0 when the block has no shared expert. {@code fp8}: null when the
     * experts are bf16; else gateUp, down, sharedGateUp and sharedDown hold e4m3 codes and these are their scales.
     */
    public record MoeWeights(long router, long gateUp, long down, long sharedGateUp, long sharedDown, GpuSparseMoe.Fp8Scales fp8)
            implements FfnWeights {}

    /** Whether some layer keeps its experts in FP8 (the MoE op then needs room for a bf16 copy on its prefill path). */
    public boolean fp8Experts() {
        return layers.stream().anyMatch(l -> l.ffn() instanceof MoeWeights m && m.fp8() != null);
    }

    /** A dense MLP: gate|up [2I, H], down [H, I]. */
    public record DenseWeights(long gateUp, long down, int inter) implements FfnWeights {}

    public record LayerWeights(long inputNorm, long postNorm, MixerWeights mixer, FfnWeights ffn) {}

    /** Plans the image of {@code model} (nothing is read from the checkpoint yet). */
    public static ModelImage of(ModelWeights model) {
        return of(model, false);
    }

    /**
     * Plans the image of {@code model}; with {@code quantizeExperts}, unquantized routed and shared experts are
     * block-quantized to FP8 while they stream ({@link Piece.Quantized}), as if the checkpoint had been published so.
     */
    public static ModelImage of(ModelWeights model, boolean quantizeExperts) {
        ModelConfig c = model.config();
        WeightImage img = new WeightImage();
        int h = c.hiddenSize();
        long embed = img.add("model.embed_tokens.weight", Target.BF16, new Piece.Stored(model.embedTokens().data(),
                model.embedTokens().dtype()));
        List<LayerWeights> layers = new ArrayList<>();
        for (dev.jnext.model.weights.LayerWeights layer : model.layers()) {
            String p = "model.layers." + layer.index() + ".";
            long in = img.add(p + "input_layernorm.weight", Target.BF16, new Piece.Floats(layer.inputNorm()));
            long post = img.add(p + "post_attention_layernorm.weight", Target.BF16,
                    new Piece.Floats(layer.postAttentionNorm()));
            MixerWeights mixer = switch (layer.mixer()) {
                case dev.jnext.model.weights.LayerWeights.DeltaNet g -> {
                    String a = p + "linear_attn.";
                    long qkvz, ba;
                    switch (g.input()) {
                        case GroupedInput gi -> {
                            qkvz = img.add(a + "in_proj_qkvz.weight", Target.BF16, Piece.of(gi.qkvz()));
                            ba = img.add(a + "in_proj_ba.weight", Target.BF16, Piece.of(gi.ba()));
                        }
                        case SplitInput si -> {
                            qkvz = img.add(a + "in_proj_qkv|in_proj_z (grouped)", Target.BF16, groupedQkvz(si, c));
                            ba = img.add(a + "in_proj_b|in_proj_a (grouped)", Target.BF16, groupedBa(si, c));
                        }
                    }
                    yield new GdnWeights(qkvz, ba,
                            img.add(a + "conv1d.weight", Target.BF16, new Piece.Floats(g.conv1d())),
                            img.add(a + "A_log", Target.F32, new Piece.Floats(g.aLog())),
                            img.add(a + "dt_bias", Target.F32, new Piece.Floats(g.dtBias())),
                            img.add(a + "norm.weight", Target.BF16, new Piece.Floats(g.norm())),
                            img.add(a + "out_proj.weight", Target.BF16, Piece.of(g.outProj())));
                }
                case dev.jnext.model.weights.LayerWeights.Attention at -> {
                    String a = p + "self_attn.";
                    yield new AttentionWeights(
                            img.add(a + "q_proj.weight", Target.BF16, Piece.of(at.qProj())),
                            img.add(a + "k_proj|v_proj", Target.BF16, Piece.of(at.kProj()), Piece.of(at.vProj())),
                            img.add(a + "o_proj.weight", Target.BF16, Piece.of(at.oProj())),
                            img.add(a + "q_norm.weight", Target.BF16, new Piece.Floats(at.qNorm())),
                            img.add(a + "k_norm.weight", Target.BF16, new Piece.Floats(at.kNorm())));
                }
            };
            FfnWeights ffn = switch (layer.feedForward()) {
                case dev.jnext.model.weights.LayerWeights.Moe m -> moe(img, p + "mlp.", m, h, quantizeExperts);
                case dev.jnext.model.weights.LayerWeights.Mlp d -> new DenseWeights(
                        img.add(p + "mlp.gate_proj|up_proj", Target.BF16, Piece.of(d.gate()), Piece.of(d.up())),
                        img.add(p + "mlp.down_proj.weight", Target.BF16, Piece.of(d.down())),
                        d.intermediate());
            };
            layers.add(new LayerWeights(in, post, mixer, ffn));
        }
        long finalNorm = img.add("model.norm.weight", Target.BF16, new Piece.Floats(model.finalNorm()));
        int vocab = c.vocabSize();
        int stride = (vocab + 7) / 8 * 8;
        Matrix lm = model.lmHead();
        long lmHead;
        if (lm.data().equals(model.embedTokens().data()) && stride == vocab) {
            lmHead = embed;    // tied and already a multiple of 8 rows: share the embedding's image
        } else {
            lmHead = img.add("lm_head.weight", Target.BF16, Piece.of(lm), new Piece.Zeros((long) (stride - vocab) * h));
        }
        return new ModelImage(img, embed, finalNorm, lmHead, stride, List.copyOf(layers));
    }

    /**
     * Qwen3.5's split in_proj_qkv [all q | all k | all v] and in_proj_z as Qwen3-Next's grouped in_proj_qkvz, which the
     * split/gating kernel reads: per key head g the rows q_g, k_g, v_g (value heads g·r .. g·r + r − 1) and z_g
     * ({@link GdnProjections}). A pure row permutation: the GEMM's outputs are the same numbers in the grouped order.
     */
    static List<Piece> groupedQkvz(SplitInput in, ModelConfig c) {
        GdnProjections proj = projections(c);
        int hk = proj.keyHeads(), dk = proj.keyDim(), rv = proj.ratio() * proj.valueDim();
        checkRows(in.qkv(), proj.convDim());
        checkRows(in.z(), proj.valueHeads() * proj.valueDim());
        List<Piece> rows = new ArrayList<>(4 * hk);
        for (int g = 0; g < hk; g++) {
            rows.add(Piece.rows(in.qkv(), g * dk, dk));
            rows.add(Piece.rows(in.qkv(), hk * dk + g * dk, dk));
            rows.add(Piece.rows(in.qkv(), 2 * hk * dk + g * rv, rv));
            rows.add(Piece.rows(in.z(), g * rv, rv));
        }
        return rows;
    }

    /** Qwen3.5's in_proj_b and in_proj_a [Hv, H] as Qwen3-Next's grouped in_proj_ba: per key head g, [b_g (r) | a_g (r)]. */
    static List<Piece> groupedBa(SplitInput in, ModelConfig c) {
        GdnProjections proj = projections(c);
        int r = proj.ratio();
        checkRows(in.b(), proj.valueHeads());
        checkRows(in.a(), proj.valueHeads());
        List<Piece> rows = new ArrayList<>(2 * proj.keyHeads());
        for (int g = 0; g < proj.keyHeads(); g++) {
            rows.add(Piece.rows(in.b(), g * r, r));
            rows.add(Piece.rows(in.a(), g * r, r));
        }
        return rows;
    }

    private static GdnProjections projections(ModelConfig c) {
        return new GdnProjections(c.linearNumKeyHeads(), c.linearNumValueHeads(), c.linearKeyHeadDim(), c.linearValueHeadDim());
    }

    private static void checkRows(Matrix m, int rows) {
        if (m.rows() != rows) throw new IllegalArgumentException(m.name() + ": " + m.rows() + " rows, expected " + rows);
    }

    private static MoeWeights moe(WeightImage img, String p, dev.jnext.model.weights.LayerWeights.Moe moe, int h,
                                  boolean quantize) {
        int e = moe.experts().size();
        boolean shared = moe.sharedExpert() != null && moe.sharedExpert().intermediate() > 0;
        int rows = GpuSparseMoe.routerRows(e, shared);
        List<Piece> router = new ArrayList<>();
        router.add(Piece.of(moe.router()));
        if (shared) router.add(Piece.of(moe.sharedGate()));
        router.add(new Piece.Zeros((long) (rows - e - (shared ? 1 : 0)) * h));
        long routerOff = img.add(p + "gate.weight|shared_expert_gate.weight", Target.BF16, router);
        Fp8ExpertPlan fp8 = quantize && Fp8ExpertPlan.unquantized(moe, shared) ? Fp8ExpertPlan.quantized(moe, shared)
                : Fp8ExpertPlan.of(moe, shared);
        if (fp8 != null) return fp8.add(img, p, routerOff);
        List<Piece> gateUp = new ArrayList<>(2 * e);
        List<Piece> down = new ArrayList<>(e);
        for (dev.jnext.model.weights.LayerWeights.Mlp x : moe.experts()) {
            gateUp.add(Piece.of(x.gate()));
            gateUp.add(Piece.of(x.up()));
            down.add(Piece.of(x.down()));
        }
        long gu = img.add(p + "experts.gate_up", Target.BF16, gateUp);
        long dn = img.add(p + "experts.down", Target.BF16, down);
        long sgu = 0, sd = 0;
        if (shared) {
            sgu = img.add(p + "shared_expert.gate_proj|up_proj", Target.BF16, Piece.of(moe.sharedExpert().gate()),
                    Piece.of(moe.sharedExpert().up()));
            sd = img.add(p + "shared_expert.down_proj.weight", Target.BF16, Piece.of(moe.sharedExpert().down()));
        }
        return new MoeWeights(routerOff, gu, dn, sgu, sd, null);
    }
}
