package dev.jnext.cpu.ops;

import dev.jnext.model.weights.Matrix;

/**
 * down(silu(gate(x)) ⊙ up(x)): the dense MLP, the shared expert and every routed expert.
 * gate/up are [I, H], down is [H, I]; x is [rows, H] and the result [rows, H].
 */
public record SwiGluMlp(Matrix gate, Matrix up, Matrix down) {

    public SwiGluMlp {
        if (gate.rows() != up.rows() || gate.cols() != up.cols() || down.cols() != gate.rows()
                || down.rows() != gate.cols()) {
            throw new IllegalArgumentException("inconsistent MLP shapes: gate " + gate.rows() + "x" + gate.cols()
                    + ", up " + up.rows() + "x" + up.cols() + ", down " + down.rows() + "x" + down.cols());
        }
    }

    public int hidden() {
        return gate.cols();
    }

    public int intermediate() {
        return gate.rows();
    }

    public void forward(float[] x, int rows, float[] out) {
        int inter = intermediate();
        float[] g = new float[rows * inter];
        float[] u = new float[rows * inter];
        Linear.forward(gate, x, 0, rows, g, 0);
        Linear.forward(up, x, 0, rows, u, 0);
        for (int i = 0; i < g.length; i++) g[i] = Activations.silu(g[i]) * u[i];
        Linear.forward(down, g, 0, rows, out, 0);
    }

    public float[] forward(float[] x, int rows) {
        float[] out = new float[rows * hidden()];
        forward(x, rows, out);
        return out;
    }
}
