package dev.jnext.cuda;

import dev.jnext.cpu.ops.GatedDeltaRule;
import dev.jnext.cuda.ForwardPlan.Op;
import dev.jnext.cuda.ForwardPlan.Role;
import dev.jnext.cuda.ModelImage.AttentionWeights;
import dev.jnext.cuda.ModelImage.DenseWeights;
import dev.jnext.cuda.ModelImage.GdnWeights;
import dev.jnext.cuda.ModelImage.LayerWeights;
import dev.jnext.cuda.ModelImage.MoeWeights;
import dev.jnext.cuda.kernels.CausalConv1dKernel;
import dev.jnext.cuda.kernels.ChunkedDeltaRuleKernel;
import dev.jnext.cuda.kernels.DType;
import dev.jnext.cuda.kernels.DeviceTensor;
import dev.jnext.cuda.kernels.EmbeddingKernel;
import dev.jnext.cuda.kernels.GatedAttentionCore;
import dev.jnext.cuda.kernels.GatedDeltaRuleDecodeKernel;
import dev.jnext.cuda.kernels.GatedRmsNormKernel;
import dev.jnext.cuda.kernels.GdnSplitGatingKernel;
import dev.jnext.cuda.kernels.GpuSparseMoe;
import dev.jnext.cuda.kernels.RmsNormKernel;
import dev.jnext.cuda.kernels.SiluMulKernel;
import dev.jnext.cuda.kernels.StepShape;
import dev.jnext.gpu.Stream;
import dev.jnext.model.GdnProjections;
import dev.jnext.model.ModelConfig;

import java.util.ArrayList;
import java.util.List;

/**
 * Builds a runner's {@link ForwardPlan} once from the model's layers (a switch over the sealed mixer and feed-forward
 * types of its {@link ModelImage}), every operation bound to the device addresses of its weights and activations, and
 * the lm_head that follows the plan. Host-side only: nothing is launched while building.
 */
final class PlanBuilder {

    /** The lm_head: gathers a step's logits rows from the final-normed activations and projects them to the vocabulary. */
    @FunctionalInterface
    interface Head {
        /** Enqueues the head over the first {@code rows} logits rows of a step of {@code shape}. */
        void enqueue(Stream stream, StepShape shape, int rows);
    }

    private final RunnerResources r;
    private final ModelConfig config;
    private final Activations acts;
    private final DeviceWeights weights;

    private PlanBuilder(RunnerResources r) {
        this.r = r;
        this.config = r.config;
        this.acts = r.acts;
        this.weights = r.weights;
    }

    /** The forward plan of {@code r}'s model: embedding, every layer's mixer and feed-forward, the final norm. */
    static ForwardPlan plan(RunnerResources r) {
        return new PlanBuilder(r).build();
    }

    /** The lm_head of {@code r}'s model, reading the logits rows that the step metadata names. */
    static Head head(RunnerResources r) {
        Activations acts = r.acts;
        int h = r.config.hiddenSize();
        // the step's logits rows gathered out of the final-normed activations: the table is h, valid up to the step's tokens
        EmbeddingKernel.Args gather = new EmbeddingKernel.Args(acts.tensor("h", acts.h, DType.BF16, acts.maxTokens(), h),
                DeviceTensor.of("logit_rows", r.meta.logitRows(), DType.I32, r.meta.maxLogitRows()),
                acts.tensor("gathered", acts.gathered, DType.BF16, acts.maxLogitRows(), h));
        long gathered = gather.out().address(), lmHead = r.weights.at(r.image.lmHead()), logits = acts.at(acts.logits);
        return (s, shape, rows) -> {
            r.embedding.launch(s, gather, rows, shape.tokens());
            r.gemm.matmul(s, gathered, lmHead, logits, rows, r.image.vocabStride(), h);
        };
    }

