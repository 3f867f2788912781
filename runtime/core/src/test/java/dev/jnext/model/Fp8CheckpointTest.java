package dev.jnext.model;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jnext.JnextException;
import dev.jnext.cpu.CpuSession;
import dev.jnext.cpu.Qwen3NextModel;
import dev.jnext.model.Fp8Checkpoints.Stored;
import dev.jnext.model.weights.BlockScales;
import dev.jnext.model.weights.LayerWeights;
import dev.jnext.model.weights.Matrix;
import dev.jnext.model.weights.ModelWeights;
import dev.jnext.numeric.Fp8E4m3;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeSet;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fine-grained FP8 checkpoints end to end on the CPU: synth writes the official layout, the loader binds it with its
 * block scales (ragged edges, fused experts), the CPU logits are exactly those of the dequantized model, and every
 * malformed scale or misplaced FP8 tensor is refused by name.
 */
class Fp8CheckpointTest {
    @TempDir
    static Path tmp;
    static Path hub, fused, plainF32;
    static final int[] IDS = {5, 17, 63, 0, 41, 41, 9, 22, 33, 1, 2, 60};

    @BeforeAll
    static void writeCheckpoints() {
        ModelConfig c = Fp8Checkpoints.raggedConfig();
        hub = Fp8Checkpoints.write(tmp.resolve("hub"), c, 7, SyntheticCheckpoint.ExpertLayout.HUB);
        fused = Fp8Checkpoints.write(tmp.resolve("fused"), c, 7, SyntheticCheckpoint.ExpertLayout.FUSED);
        // the same seed unquantized in F32: the values the FP8 tensors were quantized from
        plainF32 = tmp.resolve("plain");
        SyntheticCheckpoint.write(plainF32, new SyntheticCheckpoint.Options(c, DType.F32, 7, 1L << 20,
                SyntheticCheckpoint.ExpertLayout.HUB, 4f, SyntheticCheckpoint.ConfigStyle.V5), n -> { });
    }

    static float[] logits(Path dir) {
        try (Qwen3NextModel m = Qwen3NextModel.load(dir); CpuSession s = new CpuSession(m)) {
            return s.extendAll(IDS);
        }
    }

    @Test
    void synthWritesTheOfficialLayout() {
        Map<String, Stored> t = Fp8Checkpoints.read(hub);
        TreeSet<String> fp8 = new TreeSet<>();
        t.forEach((name, s) -> {
            if (s.dtype() == DType.F8_E4M3) fp8.add(name);
        });
        // FP8: the attention and DeltaNet projections, experts, shared expert, dense MLP; everything else BF16
        for (String name : new String[]{"model.layers.0.linear_attn.in_proj_qkvz.weight", "model.layers.0.linear_attn.out_proj.weight",
                "model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight", "model.layers.1.self_attn.v_proj.weight",
                "model.layers.1.self_attn.o_proj.weight", "model.layers.0.mlp.experts.2.gate_proj.weight", "model.layers.1.mlp.experts.0.down_proj.weight",
                "model.layers.0.mlp.shared_expert.up_proj.weight", "model.layers.2.mlp.gate_proj.weight", "model.layers.2.mlp.down_proj.weight"}) {
            assertTrue(fp8.contains(name), name);
            assertEquals(DType.F32, t.get(name + "_scale_inv").dtype(), name);
        }
        for (String name : new String[]{"model.embed_tokens.weight", "lm_head.weight", "model.norm.weight", "model.layers.0.mlp.gate.weight",
                "model.layers.0.mlp.shared_expert_gate.weight", "model.layers.0.linear_attn.in_proj_ba.weight", "model.layers.0.linear_attn.conv1d.weight",
                "model.layers.0.linear_attn.A_log", "model.layers.0.linear_attn.dt_bias", "model.layers.0.linear_attn.norm.weight",
                "model.layers.1.self_attn.q_norm.weight", "model.layers.2.input_layernorm.weight"}) {
            assertEquals(DType.BF16, t.get(name).dtype(), name);
            assertNull(t.get(name + "_scale_inv"), name);
        }
        // layer 0: qkvz, out, 9 expert matrices, 3 shared; layer 1: q, k, v, o, 9 + 3; layer 2: qkvz, out, 3 dense
        assertEquals(14 + 16 + 5, fp8.size(), fp8.toString());
        // ragged grids: ceil-divided
        assertArrayEquals(new int[]{3, 2}, t.get("model.layers.1.self_attn.q_proj.weight_scale_inv").shape(), "288 x 200");
        assertArrayEquals(new int[]{3, 2}, t.get("model.layers.0.linear_attn.in_proj_qkvz.weight_scale_inv").shape(), "272 x 200");
        assertArrayEquals(new int[]{2, 2}, t.get("model.layers.0.mlp.experts.1.down_proj.weight_scale_inv").shape(), "200 x 136");
        assertArrayEquals(new int[]{2, 3}, t.get("model.layers.2.mlp.down_proj.weight_scale_inv").shape(), "200 x 300");
        Map<String, Stored> f = Fp8Checkpoints.read(fused);
        assertEquals(DType.F8_E4M3, f.get("model.layers.0.mlp.experts.gate_up_proj").dtype());
        assertArrayEquals(new int[]{3, 3, 2}, f.get("model.layers.0.mlp.experts.gate_up_proj_scale_inv").shape(), "3 x [272, 200]");
        assertArrayEquals(new int[]{3, 2, 2}, f.get("model.layers.0.mlp.experts.down_proj_scale_inv").shape(), "3 x [200, 136]");
        ModelConfig c = ModelConfig.load(hub);
        assertEquals(Fp8Quantization.qwen3Next(Fp8Checkpoints.raggedConfig()), c.quantization());
        assertEquals(DType.BF16, c.dtype());
    }

