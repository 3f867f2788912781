package dev.jnext.cuda;

import dev.jnext.JnextException;
import dev.jnext.cuda.kernels.AttentionGeometry;
import dev.jnext.cuda.kernels.CausalConv1dKernel;
import dev.jnext.cuda.kernels.ChunkedDeltaRuleKernel;
import dev.jnext.cuda.kernels.GatedDeltaRuleDecodeKernel;
import dev.jnext.cuda.kernels.GdnSplitGatingKernel;
import dev.jnext.cuda.kernels.GpuSparseMoe;
import dev.jnext.model.LayerType;
import dev.jnext.model.ModelConfig;
import dev.jnext.cpu.ops.GatedDeltaRule;
import dev.jnext.model.GdnProjections;

import java.util.ArrayList;
import java.util.List;

/**
 * Whether the CUDA kernels can run a checkpoint's geometry: each rule is the launcher's own check (asked, not
 * restated, where the launcher exposes it), reported with the config field and the rule, so a user learns what
 * to change instead of meeting a kernel error mid-load.
 */
public final class CudaGeometry {
    /** rmsnorm.cu: one block of 256 threads × 8 values × 4 per row. */
    static final int MAX_HIDDEN = 8192;
    /** gated_rmsnorm.cu: one warp per row, 8 values per lane. */
    static final int MAX_GATED_NORM_DIM = 256;

    private CudaGeometry() {}

    /** Every rule the config breaks, one line each; empty when the CUDA backend can run it. */
    public static List<String> violations(ModelConfig c) {
        List<String> out = new ArrayList<>();
        int h = c.hiddenSize();
        if (h % 8 != 0 || h > MAX_HIDDEN) out.add("hidden_size " + h + ": the RMSNorm kernels need a multiple of 8 up to " + MAX_HIDDEN);
        if (c.vocabSize() < 1) out.add("vocab_size " + c.vocabSize() + " must be positive");
        boolean anyGdn = false, anyAttention = false, anyMoe = false, anyDense = false;
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            if (c.layerType(i) == LayerType.LINEAR_ATTENTION) anyGdn = true;
            else anyAttention = true;
            if (c.isMoeLayer(i)) anyMoe = true;
            else anyDense = true;
        }
        if (anyGdn) {
            GdnProjections proj = new GdnProjections(c.linearNumKeyHeads(), c.linearNumValueHeads(), c.linearKeyHeadDim(),
                    c.linearValueHeadDim());
            ask(out, "linear_* (Gated DeltaNet)", () -> GdnSplitGatingKernel.validate(proj, 1));
            ask(out, "linear_conv_kernel_dim / conv channels", () -> CausalConv1dKernel.validate(c.convDim(), c.linearConvKernelDim()));
            ask(out, "linear_key_head_dim / linear_value_head_dim", () -> new ChunkedDeltaRuleKernel.Config(c.linearNumKeyHeads(),
                    c.linearNumValueHeads(), c.linearKeyHeadDim(), c.linearValueHeadDim(), 1, 1));
            ask(out, "linear_* (decode)", () -> GatedDeltaRuleDecodeKernel.validate(new GatedDeltaRule(c.linearNumKeyHeads(),
                    c.linearNumValueHeads(), c.linearKeyHeadDim(), c.linearValueHeadDim()), 1));
            int dv = c.linearValueHeadDim();
            if (dv % 4 != 0 || dv > MAX_GATED_NORM_DIM) {
                out.add("linear_value_head_dim " + dv + ": the gated RMSNorm kernel needs a multiple of 4 up to " + MAX_GATED_NORM_DIM);
            }
        }
        if (anyAttention) {
            ask(out, "num_attention_heads / num_key_value_heads / head_dim / partial_rotary_factor",
                    () -> new AttentionGeometry(c.numAttentionHeads(), c.numKeyValueHeads(), c.headDim(), c.rotaryDim()));
        }
        if (anyMoe) {
            ask(out, "num_experts / num_experts_per_tok / moe_intermediate_size / shared_expert_intermediate_size / hidden_size",
                    () -> moeShape(c));
        }
        if (anyDense) {
            int inter = c.intermediateSize();
            if (inter < 8 || inter % 8 != 0) out.add("intermediate_size " + inter + " (dense MLP layers): the SiLU·mul kernel needs a positive multiple of 8");
        }
        return out;
    }

    /** The MoE block's shape as the kernels take it. */
    static GpuSparseMoe.Shape moeShape(ModelConfig c) {
        return new GpuSparseMoe.Shape(c.hiddenSize(), c.numExperts(), c.numExpertsPerTok(), c.moeIntermediateSize(),
                c.sharedExpertIntermediateSize(), c.normTopkProb());
    }

    /** Throws a {@link JnextException} listing every violation, naming the checkpoint. */
    public static void check(ModelConfig c, String where) {
        List<String> v = violations(c);
        if (!v.isEmpty()) {
            throw new JnextException(where + ": the CUDA kernels cannot run this geometry: " + String.join("; ", v)
                    + " (the CPU backend runs it)");
        }
    }

    private static void ask(List<String> out, String fields, Runnable check) {
        try {
            check.run();
        } catch (IllegalArgumentException e) {
            out.add(fields + ": " + e.getMessage());
        }
    }
}
