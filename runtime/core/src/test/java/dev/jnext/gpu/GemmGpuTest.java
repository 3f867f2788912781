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
import static org.junit.jupiter.api.Assertions.assertEquals;
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
    /**
     * Row strides: x read from a column slice of a wider buffer, the result written into a column slice of another (as
     * q|k|v projections share one buffer); the columns around the slice keep their poison; beta = 1 accumulates into the
     * slice.
     */
    @org.junit.jupiter.api.Test
    void leadingDimensionsReadAndWriteColumnSlices() {
        int m = 37, k = 256, n = 192, ldx = k + 64, ldy = n + 128, xCol = 32, yCol = 64;
        Random rnd = new Random(77);
        short[] x = randomBf16(rnd, m * ldx, 1.0), w = randomBf16(rnd, n * k, 1.0 / Math.sqrt(k));
        dev.jnext.gpu.Stream s = GpuTestSupport.stream();
        try (DeviceBuffer dx = upload(x, "x"); DeviceBuffer dw = upload(w, "w"); DeviceBuffer dy = poisoned(m * ldy, "y")) {
            gemm.matmul(s, dx.address(2L * xCol), ldx, dw.address(), dy.address(2L * yCol), ldy, m, n, k);
            short[] y = download(dy, m * ldy);
            gemm.matmul(s, dx.address(2L * xCol), ldx, dw.address(), dy.address(2L * yCol), ldy, m, n, k, 1f, 1f);
            short[] y2 = download(dy, m * ldy);
            for (int r = 0; r < m; r++) {
                for (int c = 0; c < ldy; c++) {
                    short got = y[r * ldy + c];
                    if (c < yCol || c >= yCol + n) {
                        assertEquals((short) 0xffff, got, "row " + r + " column " + c + " outside the slice is untouched");
                        assertEquals((short) 0xffff, y2[r * ldy + c], "row " + r + " column " + c + " outside the slice (beta = 1)");
                        continue;
                    }
                    int j = c - yCol;
                    double acc = 0, abs = 0;
                    for (int i = 0; i < k; i++) {
                        double p = (double) Bf16.toFloat(x[r * ldx + xCol + i]) * Bf16.toFloat(w[j * k + i]);
                        acc += p;
                        abs += Math.abs(p);
                    }
                    double tol = Math.abs(acc) * 0x1p-8 + abs * 0x1p-16 + 1e-30;
                    float g = Bf16.toFloat(got);
                    assertTrue(Math.abs(g - acc) <= tol, "row " + r + " col " + j + ": " + g + " vs " + acc);
                    float g2 = Bf16.toFloat(y2[r * ldy + c]);
                    assertTrue(Math.abs(g2 - (g + acc)) <= 2 * tol + Math.abs(g + acc) * 0x1p-8, "beta = 1, row " + r + " col " + j);
                }
            }
        }
    }

    /** The plan cache keeps at most MAX_PLANS shapes; an evicted shape is planned again and still right. */
    @org.junit.jupiter.api.Test
    void planCacheIsBoundedAndRebuildsEvictedPlans() {
        int k = 64, n = 16, shapes = Gemm.MAX_PLANS + 12;
        Random rnd = new Random(5);
        short[] x = randomBf16(rnd, shapes * k, 1.0), w = randomBf16(rnd, n * k, 0.125);
        dev.jnext.gpu.Stream s = GpuTestSupport.stream();
        try (Gemm small = new Gemm(GpuTestSupport.gpu()); DeviceBuffer dx = upload(x, "x"); DeviceBuffer dw = upload(w, "w");
             DeviceBuffer dy = poisoned(shapes * n, "y")) {
            for (int m = 1; m <= shapes; m++) small.matmul(s, dx.address(), dw.address(), dy.address(), m, n, k);
            s.synchronize();
            assertEquals(Gemm.MAX_PLANS, small.cachedPlans(), "least recently used plans evicted");
            dy.fill16((short) 0xffff, s);
            small.matmul(s, dx.address(), dw.address(), dy.address(), 3, n, k);  // m = 3 was evicted: planned again
            short[] y = download(dy, 3 * n);
            for (int r = 0; r < 3; r++) {
                for (int j = 0; j < n; j++) {
                    double acc = 0, abs = 0;
                    for (int i = 0; i < k; i++) {
                        double p = (double) Bf16.toFloat(x[r * k + i]) * Bf16.toFloat(w[j * k + i]);
                        acc += p;
                        abs += Math.abs(p);
                    }
                    assertTrue(Math.abs(Bf16.toFloat(y[r * n + j]) - acc) <= Math.abs(acc) * 0x1p-8 + abs * 0x1p-16 + 1e-30, "row " + r + " col " + j);
                }
            }
            assertEquals(Gemm.MAX_PLANS, small.cachedPlans());
        }
    }
}
