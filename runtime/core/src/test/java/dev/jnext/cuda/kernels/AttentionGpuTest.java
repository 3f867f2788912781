package dev.jnext.cuda.kernels;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.GpuTestSupport;
import dev.jnext.gpu.Stream;
import dev.jnext.numeric.Bf16;
import dev.jnext.cpu.ops.RmsNorm;
import dev.jnext.cpu.ops.RotaryEmbedding;
import dev.jnext.cuda.state.AttentionBatch;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.Random;
import java.util.stream.Stream.Builder;

import static dev.jnext.gpu.GpuTestSupport.download;
import static dev.jnext.gpu.GpuTestSupport.poisoned;
import static dev.jnext.gpu.GpuTestSupport.randomBf16;
import static dev.jnext.gpu.GpuTestSupport.upload;
import static dev.jnext.cuda.kernels.AttentionFixture.Spec;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The full-attention kernels against the CPU reference on random inputs: q/k prep (norm, RoPE, KV write) vs
 * {@link RmsNorm} + transformers' bf16 RoPE roundings (and {@link RotaryEmbedding} in fp32), prefill and decode vs
 * {@link dev.jnext.cpu.ops.AttentionCore}. Several sequences with different past lengths, pages interleaved between sequences,
 * a padded entry, pool rows that nothing wrote holding NaN, outputs poisoned with NaN.
 */
@Tag("gpu")
class AttentionGpuTest {
    private static final float EPS = 1e-6f;
    private static final AttentionGeometry QWEN3_NEXT = new AttentionGeometry(16, 2, 256, 64);

    static java.util.stream.Stream<Arguments> geometries() {
        Builder<Arguments> b = java.util.stream.Stream.builder();
        b.add(Arguments.of(QWEN3_NEXT));
        b.add(Arguments.of(new AttentionGeometry(8, 2, 128, 32)));   // G = 4
        b.add(Arguments.of(new AttentionGeometry(32, 2, 128, 64)));  // G = 16: 8 tokens per prefill block, two decode head tiles
        b.add(Arguments.of(new AttentionGeometry(4, 4, 64, 16)));    // MHA
        b.add(Arguments.of(new AttentionGeometry(4, 2, 32, 8)));     // the tiny test model
        return b.build();
    }

