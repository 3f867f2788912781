package dev.jnext.cpu.ops;

/**
 * Causal depthwise conv + SiLU over the GDN channels, with a rolling state:
 * out[t, c] = silu(Σ_{j<K} w[c, j] · x[t − (K−1) + j, c]), where inputs before the first new token come from the
 * conv state. The state holds the last K−1 raw (pre-conv) inputs of the sequence, laid out [channels, K−1] with
 * column 0 the oldest; an all-zero state is a fresh sequence (zero left context).
 *
 * @param weight conv1d.weight [channels, 1, K] flattened to [channels·K]
 */
public record CausalConv1d(int channels, int kernel, float[] weight) {

    public CausalConv1d {
        if (weight.length != channels * kernel) throw new IllegalArgumentException("conv weight length " + weight.length);
    }

    /** Floats of state per sequence: channels × (K−1). */
    public int stateSize() {
        return channels * (kernel - 1);
    }

    /**
     * Convolves rows [firstRow, firstRow + rows) of x [*, channels] into the same rows of out, reading and then
     * updating state[stateOffset .. + stateSize()).
     */
    public void forward(float[] x, int firstRow, int rows, float[] state, int stateOffset, float[] out) {
        int k1 = kernel - 1;
        int total = k1 + rows;
        // window [K−1 + rows, channels]: the K−1 state columns (transposed), then the new inputs
        float[] win = new float[total * channels];
        for (int c = 0; c < channels; c++) {
            for (int j = 0; j < k1; j++) win[j * channels + c] = state[stateOffset + c * k1 + j];
        }
        System.arraycopy(x, firstRow * channels, win, k1 * channels, rows * channels);
        float[] wT = new float[kernel * channels];
        for (int c = 0; c < channels; c++) {
            for (int j = 0; j < kernel; j++) wT[j * channels + c] = weight[c * kernel + j];
        }
        float[] acc = new float[channels];
        for (int t = 0; t < rows; t++) {
            java.util.Arrays.fill(acc, 0f);
            for (int j = 0; j < kernel; j++) {
                int src = (t + j) * channels;
                int wo = j * channels;
                for (int c = 0; c < channels; c++) acc[c] += wT[wo + c] * win[src + c];
            }
            int o = (firstRow + t) * channels;
            for (int c = 0; c < channels; c++) out[o + c] = Activations.silu(acc[c]);
        }
        for (int c = 0; c < channels; c++) {
            for (int j = 0; j < k1; j++) state[stateOffset + c * k1 + j] = win[(total - k1 + j) * channels + c];
        }
    }
}
