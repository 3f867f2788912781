package dev.jnext.cuda.kernels;

import dev.jnext.numeric.Bf16;
import dev.jnext.numeric.Fp8E4m3;

import java.util.SplittableRandom;

/**
 * Test oracle of the FP8 kernels and random FP8 weights: {@code w[m, r, c] = bf16(float(q) · scale)}, the host loader's
 * dequantization ({@code WeightImage}, {@code Matrix.loadRow} then one rounding to bf16).
 */
public final class Fp8Reference {
    private Fp8Reference() {}

    /** An FP8 stack [mats, rows, cols] with its scales [mats, scaleRows(rows, split), ⌈cols/128⌉]. */
    public record Weights(byte[] q, float[] scales, int mats, int rows, int cols, int split) {
        public int scaleRows() {
            return DeviceWeight.scaleRows(rows, split);
        }

        public int scaleCols() {
            return DeviceWeight.blocks(cols);
        }

        public float scale(int m, int r, int c) {
            int sr = r < split ? r / DeviceWeight.BLOCK : DeviceWeight.blocks(split) + (r - split) / DeviceWeight.BLOCK;
            return scales[(m * scaleRows() + sr) * scaleCols() + c / DeviceWeight.BLOCK];
        }

        /** The bf16 image the host loader would write: {@code bf16(float(q) · scale)} element by element. */
        public short[] dequantized() {
            short[] out = new short[q.length];
            for (int m = 0; m < mats; m++) {
                for (int r = 0; r < rows; r++) {
                    for (int c = 0; c < cols; c++) {
                        int i = (m * rows + r) * cols + c;
                        out[i] = Bf16.fromFloat(Fp8E4m3.toFloat(q[i]) * scale(m, r, c));
                    }
                }
            }
            return out;
        }
    }

    /**
     * Random finite e4m3 codes (every code but the two NaNs, so subnormals, zeros and ±448 occur) and positive scales
     * spread over six binary orders of magnitude around {@code 1 / (448 · √cols)} — weights of order 1/√cols, as a
     * quantized checkpoint's are.
     */
    public static Weights random(long seed, int mats, int rows, int cols, int split) {
        SplittableRandom rnd = new SplittableRandom(seed);
        byte[] q = new byte[mats * rows * cols];
        for (int i = 0; i < q.length; i++) {
            byte b;
            do {
                b = (byte) rnd.nextInt(256);
            } while (Fp8E4m3.isNaN(b));
            q[i] = b;
        }
        int sr = DeviceWeight.scaleRows(rows, split), sc = DeviceWeight.blocks(cols);
        float[] scales = new float[mats * sr * sc];
        double base = 1.0 / (Fp8E4m3.MAX * Math.sqrt(cols));
        for (int i = 0; i < scales.length; i++) scales[i] = (float) (base * Math.pow(2, rnd.nextDouble(-3, 3)));
        return new Weights(q, scales, mats, rows, cols, split);
    }
}
