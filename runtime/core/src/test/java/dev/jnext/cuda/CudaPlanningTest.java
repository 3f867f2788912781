package dev.jnext.cuda;

import dev.jnext.backend.KvBudget;

import dev.jnext.JnextException;
import dev.jnext.cuda.kernels.GpuSparseMoe;
import dev.jnext.cuda.kernels.StepShape;
import dev.jnext.model.DType;
import dev.jnext.model.Fp8Checkpoints;
import dev.jnext.model.GdnProjections;
import dev.jnext.model.LayerType;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.ModelFamily;
import dev.jnext.cpu.Qwen3NextModel;
import dev.jnext.model.weights.ModelWeights;
import dev.jnext.model.weights.LayerWeights;
import dev.jnext.model.SyntheticCheckpoint;
import dev.jnext.model.TinyModels;
import dev.jnext.numeric.Bf16;
import dev.jnext.model.weights.Matrix;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CUDA runner's host-side planning, without a GPU: weight image, plan segments, buckets, geometry, memory plan. */
class CudaPlanningTest {
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @Test
    void weightImageConvertsAndConcatenatesPieces() {
        float[] f = {1.0f, -2.5f, 3.0000002f, 1e-3f, 65504f};
        MemorySegment f32 = Arena.ofAuto().allocate(4L * f.length);
        for (int i = 0; i < f.length; i++) f32.set(F32, 4L * i, f[i]);
        MemorySegment f16 = Arena.ofAuto().allocate(2L * f.length);
        for (int i = 0; i < f.length; i++) f16.set(I16, 2L * i, Float.floatToFloat16(f[i]));
        WeightImage img = new WeightImage();
        long a = img.add("a", WeightImage.Target.BF16, new WeightImage.Piece.Stored(f32, DType.F32), new WeightImage.Piece.Zeros(3),
                new WeightImage.Piece.Stored(f16, DType.F16));
        long b = img.add("b", WeightImage.Target.F32, new WeightImage.Piece.Floats(new float[]{7f, 8f}));
        assertEquals(0, a);
        assertEquals(256, b, "regions start on 256-byte boundaries");
        assertEquals(512, img.bytes());
        MemorySegment out = Arena.ofAuto().allocate(img.bytes());
        for (WeightImage.Region r : img.regions()) {
            // in odd-sized pieces, as the uploader's chunks may cut a region
            for (long from = 0; from < r.bytes(); from += 12) {
                long len = Math.min(12, r.bytes() - from);
                WeightImage.write(r, from, len, out, r.offset() + from);
            }
        }
        for (int i = 0; i < f.length; i++) assertEquals(Bf16.fromFloat(f[i]), out.get(I16, 2L * i), "f32 element " + i);
        for (int i = 0; i < 3; i++) assertEquals(0, out.get(I16, 2L * (f.length + i)));
        for (int i = 0; i < f.length; i++) {
            assertEquals(Bf16.fromFloat(Float.float16ToFloat(Float.floatToFloat16(f[i]))), out.get(I16, 2L * (f.length + 3 + i)), "f16 " + i);
        }
        assertEquals(7f, out.get(F32, 256));
        assertEquals(8f, out.get(F32, 260));
        assertThrows(IllegalArgumentException.class, () -> WeightImage.write(img.regions().get(1), 2, 4, out, 0));
    }

