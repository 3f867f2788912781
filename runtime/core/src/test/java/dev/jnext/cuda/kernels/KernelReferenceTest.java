package dev.jnext.cuda.kernels;

import dev.jnext.numeric.Bf16;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CPU references the GPU kernels are checked against, checked against the formulas in double precision. */
class KernelReferenceTest {
    private final Random rnd = new Random(7);

    private short[] randomBf16(int n, double scale) {
        short[] a = new short[n];
        for (int i = 0; i < n; i++) a[i] = Bf16.fromFloat((float) (rnd.nextGaussian() * scale));
        return a;
    }

    @Test
    void bf16RoundsToNearestEven() {
        assertEquals(1.0f, Bf16.round(1.0f + 0x1p-9f), "tie at 1 + half ulp goes to even (1.0)");
        assertEquals(1.0f + 0x1p-6f, Bf16.round(1.0f + 0x1p-7f + 0x1p-8f), "tie at odd mantissa rounds up to even");
        assertEquals(1.0f + 0x1p-7f, Bf16.round(1.0f + 0x1p-8f + 0x1p-12f), "above half rounds up");
        assertTrue(Float.isNaN(Bf16.round(Float.NaN)));
        assertEquals(Float.POSITIVE_INFINITY, Bf16.round(Float.POSITIVE_INFINITY));
        assertEquals(1, Bf16.ulpDistance(Bf16.fromFloat(1f), Bf16.fromFloat(1f + 0x1p-7f)));
        assertEquals(0, Bf16.ulpDistance(Bf16.fromFloat(0f), Bf16.fromFloat(-0f)));
    }

    @Test
    void rmsNormMatchesFormula() {
        int rows = 3, h = 64;
        short[] x = randomBf16(rows * h, 2), w = randomBf16(h, 0.1);
        short[] y = RmsNormKernelReference.reference(x, w, rows, h, 1e-6f);
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int c = 0; c < h; c++) ss += Math.pow(Bf16.toFloat(x[r * h + c]), 2);
            double inv = 1 / Math.sqrt(ss / h + 1e-6);
            for (int c = 0; c < h; c++) {
                double expect = Bf16.toFloat(x[r * h + c]) * inv * (1 + Bf16.toFloat(w[c]));
                assertTrue(Bf16.ulpDistance(y[r * h + c], Bf16.fromFloat((float) expect)) <= 1, "row " + r + " col " + c);
            }
        }
    }

    @Test
    void fusedResidualAddUpdatesResidualThenNormalises() {
        int rows = 2, h = 32;
        short[] d = randomBf16(rows * h, 1), res = randomBf16(rows * h, 1), w = randomBf16(h, 0.1);
        short[] res0 = res.clone();
        short[] y = RmsNormKernelReference.referenceAdd(d, res, w, rows, h, 1e-6f);
        for (int i = 0; i < rows * h; i++) {
            assertEquals(Bf16.fromFloat(Bf16.toFloat(res0[i]) + Bf16.toFloat(d[i])), res[i]);
        }
        assertEquals(java.util.Arrays.toString(RmsNormKernelReference.reference(res, w, rows, h, 1e-6f)), java.util.Arrays.toString(y));
    }

    @Test
    void gatedNormIsPlainWeightTimesNormTimesSiluGate() {
        int rows = 4, d = 16;
        short[] x = randomBf16(rows * d, 3), z = randomBf16(rows * d, 2), w = randomBf16(d, 1);
        short[] out = GatedRmsNormKernelReference.reference(x, z, w, rows, d, 1e-6f);
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int c = 0; c < d; c++) ss += Math.pow(Bf16.toFloat(x[r * d + c]), 2);
            double inv = 1 / Math.sqrt(ss / d + 1e-6);
            for (int c = 0; c < d; c++) {
                double zf = Bf16.toFloat(z[r * d + c]);
                double expect = Bf16.toFloat(w[c]) * Bf16.toFloat(x[r * d + c]) * inv * zf / (1 + Math.exp(-zf));
                // two intermediate bf16 roundings (as torch) allow up to 2 ulp against the unrounded formula
                assertTrue(Bf16.ulpDistance(out[r * d + c], Bf16.fromFloat((float) expect)) <= 2,
                        "row " + r + " col " + c + ": " + Bf16.toFloat(out[r * d + c]) + " vs " + expect);
            }
        }
    }

    @Test
    void siluMulUsesGateHalfThenUpHalf() {
        int rows = 2, inter = 8;
        short[] gu = randomBf16(rows * 2 * inter, 2);
        short[] out = SiluMulKernelReference.reference(gu, rows, inter);
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < inter; i++) {
                double g = Bf16.toFloat(gu[r * 2 * inter + i]), u = Bf16.toFloat(gu[r * 2 * inter + inter + i]);
                double expect = g / (1 + Math.exp(-g)) * u;
                assertTrue(Bf16.ulpDistance(out[r * inter + i], Bf16.fromFloat((float) expect)) <= 1);
            }
        }
    }
}
