package dev.jnext.cuda.kernels;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.GpuTestSupport;
import dev.jnext.gpu.Stream;
import dev.jnext.cuda.kernels.AttentionFixture.Spec;
import dev.jnext.cuda.kernels.ChunkedDeltaRuleKernel.Config;
import dev.jnext.cuda.kernels.ChunkedDeltaRuleKernel.Path;
import dev.jnext.cuda.kernels.GatedDeltaRuleDecodeKernel.Gates;
import dev.jnext.numeric.Bf16;
import dev.jnext.cpu.ops.GatedDeltaRule;
import dev.jnext.cuda.state.AttentionBatch;
import dev.jnext.cuda.state.PageTable;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static dev.jnext.gpu.GpuTestSupport.download;
import static dev.jnext.gpu.GpuTestSupport.poisoned;
import static dev.jnext.gpu.GpuTestSupport.randomBf16;
import static dev.jnext.gpu.GpuTestSupport.upload;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The graph-safety contract of every core, on the GPU: a launch whose {@link StepShape} is larger than the live batch
 * (more entries than staged, more rows than real tokens), with NaN planted in every padded row (a padding entry's rows and
 * the rows past the last entry, in every input), gives the real rows the same bits as the exact shape with finite
 * padding, writes zeros to every padded output row, leaves the state of padding and empty entries alone, and raises no
 * CUDA error (each test ends with a synchronize). Empty entries (no new tokens) sit between real ones.
 */
@Tag("gpu")
class PaddingGpuTest {
    /** A bf16 NaN pattern planted in padded input rows. */
    static final short NAN = (short) 0x7fc1;
    static final int NAN_F32 = 0x7fc00001;

    private static void plantRows(short[] a, int width, boolean[] padded) {
        for (int t = 0; t < padded.length; t++) if (padded[t]) Arrays.fill(a, t * width, (t + 1) * width, NAN);
    }

    private static void plantRows(float[] a, int width, boolean[] padded) {
        for (int t = 0; t < padded.length; t++) if (padded[t]) Arrays.fill(a, t * width, (t + 1) * width, Float.intBitsToFloat(NAN_F32));
    }

    /** Rows [t·width, (t+1)·width) of real rows equal, of padded rows zero (only rows below {@code rows} compared). */
    private static void assertRows(short[] exact, short[] got, int width, boolean[] padded, int rows, String what) {
        for (int t = 0; t < rows; t++) {
            for (int i = t * width; i < (t + 1) * width; i++) {
                if (padded[t]) {
                    if (got[i] != 0) throw new AssertionError(what + ": padded row " + t + " not zero at " + (i - t * width) + ": " + Bf16.toFloat(got[i]));
                } else if (exact[i] != got[i]) {
                    throw new AssertionError(what + ": real row " + t + " element " + (i - t * width) + ": " + Bf16.toFloat(got[i])
                            + " with the larger shape, " + Bf16.toFloat(exact[i]) + " with the exact one");
                }
            }
        }
    }

    private static short[] copyOfRows(short[] a, int width, int rows) {
        return Arrays.copyOf(a, width * rows);
    }

    // ------------------------------------------------------------------------------------------------- attention

    @Test
    void attentionPrefillCoreIgnoresNaNPaddingAndALargerShapeGivesTheSameBits() {
        AttentionGeometry g = new AttentionGeometry(16, 2, 256, 64);
        double theta = 1e7;
        float eps = 1e-6f;
        // a real prompt, a padding entry, an empty entry (cached tokens, nothing new), a real extend
        List<Spec> specs = List.of(new Spec(0, 40), new Spec(-1, 5), new Spec(30, 0), new Spec(100, 17));
        int hd = g.headDim(), w = g.heads() * hd, kvw = g.kvHeads() * hd;
        Random rnd = new Random(5);
        Stream s = GpuTestSupport.stream();
        try (AttentionFixture f = new AttentionFixture(g, specs, 1);
             GatedAttentionCore core = new GatedAttentionCore(GpuTestSupport.kernels(), g, theta, eps, 8)) {
            f.randomKv(rnd, false);
            f.uploadPool();
            int real = f.totalTokens, rows = real + 13;
            boolean[] padded = new boolean[rows];
            for (int t = f.firstRow[1]; t < f.firstRow[1] + 5; t++) padded[t] = true;
            for (int t = real; t < rows; t++) padded[t] = true;
            short[] qw = randomBf16(rnd, hd, 0.3), kw = randomBf16(rnd, hd, 0.3);
            short[] qg = randomBf16(rnd, rows * 2 * w, 3), kv = randomBf16(rnd, rows * 2 * kvw, 3);
            short[] qgNan = qg.clone(), kvNan = kv.clone();
            plantRows(qgNan, 2 * w, padded);
            plantRows(kvNan, 2 * kvw, padded);
            int maxPages = 1;
            for (PageTable t : f.tables) if (t != null) maxPages = Math.max(maxPages, t.pageCount() + 1);
            try (AttentionBatch batch = new AttentionBatch(GpuTestSupport.gpu(), specs.size() + 3, maxPages);
                 DeviceBuffer dqw = upload(qw, "q_norm"); DeviceBuffer dkw = upload(kw, "k_norm")) {
                batch.stage(f.sequences, s);
                short[][] exact = runAttention(core, StepShape.prefill(real, specs.size()), qg, kv, kvw, dqw, dkw, batch, f, rows);
                short[] poolExact = f.downloadPool();
                short[][] big = runAttention(core, StepShape.prefill(rows, specs.size() + 3), qgNan, kvNan, kvw, dqw, dkw, batch, f, rows);
                assertArrayEquals(poolExact, f.downloadPool(), "KV pool: the same K/V for the real tokens, nothing for padded rows");
                boolean[] paddedExact = Arrays.copyOf(padded, real);
                assertRows(copyOfRows(exact[0], w, real), big[0], w, paddedExact, real, "prep q");
                assertRows(copyOfRows(exact[1], w, real), big[1], w, paddedExact, real, "attention out");
                assertZeroRows(big[0], w, real, rows, "prep q (all padded rows)");
                assertZeroRows(big[1], w, real, rows, "attention out (all padded rows)");
                // and the reference attention on what prep produced
                f.assertOutput(f.reference(poolExact, Arrays.copyOf(big[0], real * w)), AttentionGpuTest.gateView(qg, g, real),
                        2 * w, 2 * hd, Arrays.copyOf(big[1], real * w), "prefill core, NaN padding, larger shape");
            }
        }
    }