    @Test
    void modelImagePacksExpertsRouterAndKv(@TempDir Path tmp) {
        for (SyntheticCheckpoint.ExpertLayout layout : SyntheticCheckpoint.ExpertLayout.values()) {
            Path dir = TinyModels.write(tmp.resolve(layout.name()), TinyModels.config(true, DType.BF16), 3, layout, 1 << 20);
            try (ModelWeights m = ModelWeights.load(dir)) {
                ModelImage mi = ModelImage.of(m);
                MemorySegment img = Arena.ofAuto().allocate(mi.image().bytes());
                for (WeightImage.Region r : mi.image().regions()) WeightImage.write(r, 0, r.bytes(), img, r.offset());
                ModelConfig c = m.config();
                int h = c.hiddenSize();
                // layer 0: MoE; router rows E, then the shared gate, then zeros up to a multiple of 8
                LayerWeights.Moe moe = (LayerWeights.Moe) m.layers().getFirst().feedForward();
                ModelImage.MoeWeights w = (ModelImage.MoeWeights) mi.layers().getFirst().ffn();
                int e = c.numExperts(), rows = GpuSparseMoe.routerRows(e, true);
                assertEquals(8, rows);
                assertRow(img, w.router(), 3, moe.router(), 3, h);
                assertRow(img, w.router(), e, moe.sharedGate(), 0, h);
                for (int col = 0; col < h; col++) assertEquals(0, img.get(I16, w.router() + 2L * ((e + 1) * h + col)));
                int inter = c.moeIntermediateSize();
                // expert 2: gate rows, then up rows, in the fused [E, 2I, H] block; down [E, H, I]
                assertRow(img, w.gateUp(), 2 * 2 * inter + 5, moe.experts().get(2).gate(), 5, h);
                assertRow(img, w.gateUp(), 2 * 2 * inter + inter + 5, moe.experts().get(2).up(), 5, h);
                assertRow(img, w.down(), 2 * h + 7, moe.experts().get(2).down(), 7, inter);
                // layer 3: attention, k|v fused
                LayerWeights.Attention at = (LayerWeights.Attention) m.layers().get(3).mixer();
                ModelImage.AttentionWeights aw = (ModelImage.AttentionWeights) mi.layers().get(3).mixer();
                int kvRows = c.numKeyValueHeads() * c.headDim();
                assertRow(img, aw.kv(), 1, at.kProj(), 1, h);
                assertRow(img, aw.kv(), kvRows + 1, at.vProj(), 1, h);
                // layer 4: dense gate|up
                assertTrue(mi.layers().get(4).ffn() instanceof ModelImage.DenseWeights);
                assertEquals((c.vocabSize() + 7) / 8 * 8, mi.vocabStride());
            }
        }
    }

