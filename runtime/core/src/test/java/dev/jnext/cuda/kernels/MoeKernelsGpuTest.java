package dev.jnext.cuda.kernels;

import dev.jnext.gpu.CudaGraph;
import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Gemm;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.GpuTestSupport;
import dev.jnext.gpu.Stream;
import dev.jnext.numeric.Bf16;
import dev.jnext.cpu.ops.Linear;
import dev.jnext.cpu.ops.SparseMoe;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Arrays;
import java.util.Random;
import java.util.stream.IntStream;

import static dev.jnext.gpu.GpuTestSupport.download;
import static dev.jnext.gpu.GpuTestSupport.poisoned;
import static dev.jnext.gpu.GpuTestSupport.upload;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The MoE kernels against their CPU references on random inputs (never zeros), outputs poisoned with NaN first:
 * router (forced ties), device grouping (exact), and the whole block through the decode and prefill paths — against
 * a reference with the kernels' bf16 rounding points and against {@link SparseMoe} (fp32) — plus graph replay.
 */
@Tag("gpu")
class MoeKernelsGpuTest {
    private static Gemm gemm;

    private static Gemm gemm() {
        if (gemm == null) gemm = new Gemm(GpuTestSupport.gpu());
        return gemm;
    }

    @AfterAll
    static void closeGemm() {
        if (gemm != null) gemm.close();
    }

    @ParameterizedTest(name = "rows={0} experts={1} renorm={2}")
    @CsvSource({"1,512,true", "37,512,true", "4096,512,true", "300,64,false", "5,10,true"})
    void routerMatchesSparseMoeRouteWithLowestIndexOnTies(int rows, int experts, boolean renorm) {
        Random rnd = new Random(rows * 31L + experts);
        int topK = Math.min(10, experts), stride = experts + 8;
        short[] logits = MoeAndSamplingReferenceTest.tiedLogits(rnd, rows, stride, experts);
        Gpu gpu = GpuTestSupport.gpu();
        Stream s = GpuTestSupport.stream();
        try (DeviceBuffer dl = upload(logits, "logits"); DeviceBuffer ids = gpu.allocate(4L * rows * topK, "ids");
             DeviceBuffer w = poisoned(rows * topK, "weights")) {
            ids.fill32(-7, s);
            new MoeRouterKernel(GpuTestSupport.kernels()).launch(s, new MoeRouterKernel.Args(Tensors.rows(dl, DType.BF16, stride),
                    Tensors.rows(ids, DType.I32, topK), Tensors.rows(w, DType.BF16, topK), experts, renorm), rows);
            MoeRouterKernel.Routes ref = MoeRouterKernelReference.reference(logits, stride, rows, experts, topK, renorm);
            assertArrayEquals(ref.ids(), MoeFixture.downloadInts(ids, rows * topK), "expert ids (ties: lowest index)");
            // softmax sums in another order: a weight may round to the neighbouring bf16 value
            GpuTestSupport.assertBf16Close(ref.weights(), download(w, rows * topK), 1, "routing weights");
        }
    }

    @ParameterizedTest(name = "pairs={0} experts={1}")
    @CsvSource({"1,64", "10,512", "2047,64", "2048,64", "2049,512", "40960,512", "40960,64", "5000,1"})
    void deviceGroupingIsTheStableCountingSort(int pairs, int experts) {
        Random rnd = new Random(pairs + experts);
        int[] ids = new int[pairs];
        for (int p = 0; p < pairs; p++) ids[p] = rnd.nextInt(4) == 0 ? experts / 3 : rnd.nextInt(Math.max(1, experts - experts / 4));
        int blockM = MoeExpertGemm.BLOCK_M;
        int tiles = ExpertGrouping.maxTiles(pairs, experts, blockM);
        Gpu gpu = GpuTestSupport.gpu();
        Stream s = GpuTestSupport.stream();
        try (DeviceBuffer dIds = MoeFixture.uploadInts(gpu, ids, "ids");
             DeviceBuffer counts = gpu.allocate(4L * ExpertGrouping.chunks(pairs) * experts, "counts");
             DeviceBuffer start = gpu.allocate(4L * (experts + 1), "start");
             DeviceBuffer sorted = gpu.allocate(4L * tiles * blockM, "sorted");
             DeviceBuffer pairRow = gpu.allocate(4L * pairs, "pair_row");
             DeviceBuffer tileExpert = gpu.allocate(4L * tiles, "tile_expert")) {
            for (DeviceBuffer b : new DeviceBuffer[]{start, sorted, pairRow, tileExpert}) b.fill32(0x7fff0000, s);
            new ExpertGrouping(GpuTestSupport.kernels()).launch(s, new ExpertGrouping.Args(Tensors.of(dIds, DType.I32, pairs),
                    Tensors.rows(counts, DType.I32, experts), Tensors.of(start, DType.I32, experts + 1), Tensors.rows(sorted, DType.I32, blockM),
                    Tensors.of(pairRow, DType.I32, pairs), Tensors.of(tileExpert, DType.I32, tiles)), pairs);
            ExpertGrouping.Groups ref = ExpertGroupingReference.reference(ids, experts, blockM);
            int[] gotStart = MoeFixture.downloadInts(start, experts + 1);
            assertArrayEquals(ref.expertStart(), gotStart, "padded expert segments");
            int used = gotStart[experts];
            assertArrayEquals(ref.sortedPairs(), Arrays.copyOf(MoeFixture.downloadInts(sorted, tiles * blockM), used), "sorted pairs");
            assertArrayEquals(ref.pairRow(), MoeFixture.downloadInts(pairRow, pairs), "row of each pair");
            assertArrayEquals(ref.tileExpert(), MoeFixture.downloadInts(tileExpert, tiles), "expert of each tile");
        }
    }