    /** Rows [from, rows) must be zero (padding the exact-shape run does not have). */
    private static void assertZeroRows(short[] got, int width, int from, int rows, String what) {
        for (int t = from; t < rows; t++) {
            for (int i = t * width; i < (t + 1) * width; i++) {
                if (got[i] != 0) throw new AssertionError(what + ": row " + t + " not zero: " + Bf16.toFloat(got[i]));
            }
        }
    }

    /** One core forward on fresh (poisoned) q scratch and output: {q, out}, all {@code rows} rows. */
    private static short[][] runAttention(GatedAttentionCore core, StepShape shape, short[] qg, short[] kv, int kvw, DeviceBuffer qw,
                                          DeviceBuffer kw, AttentionBatch batch, AttentionFixture f, int rows) {
        Stream s = GpuTestSupport.stream();
        int w = f.g.heads() * f.g.headDim();
        try (DeviceBuffer dqg = upload(qg, "qg"); DeviceBuffer dkv = upload(kv, "kv");
             DeviceBuffer q = poisoned(rows * w, "q"); DeviceBuffer out = poisoned(rows * w, "out")) {
            int hd = f.g.headDim();
            core.forward(s, shape, new GatedAttentionCore.Args(f.g, Tensors.rows(dqg, DType.BF16, 2 * w), Tensors.rows(dkv, DType.BF16, 2 * kvw),
                    Tensors.of(qw, DType.BF16, hd), Tensors.of(kw, DType.BF16, hd), Tensors.rows(q, DType.BF16, f.g.heads(), hd),
                    Tensors.rows(out, DType.BF16, w)), batch, f.pages, AttentionFixture.LAYER);
            s.synchronize();
            return new short[][] {download(q, rows * w), download(out, rows * w)};
        }
    }

    @Test
    void attentionDecodeIgnoresNaNPaddingAndUnstagedEntries() {
        AttentionGeometry g = new AttentionGeometry(16, 2, 256, 64);
        List<Spec> specs = List.of(new Spec(50, 1), new Spec(-1, 1), new Spec(200, 1), new Spec(0, 1));
        int hd = g.headDim(), w = g.heads() * hd, kvw = g.kvHeads() * hd;
        Random rnd = new Random(6);
        Stream s = GpuTestSupport.stream();
        int real = specs.size(), rows = real + 3;
        boolean[] padded = {false, true, false, false, true, true, true};
        try (AttentionFixture f = new AttentionFixture(g, specs, 1);
             GatedAttentionCore core = new GatedAttentionCore(GpuTestSupport.kernels(), g, 1e7, 1e-6f, 8);
             DecodeAttentionKernel decode = new DecodeAttentionKernel(GpuTestSupport.kernels(), g, 8)) {
            f.randomKv(rnd, false);
            f.uploadPool();
            short[] qw = randomBf16(rnd, hd, 0.3), kw = randomBf16(rnd, hd, 0.3);
            short[] qg = randomBf16(rnd, rows * 2 * w, 3), kv = randomBf16(rnd, rows * 2 * kvw, 3);
            short[] qgNan = qg.clone(), kvNan = kv.clone();
            plantRows(qgNan, 2 * w, padded);
            plantRows(kvNan, 2 * kvw, padded);
            int maxPages = 1;
            for (PageTable t : f.tables) if (t != null) maxPages = Math.max(maxPages, t.pageCount() + 1);
            try (AttentionBatch batch = new AttentionBatch(GpuTestSupport.gpu(), rows, maxPages);
                 DeviceBuffer dqw = upload(qw, "q_norm"); DeviceBuffer dkw = upload(kw, "k_norm")) {
                batch.stage(f.sequences, s);
                short[][] exact = runAttention(core, StepShape.decode(real), qg, kv, kvw, dqw, dkw, batch, f, rows);
                short[][] big = runAttention(core, StepShape.decode(rows), qgNan, kvNan, kvw, dqw, dkw, batch, f, rows);
                boolean[] paddedExact = Arrays.copyOf(padded, real);
                assertRows(copyOfRows(exact[0], w, real), big[0], w, paddedExact, real, "decode prep q");
                assertZeroRows(big[1], w, real, rows, "decode out (unstaged entries)");
                short[] pool = f.downloadPool();
                // the split count follows shape.seqs(): compare each with the reference, then bits at equal splits below
                f.assertOutput(f.reference(pool, Arrays.copyOf(exact[0], real * w)), AttentionGpuTest.gateView(qg, g, real), 2 * w,
                        2 * hd, Arrays.copyOf(exact[1], real * w), "decode core, exact shape");
                f.assertOutput(f.reference(pool, Arrays.copyOf(big[0], real * w)), AttentionGpuTest.gateView(qg, g, real), 2 * w,
                        2 * hd, Arrays.copyOf(big[1], real * w), "decode core, NaN padding, larger shape");

                // the decode kernel alone, NaN in the padded q and gate rows, the same split count for both shapes: same bits
                short[] q = Arrays.copyOf(exact[0], rows * w);
                short[] qNan = q.clone();
                plantRows(qNan, w, padded);
                int splits = 3;
                short[] a = runDecode(decode, StepShape.decode(real), q, qg, batch, f, rows, splits);
                short[] b = runDecode(decode, StepShape.decode(rows), qNan, qgNan, batch, f, rows, splits);
                assertRows(copyOfRows(a, w, real), b, w, paddedExact, real, "decode kernel at " + splits + " splits");
                assertZeroRows(b, w, real, rows, "decode kernel (unstaged entries)");
            }
        }
    }