    /**
     * An FP8 checkpoint's image keeps the routed and shared experts in 8 bits with their block scales, and every other
     * weight is byte for byte its dequantized twin's (an F32 checkpoint of the dequantized values): the regions both have
     * are equal, and the experts' codes and scales, dequantized as the FP8 kernels do ({@code bf16(float(e4m3) · scale)},
     * the split telling the gate|up blocking), are the twin's bf16 experts — for the hub's per-expert files (split I) and
     * transformers' fused stacks (split 2I), on a geometry whose every matrix cuts its 128 × 128 blocks raggedly.
     */
    @Test
    void anFp8CheckpointKeepsItsExpertsInEightBitsAndEverythingElseIsTheDequantizedTwinsImage(@TempDir Path tmp) {
        for (SyntheticCheckpoint.ExpertLayout layout : SyntheticCheckpoint.ExpertLayout.values()) {
            Path fp8 = Fp8Checkpoints.write(tmp.resolve("fp8-" + layout), Fp8Checkpoints.raggedConfig(), 11, layout);
            Path twin = Fp8Checkpoints.dequantized(fp8, tmp.resolve("twin-" + layout));   // F32, converted to bf16 by the image
            try (ModelWeights q = ModelWeights.load(fp8); ModelWeights d = ModelWeights.load(twin)) {
                ModelConfig c = q.config();
                ModelImage qi = ModelImage.of(q), di = ModelImage.of(d);
                MemorySegment a = written(qi.image()), b = written(di.image());
                java.util.Map<String, WeightImage.Region> twinRegions = new java.util.HashMap<>();
                for (WeightImage.Region r : di.image().regions()) twinRegions.put(r.name(), r);
                int same = 0, dequantized = 0;
                for (WeightImage.Region r : qi.image().regions()) {
                    WeightImage.Region t = twinRegions.get(r.name());
                    if (t == null) continue;
                    same++;
                    if (r.pieces().stream().anyMatch(p -> p instanceof WeightImage.Piece.BlockFp8)) dequantized++;
                    assertEquals(t.bytes(), r.bytes(), r.name());
                    long mismatch = a.asSlice(r.offset(), r.bytes()).mismatch(b.asSlice(t.offset(), t.bytes()));
                    assertEquals(-1, mismatch, layout + " " + r.name() + ": first differing byte " + mismatch);
                }
                assertTrue(dequantized >= 6, "FP8 projections dequantized while streaming: " + dequantized);
                int h = c.hiddenSize(), e = c.numExperts(), i = c.moeIntermediateSize(), is = c.sharedExpertIntermediateSize();
                int moeLayers = 0;
                for (int l = 0; l < qi.layers().size(); l++) {
                    if (!(qi.layers().get(l).ffn() instanceof ModelImage.MoeWeights qm)) continue;
                    ModelImage.MoeWeights dm = (ModelImage.MoeWeights) di.layers().get(l).ffn();
                    GpuSparseMoe.Fp8Scales f = qm.fp8();
                    assertTrue(f != null && dm.fp8() == null, "layer " + l + ": FP8 experts in the FP8 image only");
                    assertEquals(layout == SyntheticCheckpoint.ExpertLayout.HUB ? i : 2 * i, f.gateUpSplit(), layout + " gate|up blocking");
                    assertEquals(is, f.sharedGateUpSplit(), "the shared expert's gate and up are separate matrices");
                    assertExpertsDequantize(a, qm.gateUp(), f.gateUp(), e, 2 * i, h, f.gateUpSplit(), b, dm.gateUp(), "gate_up");
                    assertExpertsDequantize(a, qm.down(), f.down(), e, h, i, h, b, dm.down(), "down");
                    assertExpertsDequantize(a, qm.sharedGateUp(), f.sharedGateUp(), 1, 2 * is, h, is, b, dm.sharedGateUp(), "shared gate_up");
                    assertExpertsDequantize(a, qm.sharedDown(), f.sharedDown(), 1, h, is, h, b, dm.sharedDown(), "shared down");
                    moeLayers++;
                }
                assertTrue(moeLayers >= 2, "MoE layers: " + moeLayers);
                assertTrue(qi.image().bytes() < di.image().bytes(), "FP8 experts take less room than bf16 ones");
                assertTrue(RunnerResources.weightsLabel(c, qi).contains("experts FP8"), RunnerResources.weightsLabel(c, qi));
            }
        }
    }