    private static List<Spec> prefillSpecs(AttentionGeometry g) {
        if (g.headDim() == 256) {
            return List.of(new Spec(0, 1), new Spec(0, 100), new Spec(37, 1), new Spec(64, 64), new Spec(200, 17),
                    new Spec(-1, 3), new Spec(1000, 130), new Spec(5, 300));
        }
        return List.of(new Spec(0, 70), new Spec(3, 1), new Spec(-1, 2), new Spec(130, 40), new Spec(64, 129));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("geometries")
    void prefillMatchesAttentionCore(AttentionGeometry g) {
        Random rnd = new Random(11 + g.headDim() + g.heads());
        Stream s = GpuTestSupport.stream();
        try (AttentionFixture f = new AttentionFixture(g, prefillSpecs(g), 3)) {
            f.randomKv(rnd, true);
            f.uploadPool();
            int w = g.heads() * g.headDim();
            short[] q = randomBf16(rnd, f.totalTokens * w, 2.5);  // sharp softmax: masking errors show
            short[] qg = randomBf16(rnd, f.totalTokens * 2 * w, 2);
            PrefillAttentionKernel k = new PrefillAttentionKernel(GpuTestSupport.kernels(), g);
            try (AttentionBatch batch = f.stage(); DeviceBuffer dq = upload(q, "q"); DeviceBuffer dqg = upload(qg, "qg");
                 DeviceBuffer out = poisoned(f.totalTokens * w, "out"); DeviceBuffer plain = poisoned(f.totalTokens * w, "out-nogate")) {
                StepShape shape = StepShape.prefill(f.totalTokens, f.specs.size());
                DeviceTensor tq = Tensors.rows(dq, DType.BF16, g.heads(), g.headDim());
                k.launch(s, shape, new PrefillAttentionKernel.Args(g, tq, Tensors.rows(out, DType.BF16, w),
                        Tensors.rows(dqg, DType.BF16, g.heads(), 2 * g.headDim()), g.headDim()), batch, f.pages, AttentionFixture.LAYER);
                k.launch(s, shape, new PrefillAttentionKernel.Args(g, tq, Tensors.rows(plain, DType.BF16, w), null, 0), batch, f.pages,
                        AttentionFixture.LAYER);
                float[][] ref = f.reference(f.pool, q);
                f.assertOutput(ref, gateView(qg, g, f.totalTokens), 2 * w, 2 * g.headDim(), download(out, f.totalTokens * w),
                        "prefill+gate " + g);
                f.assertOutput(ref, null, 0, 0, download(plain, f.totalTokens * w), "prefill " + g);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("geometries")
    void decodeMatchesAttentionCoreForEverySplitCount(AttentionGeometry g) {
        Random rnd = new Random(23 + g.headDim() + g.heads());
        Stream s = GpuTestSupport.stream();
        List<Spec> specs = List.of(new Spec(0, 1), new Spec(1, 1), new Spec(63, 1), new Spec(-1, 1), new Spec(64, 1),
                new Spec(65, 1), new Spec(700, 1), new Spec(g.headDim() == 256 ? 4100 : 1500, 1));
        try (AttentionFixture f = new AttentionFixture(g, specs, 2)) {
            f.randomKv(rnd, true);
            f.uploadPool();
            int w = g.heads() * g.headDim();
            short[] q = randomBf16(rnd, f.totalTokens * w, 2.5);
            short[] gate = randomBf16(rnd, f.totalTokens * w, 2);
            float[][] ref = f.reference(f.pool, q);
            try (DecodeAttentionKernel k = new DecodeAttentionKernel(GpuTestSupport.kernels(), g, specs.size());
                 AttentionBatch batch = f.stage(); DeviceBuffer dq = upload(q, "q"); DeviceBuffer dg = upload(gate, "gate")) {
                int auto = k.splitsFor(specs.size());
                StepShape shape = StepShape.decode(specs.size());
                for (int splits : new int[] {auto, 1, 3, k.maxSplitsFor(specs.size())}) {
                    try (DeviceBuffer out = poisoned(f.totalTokens * w, "out")) {
                        k.launch(s, shape, new DecodeAttentionKernel.Args(g, Tensors.rows(dq, DType.BF16, g.heads(), g.headDim()),
                                Tensors.rows(out, DType.BF16, w), Tensors.rows(dg, DType.BF16, g.heads(), g.headDim()), 0), batch, f.pages,
                                AttentionFixture.LAYER, splits);
                        f.assertOutput(ref, gate, w, g.headDim(), download(out, f.totalTokens * w), "decode splits=" + splits + " " + g);
                    }
                }
                try (DeviceBuffer out = poisoned(f.totalTokens * w, "out")) {
                    k.launch(s, shape, new DecodeAttentionKernel.Args(g, Tensors.rows(dq, DType.BF16, g.heads(), g.headDim()),
                            Tensors.rows(out, DType.BF16, w), null, 0), batch, f.pages, AttentionFixture.LAYER);
                    f.assertOutput(ref, null, 0, 0, download(out, f.totalTokens * w), "decode no gate " + g);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("geometries")
    void prepNormsRotatesAndWritesTheNewTokensPages(AttentionGeometry g) {
        Random rnd = new Random(31 + g.headDim());
        Stream s = GpuTestSupport.stream();
        List<Spec> specs = List.of(new Spec(0, 37), new Spec(100, 5), new Spec(-1, 2), new Spec(63, 1), new Spec(500, 70));
        double theta = g.headDim() == 256 ? 1e7 : 1e4;
        int hd = g.headDim(), w = g.heads() * hd, kvw = g.kvHeads() * hd;
        try (AttentionFixture f = new AttentionFixture(g, specs, 2);
             AttentionPrepKernel k = new AttentionPrepKernel(GpuTestSupport.kernels(), g, theta, EPS)) {
            f.uploadPool();  // all NaN: only the new tokens' rows may change
            int tokens = f.totalTokens + 3;  // 3 rows past the batch (a padded bucket)
            short[] qg = randomBf16(rnd, tokens * 2 * w, 3);
            short[] kv = randomBf16(rnd, tokens * 2 * kvw, 3);  // fused [k | v] rows: kv stride 2·kvHeads·hd
            short[] qw = randomBf16(rnd, hd, 0.3), kw = randomBf16(rnd, hd, 0.3);
            try (AttentionBatch batch = f.stage(); DeviceBuffer dqg = upload(qg, "qg"); DeviceBuffer dkv = upload(kv, "kv");
                 DeviceBuffer dqw = upload(qw, "q_norm"); DeviceBuffer dkw = upload(kw, "k_norm");
                 DeviceBuffer qOut = poisoned(tokens * w, "q")) {
                k.launch(s, StepShape.prefill(tokens, specs.size()), new AttentionPrepKernel.Args(g, Tensors.rows(dqg, DType.BF16, 2 * w),
                        Tensors.rows(dkv, DType.BF16, 2 * kvw), Tensors.of(dqw, DType.BF16, hd), Tensors.of(dkw, DType.BF16, hd),
                        Tensors.rows(qOut, DType.BF16, g.heads(), hd)), batch, f.pages, AttentionFixture.LAYER);
                short[] gotQ = download(qOut, tokens * w);
                short[] gotPool = f.downloadPool();
                float[] inv = new RotaryEmbedding(hd, g.rotaryDim(), theta).invFreq();
                short[] expectedPool = f.pool.clone();
                int mismatches = 0, compared = 0;
                for (int i = 0; i < specs.size(); i++) {
                    Spec sp = specs.get(i);
                    for (int j = 0; j < sp.newTokens(); j++) {
                        int t = f.firstRow[i] + j, pos = sp.past() + j;
                        for (int h = 0; h < g.heads(); h++) {
                            int at = (t * g.heads() + h) * hd;
                            if (sp.past() < 0) {
                                for (int d = 0; d < hd; d++) assertEquals(0, gotQ[at + d], "padded q row " + t);
                                continue;
                            }
                            short[] e = AttentionPrepKernelReference.referenceRow(qg, t * 2 * w + h * 2 * hd, qw, EPS, inv, g.rotaryDim(), pos);
                            mismatches += compareRope(e, gotQ, at, g.rotaryDim(), "q token " + t + " head " + h);
                            compared += hd;
                            assertCloseToFp32Ops(qg, t * 2 * w + h * 2 * hd, qw, g, theta, pos, gotQ, at, "q token " + t + " head " + h);
                        }
                        if (sp.past() < 0) continue;
                        for (int h = 0; h < g.kvHeads(); h++) {
                            short[] e = AttentionPrepKernelReference.referenceRow(kv, t * 2 * kvw + h * hd, kw, EPS, inv, g.rotaryDim(), pos);
                            int at = f.index(i, pos, h, 0);
                            mismatches += compareRope(e, gotPool, at, g.rotaryDim(), "k token " + t + " head " + h);
                            compared += hd;
                            System.arraycopy(gotPool, at, expectedPool, at, hd);  // checked above
                            int vat = f.index(i, pos, h, 1);
                            System.arraycopy(kv, t * 2 * kvw + kvw + h * hd, expectedPool, vat, hd);  // v: a bitwise copy
                        }
                    }
                }
                for (int t = f.totalTokens; t < tokens; t++) {
                    for (int d = 0; d < w; d++) assertEquals(0, gotQ[t * w + d], "row past the batch " + t);
                }
                // every other pool element still holds the NaN pattern, V rows are exact copies
                for (int e = 0; e < expectedPool.length; e++) {
                    if (expectedPool[e] != gotPool[e]) fail("pool element " + e + ": expected " + expectedPool[e] + " got " + gotPool[e]);
                }
                // one bf16 ulp flips (fp32 summation order, cosf vs Math.cos near a rounding boundary) are rare
                assertTrue(mismatches <= compared / 200, mismatches + " of " + compared + " elements differ from the bf16 reference");
            }
        }
    }

    /**
     * Element-wise: equal, or within what one bf16 ulp in the normed inputs or the cos/sin tables can change (the output is
     * a sum of two rounded products, so cancellation can make that many ulps of the result): the pair's values move by up
     * to 2u each (u = 2⁻⁸) and the two products and the sum round once more: 2⁻⁶·(|x_i| + |x_pair|) covers it.
     * Returns how many elements were not bitwise equal.
     */
    private static int compareRope(short[] expected, short[] got, int at, int rotaryDim, String what) {
        int diff = 0;
        int hd = expected.length, half = rotaryDim / 2;
        for (int d = 0; d < hd; d++) {
            float e = Bf16.toFloat(expected[d]), v = Bf16.toFloat(got[at + d]);
            assertFalse(Float.isNaN(v), what + ": NaN at dim " + d);
            if (expected[d] == got[at + d]) continue;
            diff++;
            float pair = d < rotaryDim ? Bf16.toFloat(expected[d < half ? d + half : d - half]) : 0f;
            double tol = 0x1p-6 * (Math.abs(e) + Math.abs(pair)) + 1e-6;
            if (Math.abs(e - v) > tol) fail(what + " dim " + d + ": expected " + e + " got " + v);
        }
        return diff;
    }

    /** Against the fp32 ops (RmsNorm, RotaryEmbedding): the bf16 chain rounds 4 times, each ≤ 2⁻⁹ relative; allow 2⁻⁶ of the pair. */
    private static void assertCloseToFp32Ops(short[] src, int off, short[] normW, AttentionGeometry g, double theta, int pos,
                                             short[] got, int at, String what) {
        int hd = g.headDim();
        float[] w = new float[hd], x = new float[hd], y = new float[hd];
        for (int i = 0; i < hd; i++) {
            w[i] = Bf16.toFloat(normW[i]);
            x[i] = Bf16.toFloat(src[off + i]);
        }
        new RmsNorm(w, EPS).forward(x, 0, 1, y, 0);
        float[] n = y.clone();
        new RotaryEmbedding(hd, g.rotaryDim(), theta).apply(y, 0, 1, 1, pos);
        int half = g.rotaryDim() / 2;
        for (int d = 0; d < hd; d++) {
            float pair = d < g.rotaryDim() ? n[d < half ? d + half : d - half] : 0f;
            double tol = 0x1p-6 * (Math.abs(n[d]) + Math.abs(pair)) + 1e-6;
            float v = Bf16.toFloat(got[at + d]);
            if (Math.abs(v - y[d]) > tol) fail(what + " dim " + d + " vs fp32 ops: expected " + y[d] + " got " + v);
        }
    }

    /**
     * The whole layer core on the GPU ({@link GatedAttentionCore}: prep then prefill for the prompt, prep then prefill for
     * an extend, prep then decode) against prep's reference rows and AttentionCore on what prep wrote.
     */
    @Test
    void prepThenPrefillExtendAndDecodeAgreeWithTheReferenceChain() {
        AttentionGeometry g = QWEN3_NEXT;
        Random rnd = new Random(77);
        Stream s = GpuTestSupport.stream();
        int hd = g.headDim(), w = g.heads() * hd, kvw = g.kvHeads() * hd;
        double theta = 1e7;
        float[] inv = new RotaryEmbedding(hd, g.rotaryDim(), theta).invFreq();
        short[] qw = randomBf16(rnd, hd, 0.3), kw = randomBf16(rnd, hd, 0.3);
        int[] prompt = {90, 7, 200};
        int[] extend = {30, 64, 1};
        // the fixture sizes pages for the final lengths (prompt + extend + 1 decode token)
        List<Spec> finalSpecs = List.of(new Spec(prompt[0] + extend[0], 1), new Spec(prompt[1] + extend[1], 1),
                new Spec(prompt[2] + extend[2], 1));
        try (AttentionFixture f = new AttentionFixture(g, finalSpecs, 1);
             GatedAttentionCore core = new GatedAttentionCore(GpuTestSupport.kernels(), g, theta, EPS, 3);
             DeviceBuffer dqw = upload(qw, "q_norm"); DeviceBuffer dkw = upload(kw, "k_norm")) {
            f.uploadPool();
            int[] past = {0, 0, 0};
            for (int step = 0; step < 3; step++) {
                int[] news = step == 0 ? prompt : step == 1 ? extend : new int[] {1, 1, 1};
                List<AttentionBatch.Sequence> seqs = new java.util.ArrayList<>();
                int tokens = 0;
                for (int i = 0; i < 3; i++) {
                    seqs.add(new AttentionBatch.Sequence(f.tables.get(i), past[i], news[i]));
                    tokens += news[i];
                }
                short[] qg = randomBf16(rnd, tokens * 2 * w, 3);
                short[] kv = randomBf16(rnd, tokens * 2 * kvw, 3);
                try (AttentionBatch batch = new AttentionBatch(GpuTestSupport.gpu(), 3, 16);
                     DeviceBuffer dqg = upload(qg, "qg"); DeviceBuffer dkv = upload(kv, "kv");
                     DeviceBuffer dq = poisoned(tokens * w, "q"); DeviceBuffer out = poisoned(tokens * w, "out")) {
                    batch.stage(seqs, s);
                    StepShape shape = step == 2 ? StepShape.decode(3) : StepShape.prefill(tokens, 3);
                    core.forward(s, shape, new GatedAttentionCore.Args(g, Tensors.rows(dqg, DType.BF16, 2 * w),
                            Tensors.rows(dkv, DType.BF16, 2 * kvw), Tensors.of(dqw, DType.BF16, g.headDim()),
                            Tensors.of(dkw, DType.BF16, g.headDim()), Tensors.rows(dq, DType.BF16, g.heads(), g.headDim()),
                            Tensors.rows(out, DType.BF16, w)), batch, f.pages, AttentionFixture.LAYER);
                    // prep's output must be its reference (rare 1-ulp flips allowed, as in the prep test) ...
                    short[] gotQ = download(dq, tokens * w);
                    short[] gotPool = f.downloadPool();
                    int mismatches = 0, compared = 0, row = 0;
                    for (int i = 0; i < 3; i++) {
                        for (int j = 0; j < news[i]; j++, row++) {
                            int pos = past[i] + j;
                            for (int h = 0; h < g.heads(); h++) {
                                short[] e = AttentionPrepKernelReference.referenceRow(qg, row * 2 * w + h * 2 * hd, qw, EPS, inv, g.rotaryDim(), pos);
                                mismatches += compareRope(e, gotQ, (row * g.heads() + h) * hd, g.rotaryDim(), "step " + step + " q row " + row);
                                compared += hd;
                            }
                            for (int h = 0; h < g.kvHeads(); h++) {
                                short[] e = AttentionPrepKernelReference.referenceRow(kv, row * 2 * kvw + h * hd, kw, EPS, inv, g.rotaryDim(), pos);
                                mismatches += compareRope(e, gotPool, f.index(i, pos, h, 0), g.rotaryDim(), "step " + step + " k row " + row);
                                compared += hd;
                                int vat = f.index(i, pos, h, 1);
                                for (int d = 0; d < hd; d++) {
                                    assertEquals(kv[row * 2 * kvw + kvw + h * hd + d], gotPool[vat + d], "step " + step + " v row " + row);
                                }
                            }
                        }
                    }
                    assertTrue(mismatches <= compared / 200, mismatches + " of " + compared + " prep elements differ");
                    // ... and the core's output AttentionCore's on exactly the q and pages prep produced
                    AttentionFixture view = f.withSpecs(List.of(new Spec(past[0], news[0]), new Spec(past[1], news[1]),
                            new Spec(past[2], news[2])));
                    float[][] ref = view.reference(gotPool, gotQ);
                    view.assertOutput(ref, gateView(qg, g, tokens), 2 * w, 2 * hd, download(out, tokens * w), "layer step " + step);
                }
                for (int i = 0; i < 3; i++) past[i] += news[i];
            }
        }
    }

    /** The gate values of q_proj's output [T, heads, (q | gate)] as a flat array indexed t·(2w) + h·(2hd) + d. */
    static short[] gateView(short[] qg, AttentionGeometry g, int tokens) {
        short[] out = new short[qg.length];
        int hd = g.headDim(), w = g.heads() * hd;
        for (int t = 0; t < tokens; t++) {
            for (int h = 0; h < g.heads(); h++) System.arraycopy(qg, t * 2 * w + h * 2 * hd + hd, out, t * 2 * w + h * 2 * hd, hd);
        }
        return out;
    }
}
