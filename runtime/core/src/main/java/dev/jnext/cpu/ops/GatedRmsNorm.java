package dev.jnext.cpu.ops;

/**
 * The Gated DeltaNet output norm ({@code Qwen3NextRMSNormGated}): per row of dv values,
 * y = w · x · rsqrt(mean(x²) + eps) · silu(z). The weight is plain (not 1 + w); the norm comes before the gate.
 *
 * @param weight w [dv], shared by all value heads
 */
public record GatedRmsNorm(float[] weight, float eps) {

    /** x, z, out: [rows, dv] row-major (rows = tokens × value heads). */
    public void forward(float[] x, float[] z, int rows, float[] out) {
        int n = weight.length;
        for (int r = 0; r < rows; r++) {
            int o = r * n;
            double ss = 0;
            for (int i = 0; i < n; i++) ss += (double) x[o + i] * x[o + i];
            float inv = (float) (1.0 / Math.sqrt((float) (ss / n) + eps));
            for (int i = 0; i < n; i++) {
                out[o + i] = weight[i] * (x[o + i] * inv) * Activations.silu(z[o + i]);
            }
        }
    }
}