    @ParameterizedTest(name = "tokens={0} experts={1} hidden={2} inter={3} shared={4} {5}")
    @CsvSource({
            "1,64,2048,512,true,MMA_SYNC", "8,64,2048,512,true,MMA_SYNC", "3,512,256,128,true,MMA_SYNC",     // decode path
            "1,32,512,256,false,MMA_SYNC",
            "300,64,2048,512,true,MMA_SYNC", "4096,64,2048,512,true,MMA_SYNC", "700,512,256,128,true,MMA_SYNC", // prefill path
            "90,16,384,192,false,MMA_SYNC",
            "300,64,2048,512,true,WGMMA", "4096,64,2048,512,true,WGMMA", "700,512,256,128,true,WGMMA",          // sm_90a
            "90,16,384,192,false,WGMMA"})  // shapes wgmma does not tile fall back to mma.sync
    void wholeBlockMatchesTheRoundingFaithfulReferenceAndSparseMoe(int tokens, int experts, int hidden, int inter, boolean shared,
                                                                   MoeExpertGemm.Engine engine) {
        GpuSparseMoe.Shape shape = new GpuSparseMoe.Shape(hidden, experts, 10, inter, shared ? inter : 0, true);
        Gpu gpu = GpuTestSupport.gpu();
        Stream s = GpuTestSupport.stream();
        short[] x = MoeFixture.random(tokens * 7L + experts, (long) tokens * hidden, 1.0);
        try (MoeFixture f = new MoeFixture(gpu, shape, 1000 + tokens);
             GpuSparseMoe moe = new GpuSparseMoe(GpuTestSupport.kernels(), gemm(), shape, Math.max(tokens, 16), 8, engine);
             DeviceBuffer dx = upload(x, "x"); DeviceBuffer out = poisoned(tokens * hidden, "out")) {
            StepShape shape1 = StepShape.prefill(tokens, 1);
            GpuSparseMoe.Layer layer = moe.bind(f.weights(), Tensors.rows(dx, DType.BF16, hidden), Tensors.rows(out, DType.BF16, hidden));
            moe.forward(s, shape1, layer);
            short[] got = download(out, tokens * hidden);
            int rr = GpuSparseMoe.routerRows(shape);
            short[] logits = download(moe.logits(), tokens * rr);
            int[] ids = MoeFixture.downloadInts(moe.topkIds(), tokens * 10);
            short[] weights = download(moe.topkWeights(), tokens * 10);
            MoeRouterKernel.Routes routes = MoeRouterKernelReference.reference(logits, rr, tokens, experts, 10, true);
            assertArrayEquals(routes.ids(), ids, "routing of the GEMM's logits");

            // 1) rounding-faithful reference on a sample of tokens (GPU routing and gate logits)
            int[] sample = sampleTokens(tokens, 48, new Random(tokens));
            double[] err = new double[2];
            float[][] refs = new float[tokens][];
            IntStream.of(sample).parallel().forEach(t -> {
                float[] scale = new float[hidden];
                float gateLogit = shared ? Bf16.toFloat(logits[t * rr + experts]) : 0f;
                refs[t] = f.referenceToken(x, t, ids, weights, gateLogit, scale);
                for (int o = 0; o < hidden; o++) {
                    float g = Bf16.toFloat(got[t * hidden + o]), r = refs[t][o];
                    assertFalse(Float.isNaN(g), "NaN at token " + t + " col " + o + " (unwritten)");
                    // both sides round at the same points; fp32 sums in another order can cross a bf16 rounding
                    // boundary: at most ~1 ulp per rounded term (2^-8 of the magnitudes summed) plus 2 ulp of the output
                    double tol = Math.ulp(Bf16.round(Math.abs(r))) * 65536.0 * 2 + Math.scalb(scale[o], -7);
                    if (Math.abs(g - r) > tol) fail("token " + t + " col " + o + ": got " + g + " expected " + r + " (tol " + tol + ")");
                }
            });
            for (int t : sample) {
                for (int o = 0; o < hidden; o++) {
                    double d = Bf16.toFloat(got[t * hidden + o]) - refs[t][o];
                    err[0] += d * d;
                    err[1] += (double) refs[t][o] * refs[t][o];
                }
            }
            double rel = Math.sqrt(err[0] / err[1]);
            assertTrue(rel < 2e-3, "relative L2 error vs the rounding-faithful reference: " + rel);

            // 2) the fp32 op (SparseMoe) on tokens whose fp32 routing equals the GPU's
            if (shared) {
                SparseMoe op = f.op();
                int checked = 0;
                double worst = 0;
                for (int t : Arrays.copyOf(sample, Math.min(sample.length, 16))) {
                    float[] xt = new float[hidden];
                    for (int c = 0; c < hidden; c++) xt[c] = Bf16.toFloat(x[t * hidden + c]);
                    float[] fl = new float[experts];
                    Linear.forward(op.router(), xt, 0, 1, fl, 0);
                    SparseMoe.Routing r = op.route(fl, 0);
                    int[] mine = Arrays.copyOfRange(ids, t * 10, t * 10 + 10);
                    if (!Arrays.equals(sorted(r.experts()), sorted(mine))) continue;  // a bf16 logit flipped the top-k set
                    float[] y = new float[hidden];
                    op.forward(xt, 1, y);
                    double num = 0, den = 0;
                    for (int o = 0; o < hidden; o++) {
                        double d = Bf16.toFloat(got[t * hidden + o]) - y[o];
                        num += d * d;
                        den += (double) y[o] * y[o];
                    }
                    worst = Math.max(worst, Math.sqrt(num / den));
                    checked++;
                }
                assertTrue(checked >= Math.min(4, sample.length / 2), "tokens with unambiguous routing: " + checked);
                // bf16 weights/inputs on both sides; the GPU rounds gate, up, act, y, contributions and sums to bf16
                assertTrue(worst < 2e-2, "relative L2 error vs SparseMoe (fp32): " + worst);
            }

            // 3) same work, same bits: eager again and a graph replay give identical outputs
            out.fill16((short) 0xffff, s);
            moe.forward(s, shape1, layer);
            assertArrayEquals(got, download(out, tokens * hidden), "eager rerun is bitwise identical");
            out.fill16((short) 0xffff, s);
            try (CudaGraph g = CudaGraph.capture(s, st -> moe.forward(st, shape1, layer))) {
                g.replay(s);
                g.replay(s);
                assertArrayEquals(got, download(out, tokens * hidden), "graph replay is bitwise identical");
            }
        }
    }