    private static short[] runDecode(DecodeAttentionKernel k, StepShape shape, short[] q, short[] qg, AttentionBatch batch,
                                     AttentionFixture f, int rows, int splits) {
        Stream s = GpuTestSupport.stream();
        int hd = f.g.headDim(), w = f.g.heads() * hd;
        try (DeviceBuffer dq = upload(q, "q"); DeviceBuffer dqg = upload(qg, "qg"); DeviceBuffer out = poisoned(rows * w, "out")) {
            k.launch(s, shape, new DecodeAttentionKernel.Args(f.g, Tensors.rows(dq, DType.BF16, f.g.heads(), hd), Tensors.rows(out, DType.BF16, w),
                    Tensors.rows(dqg, DType.BF16, f.g.heads(), 2 * hd), hd), batch, f.pages, AttentionFixture.LAYER, splits);
            s.synchronize();
            return download(out, rows * w);
        }
    }

    // ------------------------------------------------------------------------------------------------- conv1d

    @Test
    void convPrefillIgnoresNaNPaddingEmptyEntriesAndALargerShape() {
        int channels = 64, width = 4, k1 = width - 1;
        int[] lengths = {20, 6, 0, 9};
        int[] slots = {2, -1, 0, 1};
        int entries = lengths.length, poolSlots = 4;
        int[] cu = new int[entries + 1];
        for (int i = 0; i < entries; i++) cu[i + 1] = cu[i] + lengths[i];
        int real = cu[entries], rows = real + 11;
        int[] cuBig = Arrays.copyOf(cu, entries + 3), slotsBig = Arrays.copyOf(slots, entries + 2);
        cuBig[entries + 1] = cuBig[entries + 2] = real;
        slotsBig[entries] = 3;  // an empty entry with a live slot: untouched
        slotsBig[entries + 1] = -1;
        boolean[] padded = new boolean[rows];
        for (int t = cu[1]; t < cu[2]; t++) padded[t] = true;
        for (int t = real; t < rows; t++) padded[t] = true;
        Random rnd = new Random(7);
        short[] x = randomBf16(rnd, rows * channels, 1.0), xNan = x.clone();
        plantRows(xNan, channels, padded);
        short[] w = randomBf16(rnd, channels * width, 0.5);
        short[] pool = randomBf16(rnd, poolSlots * channels * k1, 1.0);
        short[] refPool = pool.clone();
        short[] refOut = new short[rows * channels];
        for (int b = 0; b < entries; b++) {
            if (slots[b] >= 0 && lengths[b] > 0) {
                CausalConv1dKernelReference.reference(x, cu[b], lengths[b], w, refPool, slots[b] * channels * k1, channels, width, refOut, null);
            }
        }
        Stream s = GpuTestSupport.stream();
        CausalConv1dKernel kernel = new CausalConv1dKernel(GpuTestSupport.kernels());
        try (DeviceBuffer dw = upload(w, "w"); DeviceBuffer dPool = upload(pool, "conv state")) {
            short[] exact = runConv(kernel, StepShape.prefill(real, entries), x, cu, slots, dw, dPool, rows, channels, width);
            short[] poolExact = download(dPool, pool.length);
            assertArrayEquals(refPool, poolExact, "conv state: live entries' last inputs, padding and empty entries' slots untouched");
            DeviceArrays.copyIn(dPool, pool);
            short[] big = runConv(kernel, StepShape.prefill(rows, entries + 2), xNan, cuBig, slotsBig, dw, dPool, rows, channels, width);
            assertArrayEquals(poolExact, download(dPool, pool.length), "conv state with the larger shape and NaN padding");
            assertRows(copyOfRows(exact, channels, real), big, channels, Arrays.copyOf(padded, real), real, "conv prefill");
            assertZeroRows(big, channels, real, rows, "conv prefill (rows past the last entry)");
            for (int t = 0; t < real; t++) {
                if (!padded[t]) assertFalse(Float.isNaN(Bf16.toFloat(big[t * channels])), "real row " + t + " written");
            }
        }
    }

