package dev.jnext.model;

import dev.jnext.numeric.Fp8E4m3;

/**
 * Block quantization to the fine-grained FP8 layout, the one rule jnext writes FP8 with ({@code synth --dtype fp8} and a
 * bf16 checkpoint quantized while it streams to the GPU): per 128 × 128 block (ragged at the edges),
 * {@code scale_inv = amax / 448} in fp32 (1 for an all-zero block) and each value the nearest e4m3 of
 * {@code value / scale_inv} (ties to even, saturating at ±448). transformers' {@code Fp8Quantize} computes
 * {@code 448 / amax} and stores its inverse, which can differ in the last bit; both load the same way.
 */
public final class Fp8Blocks {
    private Fp8Blocks() {}

    /** ⌈n / 128⌉: blocks along a dimension of {@code n}. */
    public static int blocks(int n) {
        return (n + Fp8Quantization.BLOCK - 1) / Fp8Quantization.BLOCK;
    }

    /**
     * Quantizes one band of up to 128 rows: {@code v[vAt + r·cols + c]} for {@code r < bandRows} into
     * {@code q[qAt + r·cols + c]}, the band's {@code ⌈cols/128⌉} block scales into {@code scales[scaleAt ..]}.
     */
    public static void quantizeBand(float[] v, int vAt, int bandRows, int cols, byte[] q, int qAt, float[] scales, int scaleAt) {
        for (int c0 = 0, b = 0; c0 < cols; c0 += Fp8Quantization.BLOCK, b++) {
            int c1 = Math.min(cols, c0 + Fp8Quantization.BLOCK);
            float amax = 0;
            for (int r = 0; r < bandRows; r++) {
                for (int c = c0; c < c1; c++) amax = Math.max(amax, Math.abs(v[vAt + r * cols + c]));
            }
            float scaleInv = amax > 0 ? amax / Fp8E4m3.MAX : 1f;
            scales[scaleAt + b] = scaleInv;
            for (int r = 0; r < bandRows; r++) {
                for (int c = c0; c < c1; c++) q[qAt + r * cols + c] = Fp8E4m3.fromFloat(v[vAt + r * cols + c] / scaleInv);
            }
        }
    }
}
