package dev.jnext.cuda.kernels;

import dev.jnext.gpu.CudaGraph;
import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.GpuTestSupport;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;
import dev.jnext.numeric.Bf16;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static dev.jnext.gpu.GpuTestSupport.upload;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * On-device sampling: greedy exactly equal to the reference argmax (ties, NaN rows), Philox equal to the Java
 * Random123 implementation, the stochastic path never leaving the reference's kept set and matching its
 * distribution (chi-square, fixed seeds, so the outcome is deterministic), and the generator state advancing
 * inside a replayed graph.
 */
@Tag("gpu")
class SamplingGpuTest {
    private static final int VOCAB = 151936;

    /** Logits ~ N(0, 2) with a few raised tokens, some of them tied, as bf16. */
    private static short[] logits(Random rnd, int rows, int stride, int vocab) {
        short[] l = new short[rows * stride];
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < stride; i++) l[r * stride + i] = Bf16.fromFloat(i < vocab ? (float) rnd.nextGaussian() * 2 : 1000f);
            float top = 9 + (float) rnd.nextGaussian();
            for (int j = 0; j < 12; j++) l[r * stride + rnd.nextInt(vocab)] = Bf16.fromFloat(top - (j / 3) * 0.75f);  // ties in threes
        }
        return l;
    }

    private static float[] row(short[] l, int r, int stride) {
        float[] f = new float[stride];
        for (int i = 0; i < stride; i++) f[i] = Bf16.toFloat(l[r * stride + i]);
        return f;
    }

    @ParameterizedTest(name = "rows={0}")
    @ValueSource(ints = {1, 3, 64})
    void greedyIsTheReferenceArgmaxWithLowestIdOnTies(int rows) {
        Random rnd = new Random(rows);
        int vocab = rows == 3 ? 151643 : VOCAB;  // fewer candidates than the row stride: the padded ids are never picked
        short[] l = logits(rnd, rows, VOCAB, vocab);
        if (rows == 64) l[5 * VOCAB + 777] = (short) 0x7fc1;  // a NaN row
        Gpu gpu = GpuTestSupport.gpu();
        Stream s = GpuTestSupport.stream();
        try (SamplingKernel k = new SamplingKernel(GpuTestSupport.kernels(), 64); DeviceBuffer dl = upload(l, "logits");
             DeviceBuffer ids = gpu.allocate(4L * rows, "ids"); DeviceBuffer ids2 = gpu.allocate(4L * rows, "ids2");
             DeviceBuffer params = gpu.allocate((long) SamplingKernel.PARAMS_BYTES * rows, "params"); DeviceBuffer rng = gpu.allocate(16L * rows, "rng")) {
            ids.fill32(-7, s);
            ids2.fill32(-7, s);
            k.greedy(s, Tensors.sampling(dl, VOCAB, null, null, null, null, ids), vocab, rows);
            int[] first = MoeFixture.downloadInts(ids, rows);
            ids.fill32(-7, s);
            k.greedy(s, Tensors.sampling(dl, VOCAB, null, null, null, null, ids), vocab, rows);  // the per-row counters were reset by the last blocks
            assertArrayEquals(first, MoeFixture.downloadInts(ids, rows), "second launch");
            uploadState(params, rng, rows, r -> SamplingKernel.RowParams.greedy(), 1);
            k.sample(s, Tensors.sampling(dl, VOCAB, params, rng, null, null, ids2), vocab, rows);
            int[] got = MoeFixture.downloadInts(ids, rows), got2 = MoeFixture.downloadInts(ids2, rows);
            for (int r = 0; r < rows; r++) {
                int expect = SamplingKernelReference.referenceArgmax(row(l, r, VOCAB), vocab);
                assertEquals(expect, got[r], "two-level argmax, row " + r);
                assertEquals(expect, got2[r], "sample_rows at temperature 0, row " + r);
            }
            if (rows == 64) assertEquals(-1, got[5], "NaN row");
        }
    }

    @Test
    void philoxOnTheDeviceIsRandom123() {
        int n = 1000;
        Random rnd = new Random(3);
        int[] counters = new int[4 * n], keys = new int[2 * n];
        for (int i = 0; i < counters.length; i++) counters[i] = rnd.nextInt();
        for (int i = 0; i < keys.length; i++) keys[i] = rnd.nextInt();
        Gpu gpu = GpuTestSupport.gpu();
        Stream s = GpuTestSupport.stream();
        Kernel philox = GpuTestSupport.kernels().kernel("sampling", "philox_blocks");
        try (DeviceBuffer c = MoeFixture.uploadInts(gpu, counters, "counter"); DeviceBuffer k = MoeFixture.uploadInts(gpu, keys, "key");
             DeviceBuffer out = gpu.allocate(16L * n, "out")) {
            out.fill32(0, s);
            philox.args().ptr(c.address()).ptr(k.address()).ptr(out.address()).i32(n);
            philox.launch(s, Dim3.of((n + 127) / 128), Dim3.of(128), 0);
            int[] got = MoeFixture.downloadInts(out, 4 * n);
            for (int i = 0; i < n; i++) {
                int[] ref = SamplingKernel.philox(new int[]{counters[4 * i], counters[4 * i + 1], counters[4 * i + 2], counters[4 * i + 3]},
                        new int[]{keys[2 * i], keys[2 * i + 1]});
                for (int j = 0; j < 4; j++) assertEquals(ref[j], got[4 * i + j], "block " + i + " word " + j);
            }
        }
    }

    /** The configurations checked statistically: each row of a launch is one draw with its own seed. */
    private static final SamplingKernel.RowParams[] CONFIGS = {
            new SamplingKernel.RowParams(1f, 0, 1f, 0f),       // plain softmax over everything
            new SamplingKernel.RowParams(0.7f, 20, 1f, 0f),    // top-k ending inside a tie group
            new SamplingKernel.RowParams(1f, 0, 0.8f, 0f),     // top-p
            new SamplingKernel.RowParams(1.3f, 50, 0.9f, 0f),  // top-k then top-p over the top-k set
            new SamplingKernel.RowParams(0.8f, 0, 1f, 0.05f),  // min-p
            new SamplingKernel.RowParams(1f, 7, 0.95f, 0.02f)};

    @Test
    void stochasticRowsStayInTheKeptSetAndFollowItsDistribution() {
        int rows = 512, launches = 40;
        Gpu gpu = GpuTestSupport.gpu();
        Stream s = GpuTestSupport.stream();
        Random rnd = new Random(42);
        for (int ci = 0; ci < CONFIGS.length; ci++) {
            SamplingKernel.RowParams p = CONFIGS[ci];
            int vocab = ci == 0 ? 2000 : VOCAB;  // the unrestricted case on a vocabulary small enough to bin
            short[] one = logits(rnd, 1, vocab, vocab);
            if (ci == 0) for (int i = 0; i < vocab; i++) one[i] = Bf16.fromFloat(Bf16.toFloat(one[i]) / 3);
            double[] dist = SamplingKernelReference.referenceDistribution(row(one, 0, vocab), vocab, p);
            short[] l = new short[rows * vocab];
            for (int r = 0; r < rows; r++) System.arraycopy(one, 0, l, r * vocab, vocab);
            long[] counts = new long[vocab];
            try (SamplingKernel k = new SamplingKernel(GpuTestSupport.kernels(), rows); DeviceBuffer dl = upload(l, "logits");
                 DeviceBuffer ids = gpu.allocate(4L * rows, "ids"); DeviceBuffer params = gpu.allocate((long) SamplingKernel.PARAMS_BYTES * rows, "params");
                 DeviceBuffer rng = gpu.allocate(16L * rows, "rng")) {
                uploadState(params, rng, rows, r -> p, 1000L * ci);
                for (int launch = 0; launch < launches; launch++) {
                    ids.fill32(-7, s);
                    k.sample(s, Tensors.sampling(dl, vocab, params, rng, null, null, ids), vocab, rows);
                    for (int id : MoeFixture.downloadInts(ids, rows)) {
                        assertTrue(id >= 0 && id < vocab, "config " + ci + ": id " + id);
                        assertTrue(dist[id] > 0, "config " + ci + ": sampled id " + id + " outside the kept set");
                        counts[id]++;
                    }
                }
            }
            double chi2 = chiSquare(counts, dist, (long) rows * launches);
            int df = (int) chi2Df[0];
            double critical = df * Math.pow(1 - 2.0 / (9 * df) + 4.75 * Math.sqrt(2.0 / (9 * df)), 3);  // p ≈ 1e-6
            assertTrue(chi2 < critical, "config " + ci + ": chi-square " + chi2 + " with " + df + " degrees of freedom (critical " + critical + ")");
        }
    }

    private static final double[] chi2Df = new double[1];

    /** Pearson's statistic over bins of expected count >= 5 (smaller ones pooled). */
    private static double chiSquare(long[] counts, double[] dist, long n) {
        double chi2 = 0, poolE = 0, poolO = 0;
        int bins = 0;
        for (int i = 0; i < dist.length; i++) {
            if (dist[i] == 0) continue;
            double e = dist[i] * n;
            if (e < 5) {
                poolE += e;
                poolO += counts[i];
                continue;
            }
            chi2 += (counts[i] - e) * (counts[i] - e) / e;
            bins++;
        }
        if (poolE > 0) {
            chi2 += (poolO - poolE) * (poolO - poolE) / poolE;
            bins++;
        }
        chi2Df[0] = Math.max(1, bins - 1);
        return chi2;
    }

    @Test
    void generatorStateAdvancesInsideAReplayedGraph() {
        int rows = 16;
        Random rnd = new Random(8);
        short[] l = logits(rnd, rows, VOCAB, VOCAB);
        Gpu gpu = GpuTestSupport.gpu();
        Stream s = GpuTestSupport.stream();
        SamplingKernel.RowParams p = new SamplingKernel.RowParams(1.5f, 0, 1f, 0f);
        try (SamplingKernel k = new SamplingKernel(GpuTestSupport.kernels(), rows); DeviceBuffer dl = upload(l, "logits");
             DeviceBuffer ids = gpu.allocate(4L * rows, "ids"); DeviceBuffer params = gpu.allocate((long) SamplingKernel.PARAMS_BYTES * rows, "params");
             DeviceBuffer rng = gpu.allocate(16L * rows, "rng")) {
            uploadState(params, rng, rows, r -> p, 5);
            int[][] eager = new int[3][];
            for (int i = 0; i < 3; i++) {
                k.sample(s, Tensors.sampling(dl, VOCAB, params, rng, null, null, ids), VOCAB, rows);
                eager[i] = MoeFixture.downloadInts(ids, rows);
            }
            assertNotEquals(java.util.Arrays.toString(eager[0]), java.util.Arrays.toString(eager[1]), "fresh numbers each call");
            uploadState(params, rng, rows, r -> p, 5);  // back to offset 0
            try (CudaGraph g = CudaGraph.capture(s, st -> k.sample(st, Tensors.sampling(dl, VOCAB, params, rng, null, null, ids), VOCAB, rows))) {
                for (int i = 0; i < 3; i++) {
                    ids.fill32(-7, s);
                    g.replay(s);
                    assertArrayEquals(eager[i], MoeFixture.downloadInts(ids, rows), "replay " + i + " draws what eager call " + i + " drew");
                }
            }
            int[] state = MoeFixture.downloadInts(rng, 4 * rows);
            for (int r = 0; r < rows; r++) assertEquals(3, state[4 * r + 2], "row " + r + " offset after three replays");
        }
    }

    private static void uploadState(DeviceBuffer params, DeviceBuffer rng, int rows, java.util.function.IntFunction<SamplingKernel.RowParams> p,
                               long seedBase) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment hp = a.allocate((long) SamplingKernel.PARAMS_BYTES * rows), hr = a.allocate(16L * rows);
            for (int r = 0; r < rows; r++) {
                SamplingKernel.writeParams(hp, r, p.apply(r));
                SamplingKernel.writeRng(hr, r, seedBase * 7919 + r * 104729L + 1, 0);
            }
            params.copyFromHost(hp);
            rng.copyFromHost(hr);
        }
    }

    @Test
    void embeddingGatherCopiesRowsAndZeroesPadding() {
        int vocab = 5000, hidden = 2048, tokens = 300;
        Random rnd = new Random(4);
        short[] table = GpuTestSupport.randomBf16(rnd, vocab * hidden, 1);
        int[] ids = new int[tokens];
        for (int t = 0; t < tokens; t++) ids[t] = t == 7 ? -1 : rnd.nextInt(vocab);
        ids[0] = vocab - 1;
        Gpu gpu = GpuTestSupport.gpu();
        try (DeviceBuffer dt = upload(table, "table"); DeviceBuffer di = MoeFixture.uploadInts(gpu, ids, "ids");
             DeviceBuffer out = GpuTestSupport.poisoned(tokens * hidden, "out")) {
            new EmbeddingKernel(GpuTestSupport.kernels()).launch(GpuTestSupport.stream(), new EmbeddingKernel.Args(
                    Tensors.of(dt, DType.BF16, vocab, hidden), Tensors.of(di, DType.I32, tokens), Tensors.rows(out, DType.BF16, hidden)),
                    tokens, vocab);
            assertArrayEquals(EmbeddingKernelReference.reference(table, ids, hidden, vocab), GpuTestSupport.download(out, tokens * hidden));
        }
    }
}