    /**
     * {@code --quantize fp8}: a bf16 checkpoint's routed and shared experts are block-quantized while they stream. The
     * codes and scales the image holds, dequantized as the kernels do, are byte for byte the experts of the checkpoint's
     * quantized twin (each expert matrix quantized whole by {@link dev.jnext.model.Fp8Blocks} in the test and stored as
     * F32) — so the streaming quantizer's bands, cut anywhere by the staging chunks, change nothing — and every other
     * region is the unquantized image's. For fused experts the gate and up halves are blocked separately (split I), and
     * every dequantized weight is within e4m3's rounding of the bf16 one.
     */
    @Test
    void aBf16CheckpointQuantizedWhileItStreamsHoldsItsBlockQuantizedExperts(@TempDir Path tmp) {
        for (SyntheticCheckpoint.ExpertLayout layout : SyntheticCheckpoint.ExpertLayout.values()) {
            Path bf = tmp.resolve("bf16-" + layout);
            SyntheticCheckpoint.write(bf, new SyntheticCheckpoint.Options(Fp8Checkpoints.raggedConfig(), DType.BF16, 13, 1L << 20,
                    layout, 4f, SyntheticCheckpoint.ConfigStyle.V5), n -> { });
            try (ModelWeights w = ModelWeights.load(bf)) {
                ModelConfig c = w.config();
                ModelImage qi = ModelImage.of(w, true), pi = ModelImage.of(w, false);
                assertTrue(qi.fp8Experts() && !pi.fp8Experts());
                assertTrue(RunnerResources.weightsLabel(c, qi).contains("quantized to FP8 while streaming"), RunnerResources.weightsLabel(c, qi));
                MemorySegment a = written(qi.image()), p = written(pi.image());
                java.util.Map<String, WeightImage.Region> plain = new java.util.HashMap<>();
                for (WeightImage.Region r : pi.image().regions()) plain.put(r.name(), r);
                for (WeightImage.Region r : qi.image().regions()) {
                    WeightImage.Region t = plain.get(r.name());
                    if (t != null) assertEquals(-1, a.asSlice(r.offset(), r.bytes()).mismatch(p.asSlice(t.offset(), t.bytes())), r.name());
                }
                int h = c.hiddenSize(), e = c.numExperts(), i = c.moeIntermediateSize(), is = c.sharedExpertIntermediateSize();
                Path twinDir = layout == SyntheticCheckpoint.ExpertLayout.HUB ? Fp8Checkpoints.quantizedExpertsTwin(bf, tmp.resolve("twin")) : null;
                try (ModelWeights tw = twinDir == null ? null : ModelWeights.load(twinDir)) {
                    ModelImage ti = tw == null ? null : ModelImage.of(tw);
                    MemorySegment t = ti == null ? null : written(ti.image());
                    for (int l = 0; l < qi.layers().size(); l++) {
                        if (!(qi.layers().get(l).ffn() instanceof ModelImage.MoeWeights qm)) continue;
                        GpuSparseMoe.Fp8Scales f = qm.fp8();
                        assertEquals(i, f.gateUpSplit(), layout + ": gate and up quantized as separate matrices");
                        assertEquals(is, f.sharedGateUpSplit());
                        ModelImage.MoeWeights pm = (ModelImage.MoeWeights) pi.layers().get(l).ffn();
                        assertWithinE4m3(a, qm.gateUp(), f.gateUp(), e, 2 * i, h, i, p, pm.gateUp());
                        assertWithinE4m3(a, qm.down(), f.down(), e, h, i, h, p, pm.down());
                        if (ti == null) continue;
                        ModelImage.MoeWeights tm = (ModelImage.MoeWeights) ti.layers().get(l).ffn();
                        assertExpertsDequantize(a, qm.gateUp(), f.gateUp(), e, 2 * i, h, i, t, tm.gateUp(), "gate_up");
                        assertExpertsDequantize(a, qm.down(), f.down(), e, h, i, h, t, tm.down(), "down");
                        assertExpertsDequantize(a, qm.sharedGateUp(), f.sharedGateUp(), 1, 2 * is, h, is, t, tm.sharedGateUp(), "shared gate_up");
                        assertExpertsDequantize(a, qm.sharedDown(), f.sharedDown(), 1, h, is, h, t, tm.sharedDown(), "shared down");
                    }
                }
            }
        }
    }

    /** Every dequantized weight within half an e4m3 step of the bf16 one: 2⁻⁴ relative (normal), scale · 2⁻¹⁰ (subnormal). */
    private static void assertWithinE4m3(MemorySegment a, long codes, long scales, int mats, int rows, int cols, int split,
                                         MemorySegment b, long bf16) {
        forEachWeight(a, codes, scales, mats, rows, cols, split, (idx, dq, scale) -> {
            float w = Bf16.toFloat(b.get(ValueLayout.JAVA_SHORT_UNALIGNED, bf16 + 2 * idx));
            double tol = Math.max(Math.abs(w) * 0x1p-4, scale * 0x1p-10) * 1.001;
            if (Math.abs(dq - w) > tol) assertEquals(w, dq, tol, "element " + idx + ", scale " + scale);
        });
    }

    /** One FP8 weight: its flat index, its value (e4m3 × scale, fp32) and its block scale. */
    @FunctionalInterface
    private interface Fp8Weight {
        void accept(long index, float value, float scale);
    }

