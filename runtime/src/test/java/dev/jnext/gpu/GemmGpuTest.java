package dev.jnext.gpu;

import dev.jnext.numeric.Bf16;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import static dev.jnext.gpu.GpuTestSupport.download;
import static dev.jnext.gpu.GpuTestSupport.poisoned;
import static dev.jnext.gpu.GpuTestSupport.randomBf16;
import static dev.jnext.gpu.GpuTestSupport.upload;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * cuBLASLt GEMM (Y = X·Wᵀ, bf16, fp32 accumulation) against a double-precision CPU product of the same
 * bf16 inputs, at the model's projection shapes. For M ≥ 1000 a random sample of 96 rows is checked in full
 * (every row runs the same code path); smaller M are checked entirely.
 * Tolerance per element: one bf16 rounding (2⁻⁸·|ref|) plus fp32 accumulation error (2⁻¹⁶·Σ|x·w|).
 */
@Tag("gpu")
class GemmGpuTest {
    private static Gemm gemm;

    @BeforeAll
    static void open() {
        gemm = new Gemm(GpuTestSupport.gpu());
    }

    @AfterAll
    static void close() {
        gemm.close();
    }

    static Stream<Arguments> shapes() {
        List<Arguments> list = new ArrayList<>();
        int[][] kn = {{2048, 12288}, {4096, 2048}, {2048, 8192}};
        for (int[] s : kn) for (int m : new int[] {1, 7, 64, 1000, 8192}) list.add(Arguments.of(m, s[0], s[1]));
        return list.stream();
    }

    @ParameterizedTest(name = "M={0} K={1} N={2}")
    @MethodSource("shapes")
    void matchesCpuReference(int m, int k, int n) {
        Random rnd = new Random(31L * m + k + n);
        short[] x = randomBf16(rnd, m * k, 1.0), w = randomBf16(rnd, n * k, 1.0 / Math.sqrt(k));
        try (DeviceBuffer dx = upload(x, "x"); DeviceBuffer dw = upload(w, "w"); DeviceBuffer dy = poisoned(m * n, "y")) {
            gemm.matmul(GpuTestSupport.stream(), dx.address(), dw.address(), dy.address(), m, n, k);
            short[] y = download(dy, m * n);
            int[] rows = m < 1000 ? IntStream.range(0, m).toArray() : rnd.ints(96, 0, m).toArray();
            float[] wf = new float[n * k];
            for (int i = 0; i < wf.length; i++) wf[i] = Bf16.toFloat(w[i]);
            int bad = 0;
            String firstBad = null;
            for (int r : rows) {
                float[] xr = new float[k];
                for (int c = 0; c < k; c++) xr[c] = Bf16.toFloat(x[r * k + c]);
                for (int j = 0; j < n; j++) {
                    double acc = 0, abs = 0;
                    int base = j * k;
                    for (int c = 0; c < k; c++) {
                        double p = (double) xr[c] * wf[base + c];
                        acc += p;
                        abs += Math.abs(p);
                    }
                    float got = Bf16.toFloat(y[r * n + j]);
                    assertFalse(Float.isNaN(got), "NaN at row " + r + " col " + j);
                    double tol = Math.abs(acc) * 0x1p-8 + abs * 0x1p-16 + 1e-30;
                    if (Math.abs(got - acc) > tol) {
                        if (firstBad == null) firstBad = "row " + r + " col " + j + ": " + got + " vs " + acc + " (tol " + tol + ")";
                        bad++;
                    }
                }
            }
            assertTrue(bad == 0, bad + " elements out of tolerance, first " + firstBad);
        }
    }
}
