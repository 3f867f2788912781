package dev.jnext.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jnext.JnextException;
import dev.jnext.backend.Backends;
import dev.jnext.backend.DeviceChoice;
import dev.jnext.cpu.Qwen3NextModel;
import dev.jnext.cuda.CudaBackendProvider;
import dev.jnext.cuda.CudaGeometry;
import dev.jnext.model.weights.Checkpoint;
import dev.jnext.model.weights.LayerWeights;
import dev.jnext.model.weights.Tensor;
import dev.jnext.model.weights.ModelWeights;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The Qwen3.5 / Qwen3.6 config.json forms and checkpoint layouts, as transformers 5.17 reads them. */
class Qwen35LoadTest {

    /** The released Qwen3.5-27B config.json's text-model fields (vision_config shortened). */
    static final String RELEASED_27B = """
            {"architectures": ["Qwen3_5ForConditionalGeneration"], "model_type": "qwen3_5",
             "image_token_id": 248056, "video_token_id": 248057, "vision_start_token_id": 248053,
             "vision_end_token_id": 248054, "tie_word_embeddings": false, "transformers_version": "5.2.0",
             "text_config": {"model_type": "qwen3_5_text", "attention_bias": false, "attention_dropout": 0.0,
               "attn_output_gate": true, "dtype": "bfloat16", "eos_token_id": 248044, "full_attention_interval": 4,
               "head_dim": 256, "hidden_act": "silu", "hidden_size": 5120, "initializer_range": 0.02,
               "intermediate_size": 17408, "layer_types": %s, "linear_conv_kernel_dim": 4, "linear_key_head_dim": 128,
               "linear_num_key_heads": 16, "linear_num_value_heads": 48, "linear_value_head_dim": 128,
               "mamba_ssm_dtype": "float32", "max_position_embeddings": 262144, "mlp_only_layers": [],
               "mtp_num_hidden_layers": 1, "mtp_use_dedicated_embeddings": false, "num_attention_heads": 24,
               "num_hidden_layers": 64, "num_key_value_heads": 4, "partial_rotary_factor": 0.25,
               "rms_norm_eps": 1e-06,
               "rope_parameters": {"mrope_interleaved": true, "mrope_section": [11, 11, 10], "rope_type": "default",
                                   "rope_theta": 10000000, "partial_rotary_factor": 0.25},
               "tie_word_embeddings": false, "use_cache": true, "vocab_size": 248320},
             "vision_config": {"model_type": "qwen3_5", "depth": 27, "hidden_size": 1152, "out_hidden_size": 5120}}
            """.formatted(layerTypes(64));

    static String layerTypes(int n) {
        List<String> t = new ArrayList<>();
        for (int i = 0; i < n; i++) t.add((i + 1) % 4 == 0 ? "\"full_attention\"" : "\"linear_attention\"");
        return t.toString();
    }

    static final ObjectMapper JSON = new ObjectMapper();

    static String fail(String json) {
        return assertThrows(JnextException.class, () -> ModelConfig.parse(json, "cfg.json")).getMessage();
    }

    @Test
    void theReleasedMultimodalConfigGivesTheTextModel() {
        ModelConfig c = ModelConfig.parse(RELEASED_27B, "cfg.json");
        assertEquals(ModelFamily.QWEN3_5, c.family());
        assertTrue(c.multimodal());
        assertEquals("model.language_model.", c.weightPrefix());
        assertEquals(248320, c.vocabSize());
        assertEquals(5120, c.hiddenSize());
        assertEquals(17408, c.intermediateSize());
        assertEquals(16, c.countLayers(LayerType.FULL_ATTENTION));
        assertEquals(3, c.valueHeadsPerKeyHead());
        assertEquals(64, c.rotaryDim());
        assertEquals(1e7, c.ropeTheta());
        assertEquals(List.of(11, 11, 10), c.mropeSection());
        assertTrue(c.mropeInterleaved());
        assertEquals(List.of(248044), c.eosTokenIds());
        assertEquals(DType.BF16, c.dtype());
        assertEquals(0, c.numExperts());
        for (int i = 0; i < 64; i++) assertFalse(c.isMoeLayer(i));
        assertFalse(c.tieWordEmbeddings());
    }

