package dev.jnext.cpu.ops;

/**
 * Zero-centred RMSNorm ({@code Qwen3NextRMSNorm}): y = x · rsqrt(mean(x²) + eps) · (1 + w), all in fp32.
 * Used for input/post-attention/final norms (width = hidden) and per-head q/k norms (width = head_dim).
 *
 * @param weight the stored weight w [width], centred on 0
 */
public record RmsNorm(float[] weight, float eps) {

    public int width() {
        return weight.length;
    }

    /** Normalises {@code rows} rows of {@code width} floats from x[xOffset..] into out[outOffset..] (may alias). */
    public void forward(float[] x, int xOffset, int rows, float[] out, int outOffset) {
        int n = weight.length;
        for (int r = 0; r < rows; r++) {
            int xo = xOffset + r * n;
            int oo = outOffset + r * n;
            double ss = 0;
            for (int i = 0; i < n; i++) ss += (double) x[xo + i] * x[xo + i];
            float inv = (float) (1.0 / Math.sqrt((float) (ss / n) + eps));
            for (int i = 0; i < n; i++) out[oo + i] = x[xo + i] * inv * (1.0f + weight[i]);
        }
    }

    public float[] forward(float[] x, int rows) {
        float[] out = new float[x.length];
        forward(x, 0, rows, out, 0);
        return out;
    }
}