    private ForwardPlan build() {
        List<Op> ops = new ArrayList<>();
        int h = config.hiddenSize();
        float eps = config.rmsNormEps();
        long hn = acts.at(acts.h), delta = acts.at(acts.delta);
        int vocab = config.vocabSize();
        DeviceTensor xT = rows("x", acts.x, DType.BF16, h), hT = rows("h", acts.h, DType.BF16, h);
        DeviceTensor deltaT = rows("delta", acts.delta, DType.BF16, h);
        EmbeddingKernel.Args embed = new EmbeddingKernel.Args(
                DeviceTensor.of("model.embed_tokens.weight", weights.at(r.image.embed()), DType.BF16, vocab, h),
                DeviceTensor.of("ids", r.meta.ids(), DType.I32, r.meta.maxTokens()), xT);
        RmsNormKernel.Args firstNorm = new RmsNormKernel.Args(xT, normWeight("layer 0 input_layernorm.weight",
                r.image.layers().getFirst().inputNorm()), hT);
        ops.add(new Op("embedding + input norm 0", Role.PIECE, -1, (s, shape) -> {
            r.embedding.launch(s, embed, shape.tokens());
            r.rmsnorm.launch(s, firstNorm, shape.tokens(), eps);
        }));
        int gdnIndex = 0, attnIndex = 0;
        List<LayerWeights> lw = r.image.layers();
        for (int l = 0; l < lw.size(); l++) {
            LayerWeights w = lw.get(l);
            final int layer = l;
            switch (w.mixer()) {
                case GdnWeights g -> addGdn(ops, layer, gdnIndex++, g);
                case AttentionWeights a -> addAttention(ops, layer, attnIndex++, a);
            }
            RmsNormKernel.AddArgs post = new RmsNormKernel.AddArgs(deltaT, xT,
                    normWeight("layer " + layer + " post_attention_layernorm.weight", w.postNorm()), hT);
            ops.add(new Op("layer " + layer + " post-attention norm", Role.PIECE, layer,
                    (s, shape) -> r.rmsnorm.launchAdd(s, post, shape.tokens(), eps)));
            switch (w.ffn()) {
                case MoeWeights m -> {
                    GpuSparseMoe.Weights mw = new GpuSparseMoe.Weights(weights.at(m.router()), weights.at(m.gateUp()),
                            weights.at(m.down()), m.sharedGateUp() == 0 ? 0 : weights.at(m.sharedGateUp()),
                            m.sharedDown() == 0 ? 0 : weights.at(m.sharedDown()), m.fp8() == null ? null : m.fp8().placed(weights::at));
                    GpuSparseMoe.Layer bound = r.moe.bind(mw, hT, deltaT);
                    ops.add(new Op("layer " + layer + " moe", Role.PIECE, layer, (s, shape) -> r.moe.forward(s, shape, bound)));
                }
                case DenseWeights d -> {
                    long gu = weights.at(d.gateUp()), dn = weights.at(d.down());
                    int inter = d.inter();
                    SiluMulKernel.Args silu = new SiluMulKernel.Args(rows("dense_gate_up", acts.denseGateUp, DType.BF16, 2 * inter),
                            rows("dense_act", acts.denseAct, DType.BF16, inter));
                    long guOut = silu.gateUp().address(), act = silu.out().address();
                    ops.add(new Op("layer " + layer + " mlp", Role.PIECE, layer, (s, shape) -> {
                        r.gemm.matmul(s, hn, gu, guOut, shape.tokens(), 2 * inter, h);
                        r.siluMul.launch(s, silu, shape.tokens());
                        r.gemm.matmul(s, act, dn, delta, shape.tokens(), h, inter);
                    }));
                }
            }
            boolean last = l + 1 == lw.size();
            RmsNormKernel.AddArgs next = new RmsNormKernel.AddArgs(deltaT, xT, last ? normWeight("model.norm.weight", r.image.finalNorm())
                    : normWeight("layer " + (l + 1) + " input_layernorm.weight", lw.get(l + 1).inputNorm()), hT);
            String what = last ? "final norm" : "input norm " + (l + 1);
            ops.add(new Op("layer " + layer + " residual + " + what, Role.PIECE, layer,
                    (s, shape) -> r.rmsnorm.launchAdd(s, next, shape.tokens(), eps)));
        }
        return new ForwardPlan(ops);
    }

    /** A norm weight {@code [hidden]} bf16 at image offset {@code offset}. */
    private DeviceTensor normWeight(String name, long offset) {
        return DeviceTensor.of(name, weights.at(offset), DType.BF16, config.hiddenSize());
    }

