package dev.jnext.cuda;

import dev.jnext.backend.KvBudget;

import dev.jnext.JnextException;
import dev.jnext.cuda.kernels.GpuSparseMoe;
import dev.jnext.cuda.kernels.StepShape;
import dev.jnext.model.DType;
import dev.jnext.model.Fp8Checkpoints;
import dev.jnext.model.ModelConfig;
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

    @Test
    void anFp8CheckpointStreamsAsTheBf16ImageOfItsDequantizedWeightsByteForByte(@TempDir Path tmp) {
        for (SyntheticCheckpoint.ExpertLayout layout : SyntheticCheckpoint.ExpertLayout.values()) {
            Path fp8 = Fp8Checkpoints.write(tmp.resolve("fp8-" + layout), Fp8Checkpoints.raggedConfig(), 11, layout);
            Path twin = Fp8Checkpoints.dequantized(fp8, tmp.resolve("twin-" + layout));   // F32, converted to bf16 by the image
            try (ModelWeights q = ModelWeights.load(fp8); ModelWeights d = ModelWeights.load(twin)) {
                ModelImage qi = ModelImage.of(q), di = ModelImage.of(d);
                assertEquals(di.image().bytes(), qi.image().bytes(), "the memory plan counts the bf16 size");
                assertEquals(di.image().regions().size(), qi.image().regions().size());
                long fp8Bytes = 0;
                for (var t : q.checkpoint().tensors().values()) if (t.dtype() == DType.F8_E4M3) fp8Bytes += t.data().byteSize();
                assertTrue(fp8Bytes > 0);
                MemorySegment a = Arena.ofAuto().allocate(qi.image().bytes()), b = Arena.ofAuto().allocate(di.image().bytes());
                int fp8Regions = 0;
                for (int i = 0; i < qi.image().regions().size(); i++) {
                    WeightImage.Region r = qi.image().regions().get(i);
                    assertEquals(di.image().regions().get(i).offset(), r.offset(), r.name());
                    if (r.pieces().stream().anyMatch(p -> p instanceof WeightImage.Piece.BlockFp8)) fp8Regions++;
                    // in chunks that cut rows (and blocks) anywhere, as the uploader's staging buffers may
                    for (long from = 0; from < r.bytes(); from += 332) {
                        WeightImage.write(r, from, Math.min(332, r.bytes() - from), a, r.offset() + from);
                    }
                    WeightImage.Region dr = di.image().regions().get(i);
                    WeightImage.write(dr, 0, dr.bytes(), b, dr.offset());
                }
                assertTrue(fp8Regions >= 10, "FP8 regions: " + fp8Regions);
                long mismatch = a.mismatch(b);
                assertEquals(-1, mismatch, layout + ": first differing byte " + mismatch);
            }
        }
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
    }
}
