package dev.jnext.model;

import dev.jnext.JnextException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelConfigTest {

    static final String LEGACY_80B = """
            {"architectures": ["Qwen3NextForCausalLM"], "model_type": "qwen3_next", "vocab_size": 151936,
             "hidden_size": 2048, "intermediate_size": 5120, "num_hidden_layers": 48, "num_attention_heads": 16,
             "num_key_value_heads": 2, "head_dim": 256, "linear_num_key_heads": 16, "linear_num_value_heads": 32,
             "linear_key_head_dim": 128, "linear_value_head_dim": 128, "linear_conv_kernel_dim": 4,
             "num_experts": 512, "num_experts_per_tok": 10, "moe_intermediate_size": 512,
             "shared_expert_intermediate_size": 512, "decoder_sparse_step": 1, "mlp_only_layers": [],
             "norm_topk_prob": true, "full_attention_interval": 4, "partial_rotary_factor": 0.25,
             "rope_theta": 10000000, "rope_scaling": null, "rms_norm_eps": 1e-06, "max_position_embeddings": 262144,
             "tie_word_embeddings": false, "attention_bias": false, "hidden_act": "silu", "torch_dtype": "bfloat16",
             "bos_token_id": 151643, "eos_token_id": 151645}
            """;

    static String modern(String layerTypes) {
        return """
                {"model_type": "qwen3_next", "vocab_size": 320, "hidden_size": 64, "intermediate_size": 96,
                 "num_hidden_layers": 5, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32,
                 "linear_num_key_heads": 2, "linear_num_value_heads": 4, "linear_key_head_dim": 16,
                 "linear_value_head_dim": 24, "num_experts": 8, "num_experts_per_tok": 3, "moe_intermediate_size": 32,
                 "shared_expert_intermediate_size": 40, "mlp_only_layers": [4], "norm_topk_prob": false,
                 "layer_types": %s, "partial_rotary_factor": 0.25,
                 "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25},
                 "dtype": "float32", "eos_token_id": [1, 2]}
                """.formatted(layerTypes);
    }

    static String fail(String json) {
        return assertThrows(JnextException.class, () -> ModelConfig.parse(json, "cfg.json")).getMessage();
    }

    @Test
    void legacyStyleGivesThe80bGeometry() {
        ModelConfig c = ModelConfig.parse(LEGACY_80B, "cfg.json");
        assertEquals(12, c.countLayers(LayerType.FULL_ATTENTION));
        assertEquals(LayerType.FULL_ATTENTION, c.layerType(3));
        assertEquals(LayerType.LINEAR_ATTENTION, c.layerType(4));
        assertEquals(1e7, c.ropeTheta());
        assertEquals(64, c.rotaryDim());
        assertEquals(8192, c.convDim());
        assertEquals(2, c.valueHeadsPerKeyHead());
        assertEquals(DType.BF16, c.dtype());
        assertEquals(List.of(151645), c.eosTokenIds());
        for (int i = 0; i < 48; i++) assertTrue(c.isMoeLayer(i));
    }

    @Test
    void modernStyleReadsRopeParametersAndLayerTypes() {
        ModelConfig c = ModelConfig.parse(modern("[\"linear_attention\", \"full_attention\", \"linear_attention\", "
                + "\"linear_attention\", \"full_attention\"]"), "cfg.json");
        assertEquals(List.of(LayerType.LINEAR_ATTENTION, LayerType.FULL_ATTENTION, LayerType.LINEAR_ATTENTION,
                LayerType.LINEAR_ATTENTION, LayerType.FULL_ATTENTION), c.layerTypes());
        assertEquals(10000.0, c.ropeTheta());
        assertEquals(8, c.rotaryDim());
        assertFalse(c.normTopkProb());
        assertTrue(c.isMoeLayer(3));
        assertFalse(c.isMoeLayer(4), "mlp_only_layers makes layer 4 dense");
        assertEquals(List.of(1, 2), c.eosTokenIds());
        assertNull(c.bosTokenId());
    }

    @Test
    void bothStylesOfOneModelAreEqualAndRoundTrip() {
        ModelConfig legacy = ModelConfig.parse(LEGACY_80B, "a");
        ModelConfig again = ModelConfig.parse(legacy.toJson(), "b");
        assertEquals(legacy, again);
        assertTrue(legacy.toJson().contains("\"rope_parameters\""));
    }

    @Test
    void defaultsFollowTransformers517() {
        ModelConfig c = ModelConfig.parse("{}", "cfg.json");
        assertEquals(151936, c.vocabSize());
        assertEquals(5632, c.intermediateSize());
        assertEquals(48, c.numHiddenLayers());
        assertEquals(256, c.headDim());
        assertEquals(32768, c.maxPositionEmbeddings());
        assertEquals(0.25, c.partialRotaryFactor());
        assertEquals(12, c.countLayers(LayerType.FULL_ATTENTION));
        assertEquals(1e-6f, c.rmsNormEps());
        assertEquals(10, c.numExpertsPerTok());
        assertTrue(c.normTopkProb());
    }

    @Test
    void decoderSparseStepMakesOffStepLayersDense() {
        ModelConfig c = ModelConfig.parse("{\"num_hidden_layers\": 4, \"decoder_sparse_step\": 2}", "cfg.json");
        assertFalse(c.isMoeLayer(0));
        assertTrue(c.isMoeLayer(1));
        assertFalse(c.isMoeLayer(2));
        assertTrue(c.isMoeLayer(3));
        ModelConfig none = ModelConfig.parse("{\"num_hidden_layers\": 2, \"num_experts\": 0}", "cfg.json");
        assertFalse(none.isMoeLayer(1));
    }

    @Test
    void unsupportedOrInconsistentValuesNameTheField() {
        assertEquals("cfg.json: rope_scaling has rope type \"yarn\"; only the default RoPE is implemented",
                fail("{\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}}"));
        assertTrue(fail("{\"rope_parameters\": {\"rope_type\": \"dynamic\"}}").startsWith(
                "cfg.json: rope_parameters has rope type \"dynamic\""));
        assertEquals("cfg.json: layer_types[1] is \"sliding_attention\"; expected \"linear_attention\" or \"full_attention\"",
                fail("{\"num_hidden_layers\": 2, \"layer_types\": [\"linear_attention\", \"sliding_attention\"]}"));
        assertEquals("cfg.json: layer_types has 1 entries but num_hidden_layers is 2",
                fail("{\"num_hidden_layers\": 2, \"layer_types\": [\"linear_attention\"]}"));
        assertEquals("cfg.json: num_attention_heads (16) is not a multiple of num_key_value_heads (3)",
                fail("{\"num_key_value_heads\": 3}"));
        assertEquals("cfg.json: linear_num_value_heads (20) is not a multiple of linear_num_key_heads (16)",
                fail("{\"linear_num_value_heads\": 20}"));
        assertEquals("cfg.json: num_experts_per_tok (10) exceeds num_experts (4)", fail("{\"num_experts\": 4}"));
        assertEquals("cfg.json: mlp_only_layers contains 48, outside 0..47", fail("{\"mlp_only_layers\": [48]}"));
        assertEquals("cfg.json: hidden_size must be an integer, got \"2048\"", fail("{\"hidden_size\": \"2048\"}"));
        assertEquals("cfg.json: head_dim must be a positive integer, got 0", fail("{\"head_dim\": 0}"));
        assertEquals("cfg.json: decoder_sparse_step must be a positive integer, got 0",
                fail("{\"decoder_sparse_step\": 0}"));
        assertEquals("cfg.json: full_attention_interval must be a positive integer, got 0",
                fail("{\"full_attention_interval\": 0}"));
        assertEquals("cfg.json: model_type is \"llama\"; jnext runs \"qwen3_next\", \"qwen3_5\" / \"qwen3_5_text\" and "
                + "\"qwen3_5_moe\" / \"qwen3_5_moe_text\" (Qwen3.5, Qwen3.6)", fail("{\"model_type\": \"llama\"}"));
        assertEquals("cfg.json: hidden_act \"gelu\" is not supported (Qwen3-Next uses silu)",
                fail("{\"hidden_act\": \"gelu\"}"));
        assertEquals("cfg.json: attention_bias true is not supported (Qwen3-Next has no biases)",
                fail("{\"attention_bias\": true}"));
        assertEquals("cfg.json: dtype: unsupported dtype \"int8\" (expected float32, bfloat16 or float16)",
                fail("{\"dtype\": \"int8\"}"));
        assertTrue(fail("{\"partial_rotary_factor\": 0.001}").startsWith("cfg.json: partial_rotary_factor 0.001"));
        assertTrue(fail("{\"vocab_size\": 12,}").startsWith("cfg.json: not valid JSON"));
        assertTrue(fail("{\"vocab_size\": 1, \"vocab_size\": 2}").startsWith("cfg.json: not valid JSON"));
        assertEquals("cfg.json: expected a JSON object", fail("[1]"));
    }

    @Test
    void missingFileIsNamed(@TempDir Path dir) {
        String msg = assertThrows(JnextException.class, () -> ModelConfig.load(dir)).getMessage();
        assertTrue(msg.contains(dir.resolve("config.json") + ": no such file"), msg);
    }

    // ---- issue 12: sizes from config.json use exact arithmetic; counts allocate nothing before they are checked ----

    @Test
    void sizesThatWouldWrapAroundNameTheirFields() {
        assertEquals("cfg.json: num_attention_heads × head_dim × 2 = 68719478784 is too large (the q_proj rows must be "
                + "at most 2147483639)", fail("{\"num_attention_heads\": 134217732, \"num_key_value_heads\": 4}"));
        assertEquals("cfg.json: 2 × linear_num_key_heads × linear_key_head_dim + 2 × linear_num_value_heads × "
                + "linear_value_head_dim = 34359747072 is too large (the in_proj_qkvz rows must be at most 2147483639)",
                fail("{\"linear_key_head_dim\": 1073741840}"));
        assertTrue(fail("{\"num_attention_heads\": 268435456, \"num_key_value_heads\": 134217728}")
                .startsWith("cfg.json: num_attention_heads × head_dim × 2 = 137438953472 is too large"));
        assertTrue(fail("{\"linear_value_head_dim\": 65536, \"linear_key_head_dim\": 65536, \"linear_num_key_heads\": 1,"
                + " \"linear_num_value_heads\": 1}").startsWith("cfg.json: linear_num_value_heads × linear_key_head_dim × linear_value_head_dim = 4294967296 is too large"));
        assertEquals("cfg.json: head_dim is 2147483648, out of range (at most 2147483647)", fail("{\"head_dim\": 2147483648}"));
        assertEquals("cfg.json: max_position_embeddings must be a positive integer, got -1",
                fail("{\"max_position_embeddings\": -1}"));
    }

    @Test
    void aHugeLayerCountAllocatesNothing() {
        long start = System.nanoTime();
        ModelConfig c = ModelConfig.parse("{\"num_hidden_layers\": 2147483647, \"mlp_only_layers\": [2147483646]}", "cfg.json");
        assertTrue(System.nanoTime() - start < 2e9, "parsed in " + (System.nanoTime() - start) / 1e6 + " ms");
        assertEquals(LayerType.FULL_ATTENTION, c.layerType(2147483646 - 3));
        assertEquals(LayerType.LINEAR_ATTENTION, c.layerType(2147483646));
        assertFalse(c.isMoeLayer(2147483646));
    }

    @Test
    void textAfterTheObjectAndInvalidUtf8AreNamed(@TempDir Path dir) throws java.io.IOException {
        assertTrue(fail("{\"vocab_size\": 12} garbage").startsWith("cfg.json: not valid JSON: Unrecognized token 'garbage'"));
        assertTrue(fail("{\"vocab_size\": 12}{}").startsWith("cfg.json: not valid JSON: Trailing token"));
        Path file = dir.resolve("config.json");
        java.nio.file.Files.write(file, new byte[]{'{', '"', 'a', (byte) 0xff, '"', ':', '1', '}'});
        assertEquals(file + ": not valid UTF-8 (byte 0xFF at offset 3)",
                assertThrows(JnextException.class, () -> ModelConfig.load(dir)).getMessage());
    }
}
