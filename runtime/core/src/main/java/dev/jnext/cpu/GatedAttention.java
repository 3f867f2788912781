package dev.jnext.cpu;

import dev.jnext.cpu.ops.Activations;
import dev.jnext.cpu.ops.AttentionCore;
import dev.jnext.cpu.ops.Linear;
import dev.jnext.model.weights.Matrix;
import dev.jnext.cpu.ops.RmsNorm;
import dev.jnext.cpu.ops.RotaryEmbedding;

import java.util.List;

/**
 * A gated full-attention layer ({@code self_attn.*}): q_proj gives per head [query (hd) | gate (hd)];
 * q_norm/k_norm per head; partial RoPE after the norms; KV cache append; causal GQA attention;
 * output · sigmoid(gate); o_proj.
 */
public record GatedAttention(Matrix qProj, Matrix kProj, Matrix vProj, Matrix oProj, RmsNorm qNorm, RmsNorm kNorm,
                             RotaryEmbedding rope, AttentionCore core) implements TokenMixer {

    @Override
    public void forward(float[] x, int rows, List<SequenceSpan> spans, CpuState state, int layer, float[] out) {
        KvCache kv = state.kv(layer);
        int nh = core.heads();
        int nkv = core.kvHeads();
        int hd = core.headDim();
        float[] qg = new float[rows * nh * 2 * hd];
        Linear.forward(qProj, x, 0, rows, qg, 0);
        float[] q = new float[rows * nh * hd];
        float[] gate = new float[rows * nh * hd];
        for (int t = 0; t < rows; t++) {
            for (int h = 0; h < nh; h++) {
                int src = (t * nh + h) * 2 * hd;
                System.arraycopy(qg, src, q, (t * nh + h) * hd, hd);
                System.arraycopy(qg, src + hd, gate, (t * nh + h) * hd, hd);
            }
        }
        float[] k = new float[rows * nkv * hd];
        float[] v = new float[rows * nkv * hd];
        Linear.forward(kProj, x, 0, rows, k, 0);
        Linear.forward(vProj, x, 0, rows, v, 0);
        qNorm.forward(q, 0, rows * nh, q, 0);
        kNorm.forward(k, 0, rows * nkv, k, 0);
        float[] attn = new float[rows * nh * hd];
        for (SequenceSpan s : spans) {
            int past = kv.length(s.slot());
            if (past != s.position()) {
                throw new IllegalStateException("KV cache of slot " + s.slot() + " holds " + past
                        + " tokens but the sequence is at position " + s.position());
            }
            rope.apply(q, s.firstRow() * nh * hd, s.rows(), nh, s.position());
            rope.apply(k, s.firstRow() * nkv * hd, s.rows(), nkv, s.position());
            kv.append(s.slot(), k, v, s.firstRow(), s.rows());
            core.forward(q, s.firstRow() * nh * hd, s.rows(), kv.keys(s.slot()), kv.values(s.slot()), past,
                    attn, s.firstRow() * nh * hd);
        }
        for (int i = 0; i < attn.length; i++) attn[i] *= Activations.sigmoid(gate[i]);
        Linear.forward(oProj, attn, 0, rows, out, 0);
    }
}
