package dev.jnext.cpu.ops;

import java.util.stream.IntStream;

/**
 * Causal scaled-dot-product attention of one sequence with grouped KV heads: query head h reads KV head
 * h / (heads / kvHeads); scores are q·k·headDim^-½, softmax in fp32 over keys 0..past+t for the new token t.
 * Keys and values are the sequence's whole cache [past + rows, kvHeads, headDim] (new tokens included).
 */
public record AttentionCore(int heads, int kvHeads, int headDim) {

    /** q: [rows, heads, headDim] at qOffset; out: [rows, heads·headDim] at outOffset. */
    public void forward(float[] q, int qOffset, int rows, float[] keys, float[] values, int past,
                        float[] out, int outOffset) {
        int group = heads / kvHeads;
        float scale = (float) Math.pow(headDim, -0.5);
        IntStream hs = IntStream.range(0, heads);
        if ((long) rows * (past + rows) * heads * headDim > (1 << 15)) hs = hs.parallel();
        hs.forEach(h -> {
            int kv = h / group;
            float[] p = new float[past + rows];
            for (int t = 0; t < rows; t++) {
                int qo = qOffset + (t * heads + h) * headDim;
                int n = past + t + 1;
                float max = Float.NEGATIVE_INFINITY;
                for (int j = 0; j < n; j++) {
                    p[j] = Linear.dot(q, qo, keys, (j * kvHeads + kv) * headDim, headDim) * scale;
                    max = Math.max(max, p[j]);
                }
                float sum = 0;
                for (int j = 0; j < n; j++) {
                    p[j] = (float) Math.exp(p[j] - max);
                    sum += p[j];
                }
                int oo = outOffset + (t * heads + h) * headDim;
                java.util.Arrays.fill(out, oo, oo + headDim, 0f);
                for (int j = 0; j < n; j++) {
                    float w = p[j] / sum;
                    int vo = (j * kvHeads + kv) * headDim;
                    for (int d = 0; d < headDim; d++) out[oo + d] += w * values[vo + d];
                }
            }
        });
    }
}