    private static short[] runConv(CausalConv1dKernel k, StepShape shape, short[] x, int[] cu, int[] slots, DeviceBuffer w,
                                   DeviceBuffer pool, int rows, int channels, int width) {
        Stream s = GpuTestSupport.stream();
        try (DeviceBuffer dx = upload(x, "x"); DeviceBuffer dCu = DeviceArrays.upload(cu, "cu_seqlens");
             DeviceBuffer dSlots = DeviceArrays.upload(slots, "slots"); DeviceBuffer out = poisoned(rows * channels, "out")) {
            k.launchPrefill(s, shape, new CausalConv1dKernel.PrefillArgs(Tensors.rows(dx, DType.BF16, channels),
                    Tensors.of(w, DType.BF16, channels, width), Tensors.rows(pool, DType.BF16, channels, width - 1), Tensors.rows(dCu, DType.I32),
                    Tensors.rows(dSlots, DType.I32), Tensors.rows(out, DType.BF16, channels)));
            s.synchronize();
            return download(out, rows * channels);
        }
    }

    @Test
    void convUpdateIgnoresNaNPaddingRowsAndALargerShape() {
        int channels = 8192, width = 4, k1 = width - 1;
        int[] slots = {3, -1, 0, -1, 1};
        int real = slots.length, rows = real + 3;
        int[] slotsBig = Arrays.copyOf(slots, rows);
        Arrays.fill(slotsBig, real, rows, -1);
        boolean[] padded = {false, true, false, true, false, true, true, true};
        Random rnd = new Random(8);
        short[] x = randomBf16(rnd, rows * channels, 1.0), xNan = x.clone();
        plantRows(xNan, channels, padded);
        short[] w = randomBf16(rnd, channels * width, 0.5);
        short[] pool = randomBf16(rnd, 4 * channels * k1, 1.0);
        Stream s = GpuTestSupport.stream();
        CausalConv1dKernel kernel = new CausalConv1dKernel(GpuTestSupport.kernels());
        try (DeviceBuffer dw = upload(w, "w"); DeviceBuffer dPool = upload(pool, "conv state")) {
            short[] exact = runUpdate(kernel, StepShape.decode(real), x, slots, dw, dPool, rows, channels, width);
            short[] poolExact = download(dPool, pool.length);
            short[] untouched = Arrays.copyOfRange(pool, 2 * channels * k1, 3 * channels * k1);
            assertArrayEquals(untouched, Arrays.copyOfRange(poolExact, 2 * channels * k1, 3 * channels * k1), "slot 2 belongs to nobody");
            DeviceArrays.copyIn(dPool, pool);
            short[] big = runUpdate(kernel, StepShape.decode(rows), xNan, slotsBig, dw, dPool, rows, channels, width);
            assertArrayEquals(poolExact, download(dPool, pool.length), "conv state with the larger shape and NaN padding");
            assertRows(copyOfRows(exact, channels, real), big, channels, Arrays.copyOf(padded, real), real, "conv update");
            assertZeroRows(big, channels, real, rows, "conv update (padding rows of the larger shape)");
        }
    }

    private static short[] runUpdate(CausalConv1dKernel k, StepShape shape, short[] x, int[] slots, DeviceBuffer w, DeviceBuffer pool,
                                     int rows, int channels, int width) {
        Stream s = GpuTestSupport.stream();
        try (DeviceBuffer dx = upload(x, "x"); DeviceBuffer dSlots = DeviceArrays.upload(slots, "slots");
             DeviceBuffer out = poisoned(rows * channels, "out")) {
            k.launchUpdate(s, shape, new CausalConv1dKernel.UpdateArgs(Tensors.rows(dx, DType.BF16, channels),
                    Tensors.of(w, DType.BF16, channels, width), Tensors.rows(pool, DType.BF16, channels, width - 1),
                    Tensors.rows(dSlots, DType.I32), Tensors.rows(out, DType.BF16, channels)));
            s.synchronize();
            return download(out, rows * channels);
        }
    }

    // ------------------------------------------------------------------------------------------------- gated delta rule