    @Test
    void theWrapperTiesAsTransformersDoes() throws IOException {
        // Qwen3_5ForConditionalGeneration ties by the wrapper's own tie_word_embeddings (default false), not text_config's
        ObjectNode o = (ObjectNode) JSON.readTree(RELEASED_27B);
        ((ObjectNode) o.get("text_config")).put("tie_word_embeddings", true);
        assertFalse(ModelConfig.parse(o.toString(), "cfg.json").tieWordEmbeddings());
        o.remove("tie_word_embeddings");
        assertFalse(ModelConfig.parse(o.toString(), "cfg.json").tieWordEmbeddings());
        o.put("tie_word_embeddings", true);
        ((ObjectNode) o.get("text_config")).put("tie_word_embeddings", false);
        assertTrue(ModelConfig.parse(o.toString(), "cfg.json").tieWordEmbeddings());
        // the text-only config ties by its own field
        ObjectNode text = (ObjectNode) o.get("text_config");
        text.put("tie_word_embeddings", true);
        assertTrue(ModelConfig.parse(text.toString(), "cfg.json").tieWordEmbeddings());
        assertFalse(ModelConfig.parse(text.toString(), "cfg.json").multimodal());
    }

    @Test
    void theMoeFamilyIgnoresTheFieldsItsConfigDrops() {
        ModelConfig c = ModelConfig.parse("""
                {"model_type": "qwen3_5_moe_text", "num_hidden_layers": 4, "norm_topk_prob": false,
                 "decoder_sparse_step": 2, "mlp_only_layers": [0], "intermediate_size": 5,
                 "num_experts": 16, "num_experts_per_tok": 8}
                """, "cfg.json");
        assertEquals(ModelFamily.QWEN3_5_MOE, c.family());
        assertTrue(c.normTopkProb());
        for (int i = 0; i < 4; i++) assertTrue(c.isMoeLayer(i));
        assertEquals(0, c.intermediateSize());
        // transformers' defaults for the rest: Qwen3.5-35B-A3B's geometry, vocabulary 248320, mrope [11, 11, 10]
        assertEquals(248320, c.vocabSize());
        assertEquals(2048, c.hiddenSize());
        assertEquals(512, c.moeIntermediateSize());
        assertEquals(List.of(11, 11, 10), c.mropeSection());
    }

    @Test
    void theDenseFamilyIgnoresMoeFields() {
        ModelConfig c = ModelConfig.parse("""
                {"model_type": "qwen3_5_text", "num_hidden_layers": 4, "num_experts": 8, "num_experts_per_tok": 2}
                """, "cfg.json");
        assertEquals(0, c.numExperts());
        for (int i = 0; i < 4; i++) assertFalse(c.isMoeLayer(i));
        assertEquals(12288, c.intermediateSize());   // Qwen3_5TextConfig's default (the 9B)
        assertEquals(4, c.numKeyValueHeads());
    }

    @Test
    void refusals() throws IOException {
        assertEquals("cfg.json: model_type is \"llama\"; jnext runs \"qwen3_next\", \"qwen3_5\" / \"qwen3_5_text\" and "
                + "\"qwen3_5_moe\" / \"qwen3_5_moe_text\" (Qwen3.5, Qwen3.6)", fail("{\"model_type\": \"llama\"}"));
        assertEquals("cfg.json: a \"qwen3_5\" config.json needs a text_config object", fail("{\"model_type\": \"qwen3_5\"}"));
        ObjectNode o = (ObjectNode) JSON.readTree(RELEASED_27B);
        ((ObjectNode) o.get("text_config")).put("model_type", "qwen3_5_moe_text");
        assertEquals("cfg.json: text_config.model_type is \"qwen3_5_moe_text\" inside a \"qwen3_5\" config; expected "
                + "\"qwen3_5_text\"", fail(o.toString()));
        ((ObjectNode) o.get("text_config")).put("model_type", "qwen3_5_text");
        ((ObjectNode) o.get("text_config").get("rope_parameters")).putArray("mrope_section").add(11).add(11);
        assertEquals("cfg.json (text_config): rope_parameters.mrope_section must list 3 sizes (T, H, W), got [11, 11]",
                fail(o.toString()));
    }

    @Test
    void synthConfigsRoundTrip() {
        for (String preset : List.of("qwen3.5-0.8b", "qwen3.5-9b", "qwen3.5-27b", "qwen3.5-35b-a3b", "qwen3.5-tiny",
                "qwen3.5-moe-tiny")) {
            ModelConfig c = SyntheticCheckpoint.preset(preset, null, null, DType.BF16);
            for (boolean mm : new boolean[]{false, true}) {
                ModelConfig x = c.withMultimodal(mm);
                assertEquals(x, ModelConfig.parse(x.toJson(), preset), preset + (mm ? " multimodal" : ""));
            }
        }
    }

