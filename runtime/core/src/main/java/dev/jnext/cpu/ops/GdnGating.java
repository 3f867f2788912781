package dev.jnext.cpu.ops;

/**
 * The per-token, per-value-head gates of the Gated DeltaNet: beta = sigmoid(b) and
 * g = −exp(A_log) · softplus(a + dt_bias) (fp32; g ≤ 0 is the log of the state decay).
 *
 * @param aLog   A_log [Hv]
 * @param dtBias dt_bias [Hv]
 */
public record GdnGating(float[] aLog, float[] dtBias) {

    /** b, a, beta, g: [rows, Hv]. */
    public void forward(float[] b, float[] a, int rows, float[] beta, float[] g) {
        int hv = aLog.length;
        for (int t = 0; t < rows; t++) {
            for (int h = 0; h < hv; h++) {
                int i = t * hv + h;
                beta[i] = Activations.sigmoid(b[i]);
                g[i] = -(float) Math.exp(aLog[h]) * Activations.softplus(a[i] + dtBias[h]);
            }
        }
    }
}
