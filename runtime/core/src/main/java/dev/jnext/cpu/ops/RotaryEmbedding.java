package dev.jnext.cpu.ops;

/**
 * Partial rotary position embedding, rotate-half (NeoX) convention: in each head vector only the first
 * {@code rotaryDim} values rotate, dimension i pairing with i + rotaryDim/2, at angle pos·invFreq[i]
 * with invFreq[i] = 1 / theta^(2i / rotaryDim), computed in fp32 like transformers.
 */
public record RotaryEmbedding(int headDim, int rotaryDim, double theta, float[] invFreq) {

    public RotaryEmbedding(int headDim, int rotaryDim, double theta) {
        this(headDim, rotaryDim, theta, inverseFrequencies(rotaryDim, theta));
    }

    private static float[] inverseFrequencies(int rotaryDim, double theta) {
        float[] inv = new float[rotaryDim / 2];
        for (int i = 0; i < inv.length; i++) {
            float exponent = (float) (2 * i) / (float) rotaryDim;
            inv[i] = 1.0f / (float) Math.pow(theta, exponent);
        }
        return inv;
    }

    /**
     * Rotates {@code heads} head vectors per row for {@code rows} rows of x (row-major [rows, heads, headDim]
     * starting at {@code offset}); row t sits at position {@code firstPosition + t}.
     */
    public void apply(float[] x, int offset, int rows, int heads, int firstPosition) {
        int half = rotaryDim / 2;
        float[] cos = new float[half];
        float[] sin = new float[half];
        for (int t = 0; t < rows; t++) {
            float pos = firstPosition + t;
            for (int i = 0; i < half; i++) {
                float angle = pos * invFreq[i];
                cos[i] = (float) Math.cos(angle);
                sin[i] = (float) Math.sin(angle);
            }
            for (int h = 0; h < heads; h++) {
                int b = offset + (t * heads + h) * headDim;
                for (int i = 0; i < half; i++) {
                    float x1 = x[b + i];
                    float x2 = x[b + i + half];
                    x[b + i] = x1 * cos[i] - x2 * sin[i];
                    x[b + i + half] = x2 * cos[i] + x1 * sin[i];
                }
            }
        }
    }
}