    /** Activation region {@code offset} as {@code [maxTokens, ...]} rows (the capacity the launches check against). */
    private DeviceTensor rows(String name, long offset, DType dtype, int... row) {
        int[] shape = new int[row.length + 1];
        shape[0] = acts.maxTokens();
        System.arraycopy(row, 0, shape, 1, row.length);
        return acts.tensor(name, offset, dtype, shape);
    }

    private void addGdn(List<Op> ops, int layer, int gi, GdnWeights w) {
        int h = config.hiddenSize();
        GdnProjections proj = new GdnProjections(config.linearNumKeyHeads(), config.linearNumValueHeads(),
                config.linearKeyHeadDim(), config.linearValueHeadDim());
        GatedDeltaRule rule = new GatedDeltaRule(proj.keyHeads(), proj.valueHeads(), proj.keyDim(), proj.valueDim());
        long hn = acts.at(acts.h), delta = acts.at(acts.delta);
        long qkvz = acts.at(acts.qkvz), ba = acts.at(acts.ba);
        long normed = acts.at(acts.normed);
        long wQkvz = weights.at(w.qkvz()), wBa = weights.at(w.ba()), wOut = weights.at(w.outProj());
        ChunkedDeltaRuleKernel.Path gdnPrefillPath = r.options.fp32GdnPrefill() ? ChunkedDeltaRuleKernel.Path.RECURRENT
                : r.chunked.config().defaultPath();
        int channels = config.convDim(), k = config.linearConvKernelDim();
        int hk = proj.keyHeads(), hv = proj.valueHeads(), dk = proj.keyDim(), dv = proj.valueDim();
        float eps = config.rmsNormEps();
        // every launch's tensors, built and checked once here; a step only checks its token count against the capacities
        String lp = "layer " + layer + " ";
        DeviceTensor mixed = rows("mixed", acts.mixed, DType.BF16, channels);
        DeviceTensor z = rows("z", acts.z, DType.BF16, hv * dv);
        DeviceTensor beta = rows("beta", acts.beta, DType.F32, hv), g = rows("g", acts.g, DType.F32, hv);
        DeviceTensor convOut = rows("conv_out", acts.convOut, DType.BF16, channels);
        DeviceTensor core = rows("core", acts.core, DType.BF16, hv * dv);
        DeviceTensor aLog = DeviceTensor.of(lp + "A_log", weights.at(w.aLog()), DType.F32, hv);
        DeviceTensor dtBias = DeviceTensor.of(lp + "dt_bias", weights.at(w.dtBias()), DType.F32, hv);
        DeviceTensor wConv = DeviceTensor.of(lp + "conv1d.weight", weights.at(w.conv()), DType.BF16, channels, k);
        DeviceTensor convState = DeviceTensor.of("gdn conv state " + gi, r.gdn.conv(gi), DType.BF16, r.gdn.geometry().slots(),
                channels, k - 1);
        DeviceTensor recState = DeviceTensor.of("gdn recurrent state " + gi, r.gdn.recurrent(gi), DType.F32,
                r.gdn.geometry().slots(), hv, dk, dv);
        DeviceTensor slots = DeviceTensor.of("gdn_slots", r.meta.gdnSlots(), DType.I32, r.meta.maxEntries());
        DeviceTensor cu = DeviceTensor.of("cu_seqlens", r.meta.attention().cuSeqlens(), DType.I32, r.meta.attention().maxSeqs() + 1);
        GdnSplitGatingKernel.Args split = new GdnSplitGatingKernel.Args(proj, rows("qkvz", acts.qkvz, DType.BF16, proj.qkvzWidth()),
                rows("ba", acts.ba, DType.BF16, proj.baWidth()), aLog, dtBias, mixed, z, beta, g);
        CausalConv1dKernel.UpdateArgs convUpdate = new CausalConv1dKernel.UpdateArgs(mixed, wConv, convState, slots, convOut);
        CausalConv1dKernel.PrefillArgs convPrefill = new CausalConv1dKernel.PrefillArgs(mixed, wConv, convState, cu, slots, convOut);
        GatedDeltaRuleDecodeKernel.Args decodeRule = new GatedDeltaRuleDecodeKernel.Args(rule, convOut,
                new GatedDeltaRuleDecodeKernel.Gates.Precomputed(beta, g), recState, slots, core);
        ChunkedDeltaRuleKernel.Args chunked = new ChunkedDeltaRuleKernel.Args(r.chunked.config(), convOut, beta, g, cu, slots,
                recState, core);
        // one row per token × value head
        GatedRmsNormKernel.Args gatedNorm = new GatedRmsNormKernel.Args(core.reshape(acts.maxTokens() * hv, dv),
                z.reshape(acts.maxTokens() * hv, dv), DeviceTensor.of(lp + "norm.weight", weights.at(w.norm()), DType.BF16, dv),
                rows("normed", acts.normed, DType.BF16, hv * dv).reshape(acts.maxTokens() * hv, dv));
        ops.add(new Op("layer " + layer + " gdn projections + split", Role.GDN_LAYER, layer, (s, shape) -> {
            r.gemm.matmul(s, hn, wQkvz, qkvz, shape.tokens(), proj.qkvzWidth(), h);
            r.gemm.matmul(s, hn, wBa, ba, shape.tokens(), proj.baWidth(), h);
            r.split.launch(s, split, shape.tokens());
        }));
        ops.add(new Op("layer " + layer + " gdn core", Role.GDN_CORE, layer, (s, shape) -> {
            if (shape.decode()) {
                r.conv.launchUpdate(s, shape, convUpdate);
                r.decodeRule.launch(s, shape, decodeRule);
            } else {
                r.conv.launchPrefill(s, shape, convPrefill);
                r.chunked.launch(s, shape, chunked, gdnPrefillPath);
            }
        }));
        ops.add(new Op("layer " + layer + " gdn gated norm + out_proj", Role.GDN_LAYER, layer, (s, shape) -> {
            r.gatedNorm.launch(s, gatedNorm, shape.tokens() * hv, eps);
            r.gemm.matmul(s, normed, wOut, delta, shape.tokens(), h, hv * dv);
        }));
    }

