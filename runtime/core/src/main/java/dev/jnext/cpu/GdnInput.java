package dev.jnext.cpu;

import dev.jnext.cpu.ops.Linear;
import dev.jnext.model.GdnProjections;
import dev.jnext.model.weights.Matrix;

/**
 * The input projections of a Gated DeltaNet layer: from x [rows, H] to the conv input {@code mixed}
 * [rows, 2·Hk·dk + Hv·dv] (all q | all k | all v), the gate z [rows, Hv·dv] and b, a [rows, Hv].
 */
public sealed interface GdnInput {

    /** Fills mixed, z, b and a for {@code rows} rows of x. */
    void project(float[] x, int rows, float[] mixed, float[] z, float[] b, float[] a);

    /** Qwen3-Next: in_proj_qkvz and in_proj_ba, grouped per key head and split by {@link GdnProjections#split}. */
    record Grouped(Matrix qkvz, Matrix ba, GdnProjections projections) implements GdnInput {
        @Override
        public void project(float[] x, int rows, float[] mixed, float[] z, float[] b, float[] a) {
            float[] qkvzOut = new float[rows * projections.qkvzWidth()];
            float[] baOut = new float[rows * projections.baWidth()];
            Linear.forward(qkvz, x, 0, rows, qkvzOut, 0);
            Linear.forward(ba, x, 0, rows, baOut, 0);
            projections.split(qkvzOut, baOut, rows, mixed, z, b, a);
        }
    }

    /** Qwen3.5: in_proj_qkv (already q | k | v), in_proj_z, in_proj_b, in_proj_a — four plain linears. */
    record Split(Matrix qkv, Matrix z, Matrix b, Matrix a) implements GdnInput {
        @Override
        public void project(float[] x, int rows, float[] mixed, float[] zOut, float[] bOut, float[] aOut) {
            Linear.forward(qkv, x, 0, rows, mixed, 0);
            Linear.forward(z, x, 0, rows, zOut, 0);
            Linear.forward(b, x, 0, rows, bOut, 0);
            Linear.forward(a, x, 0, rows, aOut, 0);
        }
    }
}