    @Test
    void synthQuantizesEachBlockWithAmaxOver448AndRoundsToNearest() {
        Map<String, Stored> q = Fp8Checkpoints.read(hub);
        Map<String, Stored> plain = Fp8Checkpoints.read(plainF32);
        for (String name : new String[]{"model.layers.1.self_attn.q_proj.weight", "model.layers.2.mlp.down_proj.weight",
                "model.layers.0.mlp.experts.1.gate_proj.weight"}) {
            Stored w = q.get(name);
            float[] v = Fp8Checkpoints.floats(plain.get(name));
            float[] scales = Fp8Checkpoints.floats(q.get(name + "_scale_inv"));
            int rows = w.shape()[0], cols = w.shape()[1], gc = (cols + 127) / 128;
            float[] amax = new float[scales.length];
            for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) {
                int b = (r / 128) * gc + c / 128;
                amax[b] = Math.max(amax[b], Math.abs(v[r * cols + c]));
            }
            for (int b = 0; b < scales.length; b++) assertEquals(amax[b] / 448f, scales[b], name + " block " + b);
            for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) {
                float s = scales[(r / 128) * gc + c / 128];
                assertEquals(Fp8E4m3.fromFloat(v[r * cols + c] / s), w.bytes()[r * cols + c], name + " [" + r + ", " + c + "]");
            }
        }
    }

    @Test
    void theLoaderBindsBlockScalesAtRaggedEdgesAndInFusedExperts() {
        try (ModelWeights h = ModelWeights.load(hub); ModelWeights f = ModelWeights.load(fused)) {
            LayerWeights.Moe hm = (LayerWeights.Moe) h.layers().getFirst().feedForward();
            LayerWeights.Moe fm = (LayerWeights.Moe) f.layers().getFirst().feedForward();
            assertNull(hm.router().scales(), "the router stays bf16");
            for (int e = 0; e < 3; e++) {
                for (int k = 0; k < 3; k++) {
                    Matrix a = k == 0 ? hm.experts().get(e).gate() : k == 1 ? hm.experts().get(e).up() : hm.experts().get(e).down();
                    Matrix b = k == 0 ? fm.experts().get(e).gate() : k == 1 ? fm.experts().get(e).up() : fm.experts().get(e).down();
                    assertEquals(DType.F8_E4M3, b.dtype());
                    BlockScales s = b.scales();
                    assertEquals(k == 1 ? 136 : 0, s.firstRow(), "the up half starts at row 136 of the fused grid");
                    // the same bytes (the fused layout stacks the hub's values), scales blocked over the fused matrix
                    float[] ra = new float[a.cols()], rb = new float[b.cols()];
                    for (int r = 0; r < a.rows(); r++) {
                        b.loadRow(r, rb, null);
                        for (int c = 0; c < b.cols(); c++) {
                            assertEquals(Fp8E4m3.toFloat(b.data().get(java.lang.foreign.ValueLayout.JAVA_BYTE, (long) r * b.cols() + c))
                                    * s.values()[((s.firstRow() + r) / 128) * s.gridCols() + c / 128], rb[c]);
                            assertEquals(rb[c], b.get(r, c));
                        }
                        a.loadRow(r, ra, null);
                        assertEquals(Fp8E4m3.toFloat(a.data().get(java.lang.foreign.ValueLayout.JAVA_BYTE, (long) r * a.cols())) * a.scales().at(r, 0), ra[0]);
                    }
                }
            }
        }
    }

    @Test
    void cpuLogitsAreExactlyThoseOfTheDequantizedModel() {
        for (Path fp8 : new Path[]{hub, fused}) {
            Path twin = Fp8Checkpoints.dequantized(fp8, tmp.resolve("twin-" + fp8.getFileName()));
            float[] a = logits(fp8), b = logits(twin);
            assertArrayEquals(b, a, fp8 + ": bitwise");
        }
        // and close to the unquantized weights they came from: e4m3 keeps 4 significant bits, 4 fewer than bf16 (whose
        // logits differ from f32's by about 0.01 of the largest here; FP8's by about 0.14)
        float[] q = logits(hub), p = logits(plainF32);
        double maxDiff = 0, maxRef = 0;
        for (int i = 0; i < q.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(q[i] - p[i]));
            maxRef = Math.max(maxRef, Math.abs(p[i]));
        }
        assertTrue(maxDiff > 0 && maxDiff / maxRef < 0.2, "FP8 vs unquantized: max |d| / max |logit| = " + maxDiff / maxRef);
    }

    /**
     * Qwen3.5 / 3.6 FP8 (text-only and the released multimodal layout): in_proj_qkv and in_proj_z FP8, in_proj_a and
     * in_proj_b kept in bf16 as the official builds keep them; the CPU logits are exactly those of the dequantized twin.
     */
    @Test
    void qwen35FollowsItsFp8LayoutAndItsCpuLogitsAreThoseOfTheDequantizedModel() {
        for (boolean multimodal : new boolean[]{false, true}) {
            ModelConfig c = SyntheticCheckpoint.preset("qwen3.5-moe-tiny", 4, 8, DType.BF16).withMultimodal(multimodal);
            c = c.withQuantization(Fp8Quantization.official(c));
            Path dir = tmp.resolve("q35-fp8-" + multimodal);
            SyntheticCheckpoint.write(dir, new SyntheticCheckpoint.Options(c, DType.BF16, 3, 1L << 20,
                    SyntheticCheckpoint.ExpertLayout.FUSED, 4f, SyntheticCheckpoint.ConfigStyle.V5), n -> { });
            Map<String, Fp8Checkpoints.Stored> t = Fp8Checkpoints.read(dir);
            String p = c.weightPrefix() + "layers.0.linear_attn.";
            assertEquals(DType.F8_E4M3, t.get(p + "in_proj_qkv.weight").dtype(), p);
            assertEquals(DType.F8_E4M3, t.get(p + "in_proj_z.weight").dtype(), p);
            assertEquals(DType.BF16, t.get(p + "in_proj_a.weight").dtype(), p);
            assertEquals(DType.BF16, t.get(p + "in_proj_b.weight").dtype(), p);
            assertEquals(DType.BF16, t.get(c.weightPrefix() + "embed_tokens.weight").dtype());
            assertEquals(DType.F8_E4M3, t.get(c.weightPrefix() + "layers.3.self_attn.q_proj.weight").dtype());
            Path twin = Fp8Checkpoints.dequantized(dir, tmp.resolve("q35-twin-" + multimodal));
            assertArrayEquals(logits(twin), logits(dir), "multimodal " + multimodal);
        }
    }

    @Test
    void bf16ScalesAreReadAsStored() {
        Path bf16 = Fp8Checkpoints.rewrite(hub, tmp.resolve("bf16-scales"), t -> t.replaceAll((name, s) ->
                name.endsWith("_scale_inv") ? Fp8Checkpoints.bf16(s.shape(), Fp8Checkpoints.floats(s)) : s), c -> c);
        assertEquals(DType.BF16, Fp8Checkpoints.read(bf16).get("model.layers.1.self_attn.q_proj.weight_scale_inv").dtype());
        Path twin = Fp8Checkpoints.dequantized(bf16, tmp.resolve("bf16-scales-twin"));
        assertArrayEquals(logits(twin), logits(bf16));
    }

    // ---- refusals --------------------------------------------------------------------------------------------

    static int variant;

    static String refusal(Consumer<Map<String, Stored>> edit, UnaryOperator<ObjectNode> config) {
        Path dir = Fp8Checkpoints.rewrite(hub, tmp.resolve("bad-" + variant++), edit, config);
        String msg = assertThrows(JnextException.class, () -> ModelWeights.load(dir)).getMessage();
        assertEquals(1, msg.lines().count(), msg);
        assertTrue(msg.startsWith(dir + ": "), msg);
        return msg.substring(dir.toString().length() + 2);
    }

    static String refusal(Consumer<Map<String, Stored>> edit) {
        return refusal(edit, c -> c);
    }

    static Consumer<Map<String, Stored>> setScale(String name, int index, float value) {
        return t -> {
            float[] v = Fp8Checkpoints.floats(t.get(name));
            v[index] = value;
            t.put(name, Fp8Checkpoints.f32(t.get(name).shape(), v));
        };
    }

    @Test
    void aScaleOfZeroInfinityOrNaNIsRefusedNamingTheTensorAndBlock() {
        String q = "model.layers.1.self_attn.q_proj.weight_scale_inv";
        assertEquals("tensor '" + q + "' holds 0.0 at [2, 1]; block scales must be positive and finite", refusal(setScale(q, 5, 0f)));
        assertEquals("tensor '" + q + "' holds Infinity at [0, 1]; block scales must be positive and finite",
                refusal(setScale(q, 1, Float.POSITIVE_INFINITY)));
        assertEquals("tensor '" + q + "' holds NaN at [1, 0]; block scales must be positive and finite", refusal(setScale(q, 2, Float.NaN)));
        assertEquals("tensor '" + q + "' holds -0.5 at [0, 0]; block scales must be positive and finite", refusal(setScale(q, 0, -0.5f)));
        String fusedScale = "model.layers.0.mlp.experts.gate_up_proj_scale_inv";
        Path dir = Fp8Checkpoints.rewrite(fused, tmp.resolve("bad-fused"), setScale(fusedScale, 3 * 2 + 2 * 2 + 1, 0f), c -> c);
        assertEquals(dir + ": tensor '" + fusedScale + "' holds 0.0 at [1, 2, 1]; block scales must be positive and finite",
                assertThrows(JnextException.class, () -> ModelWeights.load(dir)).getMessage());
    }

    @Test
    void aMissingOrMisshapedOrMistypedScaleTensorIsRefusedByName() {
        String w = "model.layers.0.mlp.experts.2.down_proj.weight";
        assertEquals("missing tensor '" + w + "_scale_inv' (the block scales of the F8_E4M3 tensor '" + w + "', expected shape [2, 2])",
                refusal(t -> t.remove(w + "_scale_inv")));
        assertEquals("tensor '" + w + "_scale_inv' has shape [2, 1], expected [2, 2] (one scale per 128 x 128 block of '" + w
                        + "' [200, 136], ceil-divided)",
                refusal(t -> t.put(w + "_scale_inv", Fp8Checkpoints.f32(new int[]{2, 1}, new float[]{1f, 1f}))));
        assertEquals("tensor '" + w + "_scale_inv' has shape [4], expected [2, 2] (one scale per 128 x 128 block of '" + w
                        + "' [200, 136], ceil-divided)",
                refusal(t -> t.put(w + "_scale_inv", Fp8Checkpoints.f32(new int[]{4}, new float[]{1f, 1f, 1f, 1f}))));
        assertEquals("tensor '" + w + "_scale_inv' is F16; block scales must be F32 or BF16",
                refusal(t -> t.put(w + "_scale_inv", new Stored(DType.F16, new int[]{2, 2}, new byte[8]))));
    }

    @Test
    void fp8WhereTheConfigOrTheModelHasNoPlaceForItIsRefused() {
        String q = "model.layers.1.self_attn.q_proj.weight";
        assertEquals("tensor 'model.layers.0.linear_attn.in_proj_qkvz.weight' is F8_E4M3 but config.json has no quantization_config; jnext loads unquantized checkpoints "
                        + "(F32, BF16, F16) and fine-grained FP8 (quant_method \"fp8\", fmt \"e4m3\", activation_scheme \"dynamic\", "
                        + "weight_block_size [128, 128])",
                refusal(t -> { }, c -> {
                    c.remove("quantization_config");
                    return c;
                }));
        assertEquals("tensor '" + q + "' is F8_E4M3 but quantization_config keeps model.layers.1.self_attn.q_proj unquantized "
                        + "(modules_to_not_convert entry \"model\\.layers\\.1\\.self_attn\")",
                refusal(t -> { }, c -> {
                    ((ArrayNode) c.get("quantization_config").get("modules_to_not_convert")).add("model\\.layers\\.1\\.self_attn");
                    return c;
                }));
        // a BF16 weight beside block scales
        String ba = "model.layers.0.linear_attn.in_proj_ba.weight";
        assertEquals("tensor '" + ba + "_scale_inv' holds block scales for '" + ba + "', which is BF16 (only F8_E4M3 weights take block scales)",
                refusal(t -> t.put(ba + "_scale_inv", Fp8Checkpoints.f32(new int[]{1, 2}, new float[]{1f, 1f}))));
        // an FP8 lm_head (transformers always keeps it)
        assertEquals("tensor 'lm_head.weight' is F8_E4M3 but quantization_config keeps lm_head unquantized (modules_to_not_convert entry \"lm_head\")",
                refusal(t -> t.put("lm_head.weight", new Stored(DType.F8_E4M3, new int[]{64, 200}, new byte[64 * 200]))));
        assertEquals("tensor 'lm_head.weight' is F8_E4M3 but quantization_config keeps lm_head unquantized (lm_head always is)",
                refusal(t -> t.put("lm_head.weight", new Stored(DType.F8_E4M3, new int[]{64, 200}, new byte[64 * 200])), c -> {
                    ((ArrayNode) c.get("quantization_config").get("modules_to_not_convert")).remove(0);
                    return c;
                }));
        // FP8 norms, embeddings, conv1d: not linear weights
        for (String name : new String[]{"model.embed_tokens.weight", "model.layers.0.linear_attn.conv1d.weight", "model.norm.weight"}) {
            String msg = refusal(t -> {
                Stored s = t.get(name);
                t.put(name, new Stored(DType.F8_E4M3, s.shape(), new byte[(int) s.count()]));
            });
            assertEquals("tensor '" + name + "' is F8_E4M3, but only linear weights (the projections, experts, gates and lm_head) are read "
                    + "as FP8; embeddings, norms, conv1d, A_log and dt_bias must be F32, BF16 or F16", msg);
        }
    }

    @Test
    void nonFiniteFp8CodesAreFoundByTheWeightScan() {
        String q = "model.layers.1.self_attn.q_proj.weight";
        Path dir = Fp8Checkpoints.rewrite(hub, tmp.resolve("nan-code"), t -> t.get(q).bytes()[3 * 200 + 7] = (byte) 0xFF, c -> c);
        String found = dev.jnext.model.weights.Checkpoint.firstNonFinite(dir).orElseThrow();
        assertEquals("tensor '" + q + "' [288, 200] holds NaN at element 607", found);
        assertFalse(dev.jnext.model.weights.Checkpoint.firstNonFinite(hub).isPresent());
        try (ModelWeights m = ModelWeights.load(dir)) {
            assertNotNull(m, "a NaN code is data, found by the scan the CPU backend runs on non-finite logits");
        }
    }
}