    @Test
    void thePresetsWeighWhatTheReleasedModelsDo() {
        // text model only: the released totals also count the vision tower (about 0.1-0.5 B) and the MTP head
        assertBetween(0.70e9, 0.80e9, ModelSize.of(SyntheticCheckpoint.preset("qwen3.5-0.8b", null, null, DType.BF16)).parameters());
        assertBetween(8.5e9, 9.5e9, ModelSize.of(SyntheticCheckpoint.preset("qwen3.5-9b", null, null, DType.BF16)).parameters());
        assertBetween(26e9, 27.5e9, ModelSize.of(SyntheticCheckpoint.preset("qwen3.5-27b", null, null, DType.BF16)).parameters());
        ModelSize moe = ModelSize.of(SyntheticCheckpoint.preset("qwen3.5-35b-a3b", null, null, DType.BF16));
        assertBetween(34e9, 35.5e9, moe.parameters());
        assertBetween(2.5e9, 3.5e9, moe.activeParameters());
        // with FP8 experts (one byte a weight, one fp32 scale a block; the rest bf16): the 35B-A3B fits one H100, the
        // 80B-A3B takes 81.9 GB (experts 77.3 GB, their scales 19 MB, shared experts 151 MB, the rest 4.4 GB)
        assertBetween(36e9, 40e9, moe.weightBytesFp8Experts());
        ModelSize next = ModelSize.of(SyntheticCheckpoint.preset("next-80b-a3b", null, null, DType.BF16));
        assertBetween(81.8e9, 82.0e9, next.weightBytesFp8Experts());
        assertBetween(159e9, 160e9, next.weightBytesBf16());
    }

    static void assertBetween(double lo, double hi, long v) {
        assertTrue(v >= lo && v <= hi, v + " not in [" + lo + ", " + hi + "]");
    }

    /** A multimodal qwen3.5-tiny checkpoint plus a shard of mtp.* and model.visual.* tensors (and {@code extra}). */
    static Path wrapperWithExtras(Path dir, Map<String, CheckpointLoadTest.Raw> extra) throws IOException {
        ModelConfig c = SyntheticCheckpoint.preset("qwen3.5-tiny", null, null, DType.F32).withMultimodal(true);
        SyntheticCheckpoint.write(dir, new SyntheticCheckpoint.Options(c, DType.F32, 3, Long.MAX_VALUE,
                SyntheticCheckpoint.ExpertLayout.HUB), b -> { });
        Map<String, CheckpointLoadTest.Raw> t = new LinkedHashMap<>();
        t.put("mtp.fc.weight", new CheckpointLoadTest.Raw("BF16", new int[]{64, 128}, new byte[64 * 128 * 2]));
        t.put("mtp.norm.weight", new CheckpointLoadTest.Raw("BF16", new int[]{64}, new byte[128]));
        t.put("model.visual.patch_embed.proj.weight", new CheckpointLoadTest.Raw("F32", new int[]{32, 1536}, new byte[32 * 1536 * 4]));
        t.putAll(extra);
        CheckpointLoadTest.writeFile(dir.resolve("extra.safetensors"), t);
        Path index = dir.resolve("model.safetensors.index.json");
        ObjectNode idx = (ObjectNode) JSON.readTree(index.toFile());
        for (String name : t.keySet()) ((ObjectNode) idx.get("weight_map")).put(name, "extra.safetensors");
        Files.writeString(index, idx.toString());
        return dir;
    }

