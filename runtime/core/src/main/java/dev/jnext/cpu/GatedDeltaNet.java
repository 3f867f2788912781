package dev.jnext.cpu;

import dev.jnext.cpu.ops.CausalConv1d;
import dev.jnext.cpu.ops.GatedDeltaRule;
import dev.jnext.cpu.ops.GatedRmsNorm;
import dev.jnext.cpu.ops.GdnGating;
import dev.jnext.model.GdnProjections;
import dev.jnext.cpu.ops.Linear;
import dev.jnext.model.weights.Matrix;

import java.util.List;

/**
 * A Gated DeltaNet layer ({@code linear_attn.*}): input projections (Qwen3-Next's grouped in_proj_qkvz / in_proj_ba,
 * or Qwen3.5's split in_proj_qkv / z / b / a: {@link GdnInput}) → causal conv + SiLU (conv state) → beta, g → gated
 * delta rule (recurrent state; chunked for prompt chunks and multi-token calls, recurrent for a single generated token,
 * as transformers does) → gated RMSNorm with z → out_proj. A span may ask for copies of the state after some of its
 * rows ({@link SequenceSpan#captureAt()}: the prefix cache's snapshots).
 */
public record GatedDeltaNet(GdnInput input, GdnProjections projections, CausalConv1d conv,
                            GdnGating gating, GatedDeltaRule rule, GatedRmsNorm norm, Matrix outProj)
        implements TokenMixer {

    @Override
    public void forward(float[] x, int rows, List<SequenceSpan> spans, CpuState state, int layer, float[] out) {
        SsmSlots ssm = state.ssm(layer);
        int hv = projections.valueHeads();
        int dv = projections.valueDim();
        int convDim = projections.convDim();
        float[] mixed = new float[rows * convDim];
        float[] z = new float[rows * hv * dv];
        float[] b = new float[rows * hv];
        float[] a = new float[rows * hv];
        input.project(x, rows, mixed, z, b, a);
        float[] convOut = new float[rows * convDim];
        float[] beta = new float[rows * hv];
        float[] g = new float[rows * hv];
        gating.forward(b, a, rows, beta, g);
        float[] core = new float[rows * hv * dv];
        for (SequenceSpan s : spans) {
            // in pieces ending at the offsets where the prefix cache wants the state (one piece when it wants none); a
            // cut at a multiple of the chunk leaves the conv and every chunk of the delta rule as in the uncut call
            int[] cuts = s.captureAt();
            int done = 0;
            for (int c = 0; c <= cuts.length; c++) {
                int to = c < cuts.length ? cuts[c] : s.rows();
                int n = to - done;
                if (n > 0) {
                    int first = s.firstRow() + done;
                    conv.forward(mixed, first, n, ssm.conv(), ssm.convOffset(s.slot()), convOut);
                    if (n == 1 && !s.prompt()) {
                        rule.recurrent(convOut, first, 1, beta, g, ssm.recurrent(), ssm.recurrentOffset(s.slot()), core);
                    } else {
                        rule.chunked(convOut, first, n, beta, g, ssm.recurrent(), ssm.recurrentOffset(s.slot()), core,
                                GatedDeltaRule.CHUNK);
                    }
                }
                if (c < cuts.length) s.captured()[c].capture(ssm, s.slot(), layer);
                done = to;
            }
        }
        float[] normed = new float[core.length];
        norm.forward(core, z, rows * hv, normed);
        Linear.forward(outProj, normed, 0, rows, out, 0);
    }
}