    /** Every weight of FP8 codes [mats, rows, cols] at {@code codes} with fp32 scales at {@code scales} blocked at {@code split}. */
    private static void forEachWeight(MemorySegment a, long codes, long scales, int mats, int rows, int cols, int split, Fp8Weight f) {
        int sc = (cols + 127) / 128, sr = (split + 127) / 128 + (rows - split + 127) / 128;
        for (int m = 0; m < mats; m++) {
            for (int r = 0; r < rows; r++) {
                int srow = r < split ? r / 128 : (split + 127) / 128 + (r - split) / 128;
                for (int col = 0; col < cols; col++) {
                    long idx = ((long) m * rows + r) * cols + col;
                    float scale = a.get(ValueLayout.JAVA_FLOAT_UNALIGNED, scales + 4L * (((long) m * sr + srow) * sc + col / 128));
                    f.accept(idx, dev.jnext.numeric.Fp8E4m3.toFloat(a.get(ValueLayout.JAVA_BYTE, codes + idx)) * scale, scale);
                }
            }
        }
    }

    /** The whole image written on the host, region by region in chunks that cut rows and blocks anywhere. */
    private static MemorySegment written(WeightImage img) {
        MemorySegment out = Arena.ofAuto().allocate(img.bytes());
        for (WeightImage.Region r : img.regions()) {
            for (long from = 0; from < r.bytes(); from += 332) {
                WeightImage.write(r, from, Math.min(332, r.bytes() - from), out, r.offset() + from);
            }
        }
        return out;
    }

    /** Codes [mats, rows, cols] at {@code codes} with fp32 scales at {@code scales}, dequantized, equal the bf16 at {@code bf16}. */
    private static void assertExpertsDequantize(MemorySegment a, long codes, long scales, int mats, int rows, int cols, int split,
                                                MemorySegment b, long bf16, String what) {
        forEachWeight(a, codes, scales, mats, rows, cols, split, (idx, dq, scale) -> {
            short got = b.get(ValueLayout.JAVA_SHORT_UNALIGNED, bf16 + 2 * idx);
            if (Bf16.fromFloat(dq) != got) assertEquals(got, Bf16.fromFloat(dq), what + " element " + idx);
        });
    }

    /**
     * Qwen3.5's split in_proj_qkv / z / b / a become, in the device image, the grouped in_proj_qkvz / in_proj_ba that the
     * split/gating kernel reads: for every input unit vector e_j (column j of the weights), the kernel's split
     * ({@link GdnProjections#split}, which the CUDA kernel is parity-tested against) of the grouped columns gives back
     * exactly the split checkpoint's columns — value-head ratios 1, 2 and 3.
     */
    @Test
    void qwen35SplitProjectionsBecomeTheGroupedLayoutTheSplitKernelReads(@TempDir Path tmp) {
        for (int hv : new int[] {2, 4, 6}) {
            int hk = 2, dk = 16, dv = 24, h = 64;
            ModelConfig c = new ModelConfig(256, h, 96, 1, 4, 2, 32, hk, hv, dk, dv, 4, 0, 0, 0, 0, 1, List.of(), true,
                    List.of(LayerType.LINEAR_ATTENTION), 1.0e7, 0.25, 1e-6f, 262144, false, DType.BF16, null, List.of(),
                    ModelFamily.QWEN3_5, false, List.of(2, 1, 1), true, null);
            Path dir = tmp.resolve("hv" + hv);
            SyntheticCheckpoint.write(dir, new SyntheticCheckpoint.Options(c, DType.BF16, hv, 1L << 30,
                    SyntheticCheckpoint.ExpertLayout.HUB), b -> { });
            try (ModelWeights m = ModelWeights.load(dir)) {
                ModelImage mi = ModelImage.of(m);
                MemorySegment img = Arena.ofAuto().allocate(mi.image().bytes());
                for (WeightImage.Region r : mi.image().regions()) WeightImage.write(r, 0, r.bytes(), img, r.offset());
                LayerWeights.SplitInput in = (LayerWeights.SplitInput) ((LayerWeights.DeltaNet) m.layers().getFirst().mixer()).input();
                ModelImage.GdnWeights w = (ModelImage.GdnWeights) mi.layers().getFirst().mixer();
                GdnProjections proj = new GdnProjections(hk, hv, dk, dv);
                float[] qkvz = new float[proj.qkvzWidth()], ba = new float[proj.baWidth()];
                float[] mixed = new float[proj.convDim()], z = new float[hv * dv], b = new float[hv], a = new float[hv];
                for (int j = 0; j < h; j++) {
                    for (int r = 0; r < qkvz.length; r++) qkvz[r] = Bf16.toFloat(img.get(I16, w.qkvz() + 2L * ((long) r * h + j)));
                    for (int r = 0; r < ba.length; r++) ba[r] = Bf16.toFloat(img.get(I16, w.ba() + 2L * ((long) r * h + j)));
                    proj.split(qkvz, ba, 1, mixed, z, b, a);
                    assertArrayEquals(column(in.qkv(), j), mixed, "hv " + hv + " in_proj_qkv column " + j);
                    assertArrayEquals(column(in.z(), j), z, "hv " + hv + " in_proj_z column " + j);
                    assertArrayEquals(column(in.b(), j), b, "hv " + hv + " in_proj_b column " + j);
                    assertArrayEquals(column(in.a(), j), a, "hv " + hv + " in_proj_a column " + j);
                }
            }
        }
    }