    @Test
    void decodeAndPrefillPathsAgree() {
        GpuSparseMoe.Shape shape = new GpuSparseMoe.Shape(1024, 64, 10, 256, 256, true);
        int tokens = 8;
        Gpu gpu = GpuTestSupport.gpu();
        Stream s = GpuTestSupport.stream();
        short[] x = MoeFixture.random(77, (long) tokens * 1024, 1.0);
        try (MoeFixture f = new MoeFixture(gpu, shape, 78);
             GpuSparseMoe moe = new GpuSparseMoe(GpuTestSupport.kernels(), gemm(), shape, 64, 8);
             DeviceBuffer dx = upload(x, "x"); DeviceBuffer a = poisoned(tokens * 1024, "a"); DeviceBuffer b = poisoned(tokens * 1024, "b")) {
            moe.decode(s, moe.bind(f.weights(), Tensors.rows(dx, DType.BF16, 1024), Tensors.rows(a, DType.BF16, 1024)), tokens);
            moe.prefill(s, moe.bind(f.weights(), Tensors.rows(dx, DType.BF16, 1024), Tensors.rows(b, DType.BF16, 1024)), tokens);
            short[] da = download(a, tokens * 1024), db = download(b, tokens * 1024);
            int far = 0;
            for (int i = 0; i < da.length; i++) {
                assertFalse(Float.isNaN(Bf16.toFloat(da[i])) || Float.isNaN(Bf16.toFloat(db[i])), "NaN at " + i);
                if (Bf16.ulpDistance(da[i], db[i]) > 2) far++;
            }
            // same rounding points, different fp32 summation order (GEMV lanes vs mma tiles, cuBLASLt vs GEMV for the shared expert)
            assertTrue(far < da.length / 100, "elements more than 2 ulp apart: " + far + " of " + da.length);
        }
    }

    private static int[] sorted(int[] a) {
        int[] c = a.clone();
        Arrays.sort(c);
        return c;
    }

    private static int[] sampleTokens(int tokens, int n, Random rnd) {
        if (tokens <= n) return IntStream.range(0, tokens).toArray();
        int[] s = rnd.ints(0, tokens).distinct().limit(n - 2).toArray();
        int[] all = Arrays.copyOf(s, n);
        all[n - 2] = 0;
        all[n - 1] = tokens - 1;
        return IntStream.of(all).distinct().toArray();
    }
}
