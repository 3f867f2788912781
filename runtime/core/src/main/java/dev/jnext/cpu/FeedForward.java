package dev.jnext.cpu;

import dev.jnext.cpu.ops.SparseMoe;
import dev.jnext.cpu.ops.SwiGluMlp;

/** The token-wise half of a decoder layer: sparse MoE or a dense MLP. */
public sealed interface FeedForward {

    void forward(float[] x, int rows, float[] out);

    /** {@code mlp.gate}, {@code mlp.experts.*}, {@code mlp.shared_expert*}. */
    record Moe(SparseMoe moe) implements FeedForward {
        @Override
        public void forward(float[] x, int rows, float[] out) {
            moe.forward(x, rows, out);
        }
    }

    /** {@code mlp.gate_proj|up_proj|down_proj} (layers in mlp_only_layers or off the decoder_sparse_step). */
    record Dense(SwiGluMlp mlp) implements FeedForward {
        @Override
        public void forward(float[] x, int rows, float[] out) {
            mlp.forward(x, rows, out);
        }
    }
}
