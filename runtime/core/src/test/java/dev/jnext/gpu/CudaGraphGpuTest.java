package dev.jnext.gpu;

import dev.jnext.cuda.kernels.Tensors;
import dev.jnext.cuda.kernels.DType;
import dev.jnext.cuda.kernels.GatedRmsNormKernel;
import dev.jnext.cuda.kernels.KernelLibrary;
import dev.jnext.cuda.kernels.RmsNormKernel;
import dev.jnext.cuda.kernels.SiluMulKernel;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static dev.jnext.gpu.GpuTestSupport.download;
import static dev.jnext.gpu.GpuTestSupport.randomBf16;
import static dev.jnext.gpu.GpuTestSupport.upload;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A chain of kernels plus a cuBLASLt GEMM (an MLP block: RMSNorm → gate|up GEMM → SiLU·mul → down GEMM →
 * gated RMSNorm), captured once and replayed 1,000 times, equals eager execution bit for bit; the whole
 * cycle (buffers, Gemm, graph, modules) leaves device memory as it found it.
 */
@Tag("gpu")
class CudaGraphGpuTest {
    private static final int M = 64, H = 2048, I = 512, D = 128;

    @Test
    void capturedChainReplaysLikeEagerAndLeaksNothing() {
        Gpu gpu = GpuTestSupport.gpu();
        cycle(gpu, 1);                      // first cycle warms the driver's and cuBLASLt's own one-time allocations
        gpu.synchronize();
        long freeBefore = gpu.memoryInfo().free();
        long buffersBefore = gpu.liveBuffers(), objectsBefore = gpu.liveObjects();
        cycle(gpu, 1000);
        gpu.synchronize();
        assertEquals(buffersBefore, gpu.liveBuffers(), "device buffers left open");
        assertEquals(objectsBefore, gpu.liveObjects(), "streams/graphs/modules/handles left open");
        assertEquals(freeBefore, gpu.memoryInfo().free(), "device free memory before = after");
    }

    private void cycle(Gpu gpu, int replays) {
        Random rnd = new Random(5);
        try (KernelLibrary lib = new KernelLibrary(gpu);
             Stream s = gpu.createStream();
             Gemm gemm = new Gemm(gpu);
             DeviceBuffer x = upload(randomBf16(rnd, M * H, 1), "x");
             DeviceBuffer normW = upload(randomBf16(rnd, H, 0.1), "norm.w");
             DeviceBuffer wGateUp = upload(randomBf16(rnd, 2 * I * H, 0.02), "gate_up.w");
             DeviceBuffer wDown = upload(randomBf16(rnd, H * I, 0.04), "down.w");
             DeviceBuffer z = upload(randomBf16(rnd, M * H, 1), "z");
             DeviceBuffer gw = upload(randomBf16(rnd, D, 1), "gated.w");
             DeviceBuffer xn = gpu.allocate(2L * M * H, "xn");
             DeviceBuffer gu = gpu.allocate(2L * M * 2 * I, "gu");
             DeviceBuffer act = gpu.allocate(2L * M * I, "act");
             DeviceBuffer down = gpu.allocate(2L * M * H, "down");
             DeviceBuffer out = gpu.allocate(2L * M * H, "out")) {
            RmsNormKernel norm = new RmsNormKernel(lib);
            SiluMulKernel siluMul = new SiluMulKernel(lib);
            GatedRmsNormKernel gated = new GatedRmsNormKernel(lib);
            GatedRmsNormKernel.Args gatedArgs = new GatedRmsNormKernel.Args(Tensors.rows(down, DType.BF16, D),
                    Tensors.rows(z, DType.BF16, D), Tensors.of(gw, DType.BF16, D), Tensors.rows(out, DType.BF16, D));
            RmsNormKernel.Args normArgs = new RmsNormKernel.Args(Tensors.rows(x, DType.BF16, H), Tensors.of(normW, DType.BF16, H),
                    Tensors.rows(xn, DType.BF16, H));
            SiluMulKernel.Args siluArgs = new SiluMulKernel.Args(Tensors.rows(gu, DType.BF16, 2 * I), Tensors.rows(act, DType.BF16, I));
            CudaGraph.Body chain = st -> {
                norm.launch(st, normArgs, M, 1e-6f);
                gemm.matmul(st, xn.address(), wGateUp.address(), gu.address(), M, 2 * I, H);
                siluMul.launch(st, siluArgs, M);
                gemm.matmul(st, act.address(), wDown.address(), down.address(), M, H, I);
                gated.launch(st, gatedArgs, M * H / D, 1e-6f);
            };
            out.fill16((short) 0xffff, s);
            chain.enqueue(s);
            short[] eager = download(out, M * H, s);
            for (short v : eager) assertFalse(Float.isNaN(dev.jnext.numeric.Bf16.toFloat(v)), "eager output has NaN");

            try (CudaGraph graph = CudaGraph.capture(s, chain)) {
                assertTrue(graph.nodeCount() >= 5, "graph nodes: " + graph.nodeCount());
                for (DeviceBuffer b : new DeviceBuffer[] {xn, gu, act, down, out}) b.fill16((short) 0xffff, s);
                for (int i = 0; i < replays; i++) graph.replay(s);
                assertArrayEquals(eager, download(out, M * H, s), "graph replay x" + replays + " vs eager");
                // update in place: same topology, same buffers -> succeeds and still gives the same bits
                assertTrue(graph.update(s, chain), "in-place update of an identical capture");
                out.fill16((short) 0xffff, s);
                graph.replay(s);
                assertArrayEquals(eager, download(out, M * H, s), "after update");
            }
        }
    }

    private static short[] download(DeviceBuffer b, int n, Stream s) {
        s.synchronize();
        return GpuTestSupport.download(b, n);
    }
}
