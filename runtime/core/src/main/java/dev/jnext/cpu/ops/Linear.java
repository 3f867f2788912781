package dev.jnext.cpu.ops;

import dev.jnext.model.weights.Matrix;

import java.util.stream.IntStream;

/**
 * A bias-free linear layer, y = x·Wᵀ, with W [out, in] in its stored dtype and fp32 accumulation.
 * x is [rows, in] and y is [rows, out], both row-major fp32. Each weight row is converted once per call and
 * reused for every token; output rows are split across the common fork-join pool.
 */
public record Linear(Matrix weight) {

    /** Below this many multiply-adds a call runs on the calling thread. */
    private static final long PARALLEL_THRESHOLD = 1 << 16;

    public int in() {
        return weight.cols();
    }

    public int out() {
        return weight.rows();
    }

    public float[] forward(float[] x, int rows) {
        float[] y = new float[rows * out()];
        forward(x, rows, y);
        return y;
    }

    public void forward(float[] x, int rows, float[] y) {
        forward(weight, x, 0, rows, y, 0);
    }

    /** y[yOffset + t·out + o] = Σ_i x[xOffset + t·in + i] · W[o, i] for t < rows. */
    public static void forward(Matrix w, float[] x, int xOffset, int rows, float[] y, int yOffset) {
        int out = w.rows();
        int in = w.cols();
        if (rows == 0) return;
        int block = Math.max(8, Math.min(256, out / (4 * Parallel.threads()) + 1));
        int blocks = (out + block - 1) / block;
        IntStream range = IntStream.range(0, blocks);
        if ((long) rows * out * in >= PARALLEL_THRESHOLD && blocks > 1) range = range.parallel();
        range.forEach(b -> {
            float[] row = new float[in];
            short[] scratch = new short[in];
            int end = Math.min(out, (b + 1) * block);
            for (int o = b * block; o < end; o++) {
                w.loadRow(o, row, scratch);
                for (int t = 0; t < rows; t++) {
                    y[yOffset + t * out + o] = dot(x, xOffset + t * in, row, 0, in);
                }
            }
        });
    }

    /** Dot product with eight independent fp32 accumulators. */
    public static float dot(float[] a, int ao, float[] b, int bo, int n) {
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
        int i = 0;
        for (; i + 7 < n; i += 8) {
            s0 += a[ao + i] * b[bo + i];
            s1 += a[ao + i + 1] * b[bo + i + 1];
            s2 += a[ao + i + 2] * b[bo + i + 2];
            s3 += a[ao + i + 3] * b[bo + i + 3];
            s4 += a[ao + i + 4] * b[bo + i + 4];
            s5 += a[ao + i + 5] * b[bo + i + 5];
            s6 += a[ao + i + 6] * b[bo + i + 6];
            s7 += a[ao + i + 7] * b[bo + i + 7];
        }
        for (; i < n; i++) s0 += a[ao + i] * b[bo + i];
        return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
    }
}