    @ParameterizedTest
    @EnumSource(Path.class)
    void deltaRuleIgnoresNaNPaddingEmptyEntriesAndALargerShape(Path path) {
        GatedDeltaRule rule = new GatedDeltaRule(2, 4, 128, 64);
        int width = 2 * rule.keyHeads() * rule.keyDim() + rule.valueHeads() * rule.valueDim();
        int hv = rule.valueHeads(), outW = hv * rule.valueDim(), ss = rule.stateSize();
        int[] lengths = {70, 10, 0, 5};
        int[] slots = {1, -1, 2, 0};
        int entries = lengths.length, poolSlots = 4;
        int[] cu = new int[entries + 1];
        for (int i = 0; i < entries; i++) cu[i + 1] = cu[i] + lengths[i];
        int real = cu[entries], rows = real + 20;
        int[] cuBig = Arrays.copyOf(cu, entries + 3), slotsBig = Arrays.copyOf(slots, entries + 2);
        cuBig[entries + 1] = cuBig[entries + 2] = real;
        slotsBig[entries] = 3;  // an empty entry with a live slot: untouched
        slotsBig[entries + 1] = -1;
        boolean[] padded = new boolean[rows];
        for (int t = cu[1]; t < cu[2]; t++) padded[t] = true;
        for (int t = real; t < rows; t++) padded[t] = true;
        Random rnd = new Random(9 + path.ordinal());
        short[] qkv = randomBf16(rnd, rows * width, 1.0), qkvNan = qkv.clone();
        float[] beta = new float[rows * hv], g = new float[rows * hv];
        for (int i = 0; i < beta.length; i++) {
            beta[i] = Bf16.round(0.05f + 0.9f * rnd.nextFloat());
            g[i] = -0.3f * rnd.nextFloat();
        }
        float[] betaNan = beta.clone(), gNan = g.clone();
        plantRows(qkvNan, width, padded);
        plantRows(betaNan, hv, padded);
        plantRows(gNan, hv, padded);
        float[] pool = new float[poolSlots * ss];
        for (int i = 0; i < pool.length; i++) pool[i] = (float) (rnd.nextGaussian() * 0.3);
        float[] refPool = pool.clone();
        float[] ref = ChunkedDeltaRuleKernelReference.reference(rule, Arrays.copyOf(qkv, real * width), Arrays.copyOf(beta, real * hv),
                Arrays.copyOf(g, real * hv), cu, slots, refPool);
        Config cfg = Config.of(rule, rows, entries + 2);
        try (ChunkedDeltaRuleKernel k = new ChunkedDeltaRuleKernel(GpuTestSupport.kernels(), cfg);
             DeviceBuffer dPool = DeviceArrays.upload(pool, "state pool")) {
            short[] exact = runRule(k, StepShape.prefill(real, entries), qkv, beta, g, cu, slots, dPool, rows, outW, path);
            float[] poolExact = DeviceArrays.downloadFloats(dPool, pool.length);
            DeviceArrays.copyIn(dPool, pool);
            short[] big = runRule(k, StepShape.prefill(rows, entries + 2), qkvNan, betaNan, gNan, cuBig, slotsBig, dPool, rows, outW, path);
            float[] poolBig = DeviceArrays.downloadFloats(dPool, pool.length);
            assertArrayEquals(poolExact, poolBig, path + ": final states with the larger shape and NaN padding");
            for (int slot : new int[] {2, 3}) {
                assertArrayEquals(Arrays.copyOfRange(pool, slot * ss, (slot + 1) * ss), Arrays.copyOfRange(poolBig, slot * ss, (slot + 1) * ss),
                        path + ": slot " + slot + " of an empty entry stays untouched");
            }
            assertRows(copyOfRows(exact, outW, real), big, outW, Arrays.copyOf(padded, real), real, path + " output");
            assertZeroRows(big, outW, real, rows, path + " output (rows past the last entry)");
            // and the recurrent fp32 reference (the tolerance of ChunkedDeltaRuleGpuTest)
            double num = 0, den = 0, snum = 0, sden = 0;
            for (int t = 0; t < real; t++) {
                if (padded[t]) continue;
                for (int i = t * outW; i < (t + 1) * outW; i++) {
                    float v = Bf16.toFloat(big[i]);
                    assertFalse(Float.isNaN(v), path + ": NaN in real row " + t);
                    num += (v - ref[i]) * (double) (v - ref[i]);
                    den += ref[i] * (double) ref[i];
                }
            }
            for (int slot : new int[] {0, 1}) {
                for (int i = slot * ss; i < (slot + 1) * ss; i++) {
                    snum += (poolBig[i] - refPool[i]) * (double) (poolBig[i] - refPool[i]);
                    sden += refPool[i] * (double) refPool[i];
                }
            }
            double tol = path == Path.CHUNKED ? 1e-2 : 4e-3;
            assertTrue(Math.sqrt(num / den) < tol, path + ": output relative L2 error " + Math.sqrt(num / den));
            assertTrue(Math.sqrt(snum / sden) < (path == Path.CHUNKED ? 1e-2 : 1e-4), path + ": state relative L2 error " + Math.sqrt(snum / sden));
        }
    }

    private static short[] runRule(ChunkedDeltaRuleKernel k, StepShape shape, short[] qkv, float[] beta, float[] g, int[] cu, int[] slots,
                                   DeviceBuffer pool, int rows, int outW, Path path) {
        Stream s = GpuTestSupport.stream();
        try (DeviceBuffer dq = upload(qkv, "qkv"); DeviceBuffer db = DeviceArrays.upload(beta, "beta");
             DeviceBuffer dg = DeviceArrays.upload(g, "g"); DeviceBuffer dCu = DeviceArrays.upload(cu, "cu_seqlens");
             DeviceBuffer dSlots = DeviceArrays.upload(slots, "slots"); DeviceBuffer out = poisoned(rows * outW, "out")) {
            ChunkedDeltaRuleKernel.Config c = k.config();
            int hv = c.valueHeads();
            k.launch(s, shape, new ChunkedDeltaRuleKernel.Args(c, Tensors.rows(dq, DType.BF16, c.qkvWidth()), Tensors.rows(db, DType.F32, hv),
                    Tensors.rows(dg, DType.F32, hv), Tensors.rows(dCu, DType.I32), Tensors.rows(dSlots, DType.I32),
                    Tensors.rows(pool, DType.F32, hv, c.keyDim(), c.valueDim()), Tensors.rows(out, DType.BF16, outW)), path);
            s.synchronize();
            return download(out, rows * outW);
        }
    }