    private static float[] column(Matrix m, int j) {
        float[] out = new float[m.rows()];
        for (int r = 0; r < out.length; r++) out[r] = m.get(r, j);
        return out;
    }

    @Test
    void aRangePieceStreamsItsElementsOnly() {
        WeightImage img = new WeightImage();
        WeightImage.Piece whole = new WeightImage.Piece.Floats(new float[] {1, 2, 3, 4, 5, 6});
        long off = img.add("r", WeightImage.Target.F32, new WeightImage.Piece.Range(whole, 4, 2), new WeightImage.Piece.Range(whole, 1, 2));
        MemorySegment out = Arena.ofAuto().allocate(img.bytes());
        WeightImage.Region r = img.regions().getFirst();
        WeightImage.write(r, 4, 8, out, off + 4);   // elements 1..2 of the region: 6, then 2
        assertEquals(6f, out.get(F32, off + 4));
        assertEquals(2f, out.get(F32, off + 8));
        assertThrows(IllegalArgumentException.class, () -> new WeightImage.Piece.Range(whole, 5, 2));
    }

    private static void assertRow(MemorySegment img, long base, int imgRow, Matrix m, int row, int cols) {
        short[] want = new short[cols], got = new short[cols];
        for (int c = 0; c < cols; c++) {
            want[c] = Bf16.fromFloat(m.get(row, c));
            got[c] = img.get(I16, base + 2L * ((long) imgRow * cols + c));
        }
        assertArrayEquals(want, got, m.name() + " row " + row);
    }

    @Test
    void tiedEmbeddingsShareTheImageOnlyWhenNoPaddingIsNeeded() {
        Path fixture = Path.of("src/test/resources/qwen3next-fixtures/micro-bf16-tied/checkpoint");
        try (ModelWeights m = ModelWeights.load(fixture)) {
            ModelImage mi = ModelImage.of(m);
            assertEquals(256, m.config().vocabSize());
            assertEquals(mi.embed(), mi.lmHead(), "vocab 256 is a multiple of 8: lm_head reads the embedding");
        }
    }