    @Test
    void theMultimodalCheckpointLoadsItsTextModelAndSkipsMtpAndTheVisionTower(@TempDir Path tmp) throws IOException {
        Path dir = wrapperWithExtras(tmp.resolve("mm"), Map.of());
        try (ModelWeights w = ModelWeights.load(dir)) {
            assertTrue(w.config().multimodal());
            assertEquals(new ModelWeights.Skipped(2, 64 * 128 * 2 + 128, 1, 32 * 1536 * 4), w.skipped());
            assertEquals("skipped 3 tensors (0.2 MiB) that the text model does not use: 2 mtp.* (0.0 MiB, the "
                    + "multi-token-prediction head), 1 model.visual.* (0.2 MiB, the vision tower)", w.skipped().describe());
            LayerWeights.DeltaNet g = assertInstanceOf(LayerWeights.DeltaNet.class, w.layers().getFirst().mixer());
            LayerWeights.SplitInput in = assertInstanceOf(LayerWeights.SplitInput.class, g.input());
            assertEquals(2 * 2 * 16 + 4 * 24, in.qkv().rows());
            assertEquals(4 * 24, in.z().rows());
            assertEquals(4, in.b().rows());
            assertThrows(IllegalStateException.class, g::inProjQkvz);
            // tied through the wrapper's flag: no lm_head.weight, the embedding is the output layer
            assertTrue(w.checkpoint().find("lm_head.weight") != null || w.config().tieWordEmbeddings());
        }
        try (Qwen3NextModel m = Qwen3NextModel.load(dir)) {
            assertEquals(ModelFamily.QWEN3_5, m.config().family());
        }
    }

    @Test
    void tensorsOutsideTheTextModelNameTheFamily(@TempDir Path tmp) throws IOException {
        Path dir = wrapperWithExtras(tmp.resolve("odd"), Map.of("model.language_model.layers.0.linear_attn.in_proj_qkvz.weight",
                new CheckpointLoadTest.Raw("F32", new int[]{1}, new byte[4])));
        String msg = assertThrows(JnextException.class, () -> ModelWeights.load(dir)).getMessage();
        assertEquals(dir + ": unexpected tensor ['model.language_model.layers.0.linear_attn.in_proj_qkvz.weight'] (not part "
                + "of a Qwen3.5 (dense) model with this config.json)", msg);
    }

    @Test
    void aMissingSplitProjectionOrAWrongPrefixIsNamed(@TempDir Path tmp) throws IOException {
        ModelConfig c = SyntheticCheckpoint.preset("qwen3.5-moe-tiny", null, null, DType.F32);
        Path dir = tmp.resolve("moe");
        SyntheticCheckpoint.write(dir, new SyntheticCheckpoint.Options(c, DType.F32, 1, Long.MAX_VALUE,
                SyntheticCheckpoint.ExpertLayout.FUSED), b -> { });
        Map<String, CheckpointLoadTest.Raw> t = new LinkedHashMap<>();
        try (Checkpoint ck = Checkpoint.open(dir)) {
            for (Tensor x : ck.tensors().values()) {
                t.put(x.name(), new CheckpointLoadTest.Raw(x.dtype().safetensorsName(), x.shape(),
                        x.data().toArray(ValueLayout.JAVA_BYTE)));
            }
        }
        t.remove("model.layers.1.linear_attn.in_proj_z.weight");
        Path broken = Files.createDirectories(tmp.resolve("broken"));
        CheckpointLoadTest.writeFile(broken.resolve("model.safetensors"), t);
        Files.writeString(broken.resolve("config.json"), c.toJson());
        assertEquals(broken + ": missing tensor 'model.layers.1.linear_attn.in_proj_z.weight' (expected shape [96, 64])",
                assertThrows(JnextException.class, () -> ModelWeights.load(broken)).getMessage());
        // a text-only checkpoint whose config.json is the multimodal one: the text model's tensors are not where it says
        Files.writeString(dir.resolve("config.json"), c.withMultimodal(true).toJson());
        assertEquals(dir + ": missing tensor 'model.language_model.embed_tokens.weight' (expected shape [256, 64])",
                assertThrows(JnextException.class, () -> ModelWeights.load(dir)).getMessage());
    }

    @Test
    void theCudaKernelsTakeEveryReleasedGeometry() {
        // value-head ratios 1 (0.8B), 2 (9B, 35B-A3B) and 3 (27B), 24 query heads, hidden 5120, 256 experts x 512 top-8
        for (String preset : List.of("qwen3.5-0.8b", "qwen3.5-9b", "qwen3.5-27b", "qwen3.5-35b-a3b")) {
            ModelConfig c = SyntheticCheckpoint.preset(preset, null, null, DType.BF16);
            assertEquals(List.of(), CudaGeometry.violations(c), preset);
        }
        // no driver here: the only reason the CUDA backend is out, and auto picks the CPU
        ModelConfig c = SyntheticCheckpoint.preset("qwen3.5-35b-a3b", 4, 16, DType.BF16);
        assertEquals(Backends.NO_DRIVER, new CudaBackendProvider().unavailableReason(c, 0));
        assertEquals(DeviceChoice.CPU, Backends.resolve(DeviceChoice.AUTO, c, why -> { }));
    }
}