    @Test
    void deltaRuleDecodeIgnoresNaNPaddingRowsAndALargerShape() {
        GatedDeltaRule rule = new GatedDeltaRule(2, 4, 128, 64);
        int width = 2 * rule.keyHeads() * rule.keyDim() + rule.valueHeads() * rule.valueDim();
        int hv = rule.valueHeads(), outW = hv * rule.valueDim(), ss = rule.stateSize();
        int[] slots = {2, -1, 0, 1};
        int real = slots.length, rows = real + 4;
        int[] slotsBig = Arrays.copyOf(slots, rows);
        Arrays.fill(slotsBig, real, rows, -1);
        boolean[] padded = {false, true, false, false, true, true, true, true};
        Random rnd = new Random(10);
        short[] qkv = randomBf16(rnd, rows * width, 1.0), qkvNan = qkv.clone();
        float[] beta = new float[rows * hv], g = new float[rows * hv];
        for (int i = 0; i < beta.length; i++) {
            beta[i] = Bf16.round(0.05f + 0.9f * rnd.nextFloat());
            g[i] = -(0.01f + rnd.nextFloat());
        }
        float[] betaNan = beta.clone(), gNan = g.clone();
        plantRows(qkvNan, width, padded);
        plantRows(betaNan, hv, padded);
        plantRows(gNan, hv, padded);
        float[] pool = new float[4 * ss];
        for (int i = 0; i < pool.length; i++) pool[i] = (float) (rnd.nextGaussian() * 0.3);
        GatedDeltaRuleDecodeKernel kernel = new GatedDeltaRuleDecodeKernel(GpuTestSupport.kernels());
        Stream s = GpuTestSupport.stream();
        try (DeviceBuffer dPool = DeviceArrays.upload(pool, "state pool")) {
            short[][] runs = new short[2][];
            float[][] pools = new float[2][];
            for (int run = 0; run < 2; run++) {
                DeviceArrays.copyIn(dPool, pool);
                boolean big = run == 1;
                try (DeviceBuffer dq = upload(big ? qkvNan : qkv, "qkv"); DeviceBuffer db = DeviceArrays.upload(big ? betaNan : beta, "beta");
                     DeviceBuffer dg = DeviceArrays.upload(big ? gNan : g, "g");
                     DeviceBuffer dSlots = DeviceArrays.upload(big ? slotsBig : slots, "slots"); DeviceBuffer out = poisoned(rows * outW, "out")) {
                    kernel.launch(s, StepShape.decode(big ? rows : real), new GatedDeltaRuleDecodeKernel.Args(rule,
                            Tensors.rows(dq, DType.BF16, width), new Gates.Precomputed(Tensors.rows(db, DType.F32, hv), Tensors.rows(dg, DType.F32, hv)),
                            Tensors.rows(dPool, DType.F32, hv, rule.keyDim(), rule.valueDim()), Tensors.rows(dSlots, DType.I32),
                            Tensors.rows(out, DType.BF16, outW)));
                    s.synchronize();
                    runs[run] = download(out, rows * outW);
                    pools[run] = DeviceArrays.downloadFloats(dPool, pool.length);
                }
            }
            assertArrayEquals(pools[0], pools[1], "states with the larger shape and NaN padding");
            assertArrayEquals(Arrays.copyOfRange(pool, 3 * ss, 4 * ss), Arrays.copyOfRange(pools[1], 3 * ss, 4 * ss), "slot 3 belongs to nobody");
            assertRows(copyOfRows(runs[0], outW, real), runs[1], outW, Arrays.copyOf(padded, real), real, "delta rule decode");
            assertZeroRows(runs[1], outW, real, rows, "delta rule decode (padding rows of the larger shape)");
        }
    }

    // ------------------------------------------------------------------------------------------------- MoE

    @ParameterizedTest
    @EnumSource(value = MoeExpertGemm.Engine.class)
    void moeRoutesNaNRowsToValidExpertsAndTheRealRowsKeepTheirBits(MoeExpertGemm.Engine engine) {
        GpuSparseMoe.Shape shape = new GpuSparseMoe.Shape(1024, 64, 10, 256, 256, true);
        int h = shape.hidden(), k = shape.topK();
        Gpu gpu = GpuTestSupport.gpu();
        Stream s = GpuTestSupport.stream();
        try (MoeFixture f = new MoeFixture(gpu, shape, 91); dev.jnext.gpu.Gemm gemm = new dev.jnext.gpu.Gemm(gpu);
             GpuSparseMoe moe = new GpuSparseMoe(GpuTestSupport.kernels(), gemm, shape, 300, 8, engine)) {
            for (int tokens : new int[] {6, 300}) {  // the decode path, then the prefill path
                boolean[] padded = new boolean[tokens];
                padded[2] = padded[tokens - 1] = true;
                if (tokens > 8) for (int t = tokens - 40; t < tokens; t++) padded[t] = true;
                short[] x = MoeFixture.random(tokens + 5L, (long) tokens * h, 1.0), xNan = x.clone();
                plantRows(xNan, h, padded);
                StepShape shape1 = StepShape.prefill(tokens, 1);
                short[][] out = new short[2][];
                int[][] ids = new int[2][];
                short[][] weights = new short[2][];
                for (int run = 0; run < 2; run++) {
                    try (DeviceBuffer dx = upload(run == 0 ? x : xNan, "x"); DeviceBuffer dOut = poisoned(tokens * h, "out")) {
                        moe.forward(s, shape1, moe.bind(f.weights(), Tensors.rows(dx, DType.BF16, h), Tensors.rows(dOut, DType.BF16, h)));
                        s.synchronize();
                        out[run] = download(dOut, tokens * h);
                        ids[run] = MoeFixture.downloadInts(moe.topkIds(), tokens * k);
                        weights[run] = download(moe.topkWeights(), tokens * k);
                    }
                }
                String what = (tokens <= 8 ? "decode" : "prefill") + " path, " + engine;
                for (int t = 0; t < tokens; t++) {
                    boolean[] used = new boolean[shape.experts()];
                    for (int j = 0; j < k; j++) {
                        int e = ids[1][t * k + j];
                        assertTrue(e >= 0 && e < shape.experts(), what + ": token " + t + " routed to " + e);
                        assertFalse(used[e], what + ": token " + t + " routed twice to " + e);
                        used[e] = true;
                        assertFalse(Float.isNaN(Bf16.toFloat(weights[1][t * k + j])), what + ": NaN routing weight, token " + t);
                    }
                    if (padded[t]) {  // a NaN row gives NaN logits: the lowest ids, weight 0
                        for (int j = 0; j < k; j++) {
                            assertEquals(j, ids[1][t * k + j], what + ": NaN row " + t);
                            assertEquals(0f, Bf16.toFloat(weights[1][t * k + j]), what + ": NaN row " + t + " weight");
                        }
                    }
                    if (padded[t]) continue;
                    for (int j = 0; j < k; j++) assertEquals(ids[0][t * k + j], ids[1][t * k + j], what + ": routing of real token " + t);
                    for (int i = t * h; i < (t + 1) * h; i++) {
                        assertFalse(Float.isNaN(Bf16.toFloat(out[1][i])), what + ": NaN reached real token " + t);
                        // rows are independent (a tile's other rows never enter a row's dot products): the same bits
                        if (out[0][i] != out[1][i]) {
                            throw new AssertionError(what + ": real token " + t + " column " + (i - t * h) + ": " + Bf16.toFloat(out[1][i])
                                    + " with NaN padding, " + Bf16.toFloat(out[0][i]) + " without");
                        }
                    }
                }
            }
        }
    }