    @Test
    void planSegmentsCutAtTheCores() {
        List<ForwardPlan.Op> ops = new ArrayList<>();
        ForwardPlan.Launch nop = (s, shape) -> { };
        ops.add(new ForwardPlan.Op("embed", ForwardPlan.Role.PIECE, -1, nop));
        for (int l = 0; l < 48; l++) {
            if ((l + 1) % 4 == 0) {
                ops.add(new ForwardPlan.Op("qkv", ForwardPlan.Role.PIECE, l, nop));
                ops.add(new ForwardPlan.Op("attn", ForwardPlan.Role.ATTENTION_CORE, l, nop));
                ops.add(new ForwardPlan.Op("o", ForwardPlan.Role.PIECE, l, nop));
            } else {
                ops.add(new ForwardPlan.Op("proj", ForwardPlan.Role.GDN_LAYER, l, nop));
                ops.add(new ForwardPlan.Op("core", ForwardPlan.Role.GDN_CORE, l, nop));
                ops.add(new ForwardPlan.Op("norm+out", ForwardPlan.Role.GDN_LAYER, l, nop));
            }
            ops.add(new ForwardPlan.Op("post", ForwardPlan.Role.PIECE, l, nop));
            ops.add(new ForwardPlan.Op("moe", ForwardPlan.Role.PIECE, l, nop));
            ops.add(new ForwardPlan.Op("add", ForwardPlan.Role.PIECE, l, nop));
        }
        ForwardPlan plan = new ForwardPlan(ops);
        assertEquals(49, plan.pieceCount(ForwardPlan.CORES), "48 cores cut 49 pieces");
        assertEquals(1, plan.pieceCount(java.util.Set.of()), "no cores: one piece");
        List<ForwardPlan.Segment> seg = plan.segments(ForwardPlan.GDN_LAYER_CORES);
        assertEquals(97, seg.size());
        assertTrue(seg.get(1).eager());
        assertEquals(3, seg.get(1).ops().size(), "the whole GDN layer is one eager segment");
        int total = seg.stream().mapToInt(s -> s.ops().size()).sum();
        assertEquals(ops.size(), total);
    }

    @Test
    void bucketsAreSglangs() {
        Buckets prefill = Buckets.prefill(8192);
        assertEquals(58, prefill.count());
        assertEquals(4, prefill.sizes()[0]);
        assertEquals(8192, prefill.largest());
        assertEquals(48, prefill.bucketFor(33));
        assertEquals(-1, prefill.bucketFor(8193));
        Buckets decode = Buckets.decode(256);
        assertEquals(36, decode.count());
        assertEquals(12, decode.bucketFor(9));
        assertEquals(16, decode.bucketFor(13));
        assertEquals(24, decode.bucketFor(17));
        assertEquals(16, Buckets.decode(16).largest());
        assertEquals(24, Buckets.decode(17).largest());
        assertEquals(1, Buckets.decode(1).count());
    }

    @Test
    void geometryRulesNameTheField() {
        assertTrue(CudaGeometry.violations(SyntheticCheckpoint.preset("gpu-small", null, null, DType.BF16)).isEmpty());
        assertTrue(CudaGeometry.violations(SyntheticCheckpoint.preset("next-80b-a3b", 8, 64, DType.BF16)).isEmpty());
        List<String> tiny = CudaGeometry.violations(SyntheticCheckpoint.preset("tiny", null, null, DType.BF16));
        assertFalse(tiny.isEmpty());
        assertTrue(tiny.stream().anyMatch(v -> v.contains("hidden")), tiny.toString());
        JnextException e = assertThrows(JnextException.class,
                () -> CudaGeometry.check(SyntheticCheckpoint.preset("tiny", null, null, DType.BF16), "/models/tiny"));
        assertTrue(e.getMessage().startsWith("/models/tiny: the CUDA kernels cannot run this geometry"), e.getMessage());
    }

    @Test
    void memoryPlanFailsWithTheNumbers() {
        MemoryPlan p = new MemoryPlan().add("weights", 40L << 30).add("KV cache", 30L << 30);
        p.check(80L << 30, "cuda:0 H100");
        JnextException e = assertThrows(JnextException.class, () -> p.check(50L << 30, "cuda:0 H100"));
        assertTrue(e.getMessage().contains("50.00 GiB free") && e.getMessage().contains("weights 40.00 GiB")
                && e.getMessage().contains("KV cache 30.00 GiB"), e.getMessage());
    }

    @Test
    void stepShapesAndOptionsValidate() {
        assertThrows(IllegalArgumentException.class, () -> new StepShape(4, 3, true));
        assertThrows(IllegalArgumentException.class, () -> new StepShape(0, 1, false));
        assertThrows(JnextException.class, () -> CudaOptions.defaults().withMaxSequences(0));
        assertThrows(JnextException.class, () -> new KvBudget.MemoryFraction(1.5));
    }

