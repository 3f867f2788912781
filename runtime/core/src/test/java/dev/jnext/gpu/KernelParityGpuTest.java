package dev.jnext.gpu;

import dev.jnext.cuda.kernels.Tensors;
import dev.jnext.cuda.kernels.DType;
import dev.jnext.cuda.kernels.RmsNormKernelReference;
import dev.jnext.cuda.kernels.GatedRmsNormKernelReference;
import dev.jnext.cuda.kernels.SiluMulKernelReference;

import dev.jnext.cuda.kernels.GatedRmsNormKernel;
import dev.jnext.cuda.kernels.RmsNormKernel;
import dev.jnext.cuda.kernels.SiluMulKernel;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

import static dev.jnext.gpu.GpuTestSupport.assertBf16Close;
import static dev.jnext.gpu.GpuTestSupport.download;
import static dev.jnext.gpu.GpuTestSupport.poisoned;
import static dev.jnext.gpu.GpuTestSupport.randomBf16;
import static dev.jnext.gpu.GpuTestSupport.upload;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * Each Foundation kernel against its CPU reference on random inputs, outputs poisoned with NaN first.
 * Tolerance: the kernels compute in fp32 like the references but sum in another order (and use rsqrtf), so a value may
 * land on the other side of a bf16 rounding boundary: 1 ulp per bf16 rounding on the path.
 */
@Tag("gpu")
class KernelParityGpuTest {
    private static final float EPS = 1e-6f;

    @ParameterizedTest(name = "rows={0}")
    @ValueSource(ints = {1, 7, 300, 4096})
    void rmsNormAndFusedResidualAdd(int rows) {
        int h = 2048;
        Random rnd = new Random(rows);
        short[] x = randomBf16(rnd, rows * h, 1.5), w = randomBf16(rnd, h, 0.2), res = randomBf16(rnd, rows * h, 3);
        Stream s = GpuTestSupport.stream();
        RmsNormKernel k = new RmsNormKernel(GpuTestSupport.kernels());
        try (DeviceBuffer dx = upload(x, "x"); DeviceBuffer dw = upload(w, "w"); DeviceBuffer dres = upload(res, "residual");
             DeviceBuffer dy = poisoned(rows * h, "y")) {
            k.launch(s, new RmsNormKernel.Args(Tensors.rows(dx, DType.BF16, h), Tensors.of(dw, DType.BF16, h),
                    Tensors.rows(dy, DType.BF16, h)), rows, EPS);
            assertBf16Close(RmsNormKernelReference.reference(x, w, rows, h, EPS), download(dy, rows * h), 1, "rmsnorm");

            dy.fill16((short) 0xffff, s);
            k.launchAdd(s, new RmsNormKernel.AddArgs(Tensors.rows(dx, DType.BF16, h), Tensors.rows(dres, DType.BF16, h),
                    Tensors.of(dw, DType.BF16, h), Tensors.rows(dy, DType.BF16, h)), rows, EPS);
            short[] resRef = res.clone();
            short[] yRef = RmsNormKernelReference.referenceAdd(x, resRef, w, rows, h, EPS);
            assertArrayEquals(resRef, download(dres, rows * h), "residual add is one exact bf16 rounding");
            assertBf16Close(yRef, download(dy, rows * h), 1, "add_rmsnorm");
        }
    }

    private static GatedRmsNormKernel.Args gatedArgs(DeviceBuffer x, DeviceBuffer z, DeviceBuffer w, DeviceBuffer out, int dim) {
        return new GatedRmsNormKernel.Args(Tensors.rows(x, DType.BF16, dim), Tensors.rows(z, DType.BF16, dim),
                Tensors.of(w, DType.BF16, dim), Tensors.rows(out, DType.BF16, dim));
    }

    @ParameterizedTest(name = "rows={0} dim={1}")
    @CsvSource({"1, 128", "32, 128", "263, 128", "1000, 128", "131072, 128", "77, 24", "300, 256"})
    void gatedRmsNormAllRowsPerBlockVariantsAreIdenticalAndMatchTheReference(int rows, int d) {
        Random rnd = new Random(1000 + rows);
        short[] x = randomBf16(rnd, rows * d, 2), z = randomBf16(rnd, rows * d, 2), w = randomBf16(rnd, d, 1);
        Stream s = GpuTestSupport.stream();
        GatedRmsNormKernel k = new GatedRmsNormKernel(GpuTestSupport.kernels());
        short[][] outs = new short[3][];
        try (DeviceBuffer dx = upload(x, "x"); DeviceBuffer dz = upload(z, "z"); DeviceBuffer dw = upload(w, "w")) {
            int[] variants = {1, 2, 4};
            for (int v = 0; v < 3; v++) {
                try (DeviceBuffer dout = poisoned(rows * d, "out")) {
                    k.launch(s, gatedArgs(dx, dz, dw, dout, d), rows, EPS, variants[v]);
                    outs[v] = download(dout, rows * d);
                }
            }
            try (DeviceBuffer dout = poisoned(rows * d, "out")) {
                k.launch(s, gatedArgs(dx, dz, dw, dout, d), rows, EPS);
                assertArrayEquals(outs[0], download(dout, rows * d), "eager rule variant");
            }
        }
        assertArrayEquals(outs[0], outs[1], "1 vs 2 rows per block: bitwise");
        assertArrayEquals(outs[0], outs[2], "1 vs 4 rows per block: bitwise");
        // three bf16 roundings on the path (n, w·n, out): a 1-ulp difference in n can grow to 3 ulp at the output
        assertBf16Close(GatedRmsNormKernelReference.reference(x, z, w, rows, d, EPS), outs[0], 3, "gated rmsnorm");
    }

    @ParameterizedTest(name = "rows={0}")
    @ValueSource(ints = {1, 7, 1000})
    void siluMul(int rows) {
        int inter = 512;
        Random rnd = new Random(77 + rows);
        short[] gu = randomBf16(rnd, rows * 2 * inter, 2.5);
        SiluMulKernel k = new SiluMulKernel(GpuTestSupport.kernels());
        try (DeviceBuffer dgu = upload(gu, "gate_up"); DeviceBuffer dout = poisoned(rows * inter, "out")) {
            k.launch(GpuTestSupport.stream(), new SiluMulKernel.Args(Tensors.rows(dgu, DType.BF16, 2 * inter),
                    Tensors.rows(dout, DType.BF16, inter)), rows);
            assertBf16Close(SiluMulKernelReference.reference(gu, rows, inter), download(dout, rows * inter), 1, "silu_mul");
        }
    }
}