    /** Router rows that are not finite: the same ids and weights as the reference rules, always valid and distinct. */
    @Test
    void routerTurnsNonFiniteLogitsIntoValidRoutes() {
        int experts = 64, topK = 10, stride = 72, rows = 6;
        Random rnd = new Random(15);
        short[] logits = randomBf16(rnd, rows * stride, 2.0);
        Arrays.fill(logits, 0, stride, NAN);                                        // all NaN
        for (int e = 0; e < experts; e += 3) logits[stride + e] = NAN;               // some NaN
        logits[2 * stride + 5] = logits[2 * stride + 40] = (short) 0x7f80;           // two +inf
        Arrays.fill(logits, 3 * stride, 3 * stride + experts, (short) 0xff80);       // all -inf
        for (int e = 0; e < 60; e++) logits[4 * stride + e] = (short) 0xff80;        // 3 finite, a NaN, the rest -inf
        logits[4 * stride + 63] = NAN;
        Gpu gpu = GpuTestSupport.gpu();
        Stream s = GpuTestSupport.stream();
        try (DeviceBuffer dl = upload(logits, "logits"); DeviceBuffer ids = gpu.allocate(4L * rows * topK, "ids");
             DeviceBuffer w = poisoned(rows * topK, "weights")) {
            ids.fill32(-7, s);
            new MoeRouterKernel(GpuTestSupport.kernels()).launch(s, new MoeRouterKernel.Args(Tensors.rows(dl, DType.BF16, stride),
                    Tensors.rows(ids, DType.I32, topK), Tensors.rows(w, DType.BF16, topK), experts, true), rows);
            MoeRouterKernel.Routes ref = MoeRouterKernelReference.reference(logits, stride, rows, experts, topK, true);
            int[] got = MoeFixture.downloadInts(ids, rows * topK);
            assertArrayEquals(ref.ids(), got, "expert ids");
            GpuTestSupport.assertBf16Close(ref.weights(), download(w, rows * topK), 1, "routing weights");
            for (int j = 0; j < topK; j++) assertEquals(j, got[j], "an all-NaN row takes the lowest ids");
        }
    }

