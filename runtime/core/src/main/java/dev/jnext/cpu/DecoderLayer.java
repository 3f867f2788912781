package dev.jnext.cpu;

import dev.jnext.cpu.ops.RmsNorm;

import java.util.List;

/** h = x + mixer(input_layernorm(x)); x' = h + ffn(post_attention_layernorm(h)). */
public record DecoderLayer(int index, RmsNorm inputNorm, TokenMixer mixer, RmsNorm postAttentionNorm,
                           FeedForward feedForward) {

    /** Updates the residual stream x [rows, H] in place. */
    public void forward(float[] x, int rows, List<SequenceSpan> spans, CpuState state) {
        float[] h = inputNorm.forward(x, rows);
        float[] m = new float[x.length];
        mixer.forward(h, rows, spans, state, index, m);
        for (int i = 0; i < x.length; i++) x[i] += m[i];
        postAttentionNorm.forward(x, 0, rows, h, 0);
        feedForward.forward(h, rows, m);
        for (int i = 0; i < x.length; i++) x[i] += m[i];
    }
}