    private void addAttention(List<Op> ops, int layer, int ai, AttentionWeights w) {
        int h = config.hiddenSize();
        int nh = config.numAttentionHeads(), nkv = config.numKeyValueHeads(), hd = config.headDim();
        long hn = acts.at(acts.h), delta = acts.at(acts.delta);
        long qg = acts.at(acts.qg), kvOut = acts.at(acts.kv), q = acts.at(acts.q), out = acts.at(acts.attnOut);
        long wq = weights.at(w.q()), wkv = weights.at(w.kv()), wo = weights.at(w.o());
        long qNorm = weights.at(w.qNorm()), kNorm = weights.at(w.kNorm());
        int kvWidth = 2 * nkv * hd;
        GatedAttentionCore.Args core = new GatedAttentionCore.Args(r.attention.geometry(), rows("qg", acts.qg, DType.BF16, nh * 2 * hd),
                rows("kv", acts.kv, DType.BF16, kvWidth), DeviceTensor.of("layer " + layer + " q_norm", qNorm, DType.BF16, hd),
                DeviceTensor.of("layer " + layer + " k_norm", kNorm, DType.BF16, hd), rows("q", acts.q, DType.BF16, nh, hd),
                rows("attn_out", acts.attnOut, DType.BF16, nh * hd));
        ops.add(new Op("layer " + layer + " q/k/v projections", Role.PIECE, layer, (s, shape) -> {
            r.gemm.matmul(s, hn, wq, qg, shape.tokens(), nh * 2 * hd, h);
            r.gemm.matmul(s, hn, wkv, kvOut, shape.tokens(), kvWidth, h);
        }));
        ops.add(new Op("layer " + layer + " attention core", Role.ATTENTION_CORE, layer, (s, shape) ->
                r.attention.forward(s, shape, core, r.meta.attention(), r.kv, ai)));
        ops.add(new Op("layer " + layer + " o_proj", Role.PIECE, layer,
                (s, shape) -> r.gemm.matmul(s, out, wo, delta, shape.tokens(), h, nh * hd)));
    }
}