    /** Expert ids the router never writes (−1, E, 2³¹−1) on the decode kernels and the prefill combine: zero contribution, no read. */
    @Test
    void moeKernelsContributeNothingForAnInvalidExpertId() {
        GpuSparseMoe.Shape shape = new GpuSparseMoe.Shape(512, 16, 4, 128, 128, true);
        int h = shape.hidden(), inter = shape.inter(), k = shape.topK(), e = shape.experts(), tokens = 3, pairs = tokens * k;
        int rr = GpuSparseMoe.routerRows(shape);
        Gpu gpu = GpuTestSupport.gpu();
        Stream s = GpuTestSupport.stream();
        int[] ids = {3, -1, 7, 1, e, 0x7fffffff, 2, 5, 9, 10, 11, -5};
        short[] w = new short[pairs];
        Random rnd = new Random(12);
        for (int i = 0; i < w.length; i++) w[i] = Bf16.fromFloat(0.1f + 0.3f * rnd.nextFloat());
        short[] x = MoeFixture.random(13, (long) tokens * h, 1.0);
        short[] gateLogits = randomBf16(rnd, tokens * rr, 1.0);
        int slotRows = MoeDecodeKernel.actRows(tokens, k, true);
        try (MoeFixture f = new MoeFixture(gpu, shape, 14);
             DeviceBuffer dx = upload(x, "x"); DeviceBuffer dIds = MoeFixture.uploadInts(gpu, ids, "ids");
             DeviceBuffer dW = upload(w, "weights"); DeviceBuffer dGate = upload(gateLogits, "gate logits");
             DeviceBuffer act = poisoned(slotRows * inter, "act"); DeviceBuffer contrib = poisoned(slotRows * h, "contrib");
             DeviceBuffer counters = gpu.allocate(MoeDecodeKernel.counterBytes(tokens, h), "counters");
             DeviceBuffer out = poisoned(tokens * h, "out"); DeviceBuffer combined = poisoned(tokens * h, "combined");
             DeviceBuffer stale = poisoned(pairs * h, "stale contrib")) {
            counters.fill32(0, s);
            MoeDecodeKernel dec = new MoeDecodeKernel(GpuTestSupport.kernels());
            DeviceTensor tIds = Tensors.rows(dIds, DType.I32, k), tAct = Tensors.rows(act, DType.BF16, inter);
            dec.launchGateUp(s, new MoeDecodeKernel.GateUpArgs(Tensors.rows(dx, DType.BF16, h), tIds,
                    Tensors.of(f.dGateUp, DType.BF16, e, 2 * inter, h), Tensors.of(f.dSharedGateUp, DType.BF16, 2 * inter, h), tAct), tokens);
            dec.launchDown(s, new MoeDecodeKernel.DownArgs(tAct, tIds, Tensors.rows(dW, DType.BF16, k), Tensors.of(f.dDown, DType.BF16, e, h, inter),
                    Tensors.of(f.dSharedDown, DType.BF16, h, inter), Tensors.rows(dGate, DType.BF16, rr), e,
                    Tensors.rows(contrib, DType.BF16, h), Tensors.rows(counters, DType.U32, h / 64), Tensors.rows(out, DType.BF16, h)), tokens);
            short[] got = download(out, tokens * h);
            short[] gotAct = download(act, slotRows * inter);
            short[] gotContrib = download(contrib, slotRows * h);
            double num = 0, den = 0;
            for (int p = 0; p < pairs; p++) {
                boolean valid = ids[p] >= 0 && ids[p] < e;
                if (!valid) {
                    for (int i = 0; i < inter; i++) assertEquals(0, gotAct[p * inter + i], "invalid pair " + p + ": zero activation row");
                    for (int o = 0; o < h; o++) assertEquals(0, gotContrib[p * h + o], "invalid pair " + p + ": zero contribution");
                    continue;
                }
                float[] c = MoeExpertGemmReference.referenceExpert(x, (p / k) * h, f.gateUp, f.down, ids[p], h, inter, Bf16.toFloat(w[p]));
                for (int o = 0; o < h; o++) {
                    float v = Bf16.toFloat(gotContrib[p * h + o]);
                    assertFalse(Float.isNaN(v), "pair " + p + " contribution");
                    num += (v - c[o]) * (double) (v - c[o]);
                    den += c[o] * (double) c[o];
                }
            }
            assertTrue(Math.sqrt(num / den) < 1e-2, "valid contributions vs the reference: relative L2 " + Math.sqrt(num / den));
            // the decode combine: the valid pairs' rows in k order, plus the gated shared expert (its slot after the pairs)
            for (int t = 0; t < tokens; t++) {
                float sg = Bf16.round((float) (1.0 / (1.0 + Math.exp(-Bf16.toFloat(gateLogits[t * rr + e])))));
                for (int o = 0; o < h; o++) {
                    float acc = 0;
                    for (int j = 0; j < k; j++) acc += Bf16.toFloat(gotContrib[(t * k + j) * h + o]);
                    float term = Bf16.round(sg * Bf16.toFloat(gotContrib[(pairs + t) * h + o]));
                    float expect = Bf16.round(Bf16.round(acc) + term);
                    float g = Bf16.toFloat(got[t * h + o]);
                    double tol = Math.ulp(Bf16.round(Math.abs(expect))) * 65536.0 + 0x1p-7 * Math.abs(term);  // sigmoid: expf vs Math.exp
                    assertTrue(Math.abs(g - expect) <= tol, "decode out token " + t + " column " + o + ": " + g + " vs " + expect);
                }
            }
            // the prefill combine on the same rows, the invalid pairs' rows stale NaN (never written by the grouped GEMM)
            short[] staleContrib = Arrays.copyOf(gotContrib, pairs * h);
            for (int p = 0; p < pairs; p++) if (ids[p] < 0 || ids[p] >= e) Arrays.fill(staleContrib, p * h, (p + 1) * h, NAN);
            DeviceArrays.copyIn(stale, staleContrib);
            new MoeCombineKernel(GpuTestSupport.kernels()).launch(s, new MoeCombineKernel.Args(Tensors.rows(stale, DType.BF16, h), tIds, e,
                    null, null, 0, Tensors.rows(combined, DType.BF16, h)), tokens);
            short[] comb = download(combined, tokens * h);
            for (int t = 0; t < tokens; t++) {
                for (int o = 0; o < h; o++) {
                    float acc = 0;
                    for (int j = 0; j < k; j++) if (ids[t * k + j] >= 0 && ids[t * k + j] < e) acc += Bf16.toFloat(staleContrib[(t * k + j) * h + o]);
                    assertEquals(Bf16.fromFloat(acc), comb[t * h + o], "combine token " + t + " column " + o + " (k-ordered fp32 sum of valid pairs)");
                }
            }
        }
    }
}