    @Test
    void legacyConfigStyleLoadsToTheSameConfig(@TempDir Path tmp) {
        ModelConfig c = SyntheticCheckpoint.preset("gpu-small", 4, 8, DType.BF16);
        Path v4 = tmp.resolve("v4"), v5 = tmp.resolve("v5");
        SyntheticCheckpoint.write(v4, new SyntheticCheckpoint.Options(c, DType.BF16, 1, 1L << 30, SyntheticCheckpoint.ExpertLayout.HUB,
                4f, SyntheticCheckpoint.ConfigStyle.V4), b -> {});
        SyntheticCheckpoint.write(v5, new SyntheticCheckpoint.Options(c, DType.BF16, 1, 1L << 30, SyntheticCheckpoint.ExpertLayout.FUSED,
                4f, SyntheticCheckpoint.ConfigStyle.V5), b -> {});
        assertEquals(ModelConfig.load(v5), ModelConfig.load(v4));
        try (ModelWeights m = ModelWeights.load(v4)) {
            float[] w = m.finalNorm();
            double mean = 0;
            for (float x : w) mean += x;
            assertEquals(3.0, mean / w.length, 0.05, "--logit-scale 4 centres the final norm's stored weight on 3");
        }
    }

    @Test
    void theMoeScratchIsSizedOnceByTheOpThatAllocatesIt() {
        // the 80B-A3B MoE: H 2048, 512 experts, top-10, expert and shared width 512
        GpuSparseMoe.Shape shape = new GpuSparseMoe.Shape(2048, 512, 10, 512, 512, true);
        GpuSparseMoe.Scratch z = GpuSparseMoe.scratch(shape, 8192, 8);
        assertEquals(z.logits() + z.topkIds() + z.topkWeights() + z.chunkCounts() + z.expertStart() + z.sortedPairs()
                + z.pairRow() + z.tileExpert() + z.act() + z.contrib() + z.decodeContrib() + z.decodeCounters()
                + z.sharedGateUp() + z.sharedAct() + z.sharedOut(), z.total());
        assertTrue(z.contrib() > 0 && z.sharedGateUp() > 0 && z.sharedAct() > 0 && z.sharedOut() > 0);
        assertEquals(2L * 8192 * GpuSparseMoe.routerRows(shape), z.logits());
        // steps the decode kernels take whole need neither the grouped GEMMs' contributions nor the dense shared expert
        GpuSparseMoe.Scratch decodeOnly = GpuSparseMoe.scratch(shape, 8, 8);
        assertEquals(0, decodeOnly.contrib());
        assertEquals(0, decodeOnly.sharedGateUp() + decodeOnly.sharedAct() + decodeOnly.sharedOut());
        // experts wider than the decode kernels: every step takes the grouped GEMMs
        assertEquals(0, GpuSparseMoe.decodeRows(new GpuSparseMoe.Shape(2048, 64, 8, 2048, 0, true), 8192, 8));
        // FP8 experts: the prefill path's bf16 copy of one layer's experts (routed and shared), only with a prefill path
        assertEquals(0, z.fp8Copy());
        GpuSparseMoe.Shape fp8 = shape.withFp8Experts(true);
        long h = shape.hidden(), e = shape.experts(), i = shape.inter(), is = shape.sharedInter();
        GpuSparseMoe.Scratch zf = GpuSparseMoe.scratch(fp8, 8192, 8);
        assertEquals(2 * (e * 3 * h * i + 3 * h * is), zf.fp8Copy(), "a bf16 copy of every expert of one layer");
        assertEquals(z.total() + zf.fp8Copy(), zf.total());
        assertEquals(0, GpuSparseMoe.scratch(fp8, 8, 8).fp8Copy(), "decode steps read the FP8 experts themselves");
        // with FP8 experts every decode step (up to the sequence slots) takes the FP8 decode kernels
        CudaOptions o = CudaOptions.defaults().withMaxSequences(64);
        assertEquals(64, RunnerResources.moeDecodeRows(o, true));
        assertEquals(8, RunnerResources.moeDecodeRows(o, false));
        assertEquals(8, RunnerResources.moeDecodeRows(CudaOptions.defaults().withMaxSequences(4), true));
    }
}
