package dev.jnext.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jnext.JnextException;
import dev.jnext.model.weights.ModelWeights;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** config.json's quantization_config: the official FP8 form is read, every other quantization refused in one line. */
class Fp8QuantizationTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String SUPPORTED = "; jnext loads unquantized checkpoints (F32, BF16, F16) and fine-grained FP8 "
            + "(quant_method \"fp8\", fmt \"e4m3\", activation_scheme \"dynamic\", weight_block_size [128, 128])";

    /** The 80B config with the quantization_config of Qwen3-Next-80B-A3B-Instruct-FP8 (its list as the model card's). */
    static String official() throws Exception {
        ObjectNode root = (ObjectNode) JSON.readTree(ModelConfigTest.LEGACY_80B);
        ObjectNode q = root.putObject("quantization_config");
        q.put("activation_scheme", "dynamic");
        ArrayNode list = q.putArray("modules_to_not_convert");
        list.add("lm_head").add("model.embed_tokens");
        for (int i = 0; i < 48; i++) {
            String p = "model.layers." + i + ".";
            list.add(p + "input_layernorm").add(p + "post_attention_layernorm").add(p + "mlp.gate").add(p + "mlp.shared_expert_gate");
            if (i % 4 != 3) {
                for (String m : List.of("A_log", "conv1d", "dt_bias", "in_proj_ba", "norm")) list.add(p + "linear_attn." + m);
            } else {
                list.add(p + "self_attn.k_norm").add(p + "self_attn.q_norm");
            }
        }
        for (String m : List.of("mtp.fc", "mtp.norm", "mtp.layers.0.mlp.gate", "mtp.layers.0.mlp.shared_expert_gate")) list.add(m);
        q.put("fmt", "e4m3");
        q.put("quant_method", "fp8");
        q.putArray("weight_block_size").add(128).add(128);
        return JSON.writeValueAsString(root);
    }

    /** The official config with quantization_config replaced by {@code q} (JSON text). */
    static String withQuantization(String q) throws Exception {
        ObjectNode root = (ObjectNode) JSON.readTree(ModelConfigTest.LEGACY_80B);
        root.set("quantization_config", JSON.readTree(q));
        return JSON.writeValueAsString(root);
    }

    static String fail(String json) {
        return assertThrows(JnextException.class, () -> ModelConfig.parse(json, "cfg.json")).getMessage();
    }

    static String failQ(String q) throws Exception {
        return fail(withQuantization(q));
    }

    @Test
    void theOfficialFp8ConfigIsReadWithItsList() throws Exception {
        ModelConfig c = ModelConfig.parse(official(), "cfg.json");
        Fp8Quantization q = c.quantization();
        assertNotNull(q);
        assertEquals(2 + 48 * 4 + 36 * 5 + 12 * 2 + 4, q.modulesToNotConvert().size());
        assertEquals(ModelConfig.parse(ModelConfigTest.LEGACY_80B, "x"), c.withQuantization(null), "the geometry is unchanged");
        for (String kept : List.of("lm_head", "model.embed_tokens", "model.layers.0.linear_attn.in_proj_ba", "model.layers.47.mlp.gate",
                "model.layers.13.mlp.shared_expert_gate", "model.layers.3.self_attn.q_norm", "model.layers.2.linear_attn.conv1d")) {
            assertFalse(q.converts(kept), kept);
        }
        for (String fp8 : List.of("model.layers.0.linear_attn.in_proj_qkvz", "model.layers.0.linear_attn.out_proj",
                "model.layers.3.self_attn.q_proj", "model.layers.3.self_attn.o_proj", "model.layers.1.mlp.experts.511.down_proj",
                "model.layers.10.mlp.experts.0.gate_proj", "model.layers.1.mlp.shared_expert.gate_proj", "model.layers.1.mlp.experts.gate_up_proj")) {
            assertTrue(q.converts(fp8), fp8);
        }
        // round trip through toJson (the list is kept; the implicit lm_head is not added)
        assertEquals(c, ModelConfig.parse(c.toJson(), "again"));
        assertEquals(q, Fp8Quantization.of(q.modulesToNotConvert()));
        assertNull(ModelConfig.parse(ModelConfigTest.LEGACY_80B, "x").quantization());
    }

    @Test
    void theGeneratedListIsTheOfficialOneForThe80bGeometry() throws Exception {
        ModelConfig c = ModelConfig.parse(official(), "cfg.json");
        List<String> official = new ArrayList<>(c.quantization().modulesToNotConvert());
        official.removeIf(m -> m.startsWith("mtp."));
        List<String> generated = Fp8Quantization.qwen3Next(c.withQuantization(null)).modulesToNotConvert();
        assertEquals(new java.util.TreeSet<>(official), new java.util.TreeSet<>(generated));
    }

    @Test
    void entriesMatchAsTransformersShouldConvertModuleDoes() {
        Fp8Quantization q = Fp8Quantization.of(List.of("model.layers.1.mlp.gate", "re_only_.*\\.conv", "model\\.layers\\.[0-9]+\\.self_attn",
                "shared_expert_gate"));
        assertFalse(q.converts("model.layers.1.mlp.gate"), "exact");
        assertTrue(q.converts("model.layers.10.mlp.gate"), "layers.1 does not reach layers.10");
        assertTrue(q.converts("model.layers.11.mlp.gate"));
        assertFalse(q.converts("model.layers.1.mlp.gate_proj"), "a regex prefix, as re.match: mlp.gate reaches mlp.gate_proj");
        assertTrue(q.converts("model.layers.1.mlp.shared_expert.gate_proj"));
        assertFalse(q.converts("model.layers.7.self_attn.q_proj"), "a regex entry");
        assertFalse(q.converts("model.layers.7.mlp.shared_expert_gate"), "endswith");
        assertTrue(q.converts("model.layers.7.mlp.shared_expert.up_proj"));
        assertFalse(q.converts("lm_head"), "lm_head is always kept");
        assertEquals("lm_head", q.keptBy("lm_head").orElseThrow());
        assertEquals("model.layers.1.mlp.gate", q.keptBy("model.layers.1.mlp.gate").orElseThrow());
        assertTrue(Fp8Quantization.of(List.of()).converts("model.layers.0.mlp.gate"), "an empty list converts every linear");
        // a dot in a plain entry is a regex dot, as in transformers
        assertFalse(Fp8Quantization.of(List.of("model.layers.1.mlp")).converts("model_layers_1_mlp_x"));
    }

    @Test
    void ignoredLayersIsReadWhenModulesToNotConvertIsAbsent() throws Exception {
        Fp8Quantization q = ModelConfig.parse(withQuantization("""
                {"quant_method": "fp8", "weight_block_size": [128, 128], "ignored_layers": ["model.layers.0.mlp.gate"]}"""), "c").quantization();
        assertFalse(q.converts("model.layers.0.mlp.gate"));
        q = ModelConfig.parse(withQuantization("""
                {"quant_method": "fp8", "modules_to_not_convert": ["a"], "ignored_layers": ["model.layers.0.mlp.gate"]}"""), "c").quantization();
        assertEquals(List.of("a"), q.modulesToNotConvert(), "transformers prefers modules_to_not_convert");
        assertTrue(q.converts("model.layers.0.mlp.gate"));
        q = ModelConfig.parse(withQuantization("{\"quant_method\": \"fp8\"}"), "c").quantization();
        assertEquals(List.of(), q.modulesToNotConvert(), "weight_block_size absent: transformers' default [128, 128]; no list");
        q = ModelConfig.parse(withQuantization("""
                {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic", "scale_fmt": "float", "weight_format": "fp8",
                 "modules_to_convert": [], "dequantize": false, "modules_to_not_convert": null}"""), "c").quantization();
        assertNotNull(q);
    }

    @Test
    void everyOtherQuantizationIsRefusedInOneLineNamingTheField() throws Exception {
        assertEquals("cfg.json: quantization_config.quant_method is \"gptq\"" + SUPPORTED,
                failQ("{\"quant_method\": \"gptq\", \"bits\": 4, \"group_size\": 128}"));
        assertEquals("cfg.json: quantization_config.quant_method is \"awq\"" + SUPPORTED,
                failQ("{\"quant_method\": \"awq\", \"bits\": 4}"));
        assertEquals("cfg.json: quantization_config.quant_method is \"compressed-tensors\"" + SUPPORTED,
                failQ("{\"quant_method\": \"compressed-tensors\", \"config_groups\": {}}"));
        assertEquals("cfg.json: quantization_config.quant_method is \"bitsandbytes\"" + SUPPORTED,
                failQ("{\"quant_method\": \"bitsandbytes\", \"load_in_4bit\": true}"));
        assertEquals("cfg.json: quantization_config.quant_method is \"fbgemm_fp8\"" + SUPPORTED,
                failQ("{\"quant_method\": \"fbgemm_fp8\"}"));
        assertEquals("cfg.json: quantization_config has no quant_method (keys: load_in_8bit)" + SUPPORTED,
                failQ("{\"load_in_8bit\": true}"));
        assertEquals("cfg.json: quantization_config.fmt is \"e5m2\"" + SUPPORTED,
                failQ("{\"quant_method\": \"fp8\", \"fmt\": \"e5m2\", \"weight_block_size\": [128, 128]}"));
        assertEquals("cfg.json: quantization_config.activation_scheme is \"static\"" + SUPPORTED,
                failQ("{\"quant_method\": \"fp8\", \"activation_scheme\": \"static\"}"));
        assertEquals("cfg.json: quantization_config.weight_block_size is null (per-tensor FP8)" + SUPPORTED,
                failQ("{\"quant_method\": \"fp8\", \"weight_block_size\": null}"));
        assertEquals("cfg.json: quantization_config.weight_block_size is [64,64]" + SUPPORTED,
                failQ("{\"quant_method\": \"fp8\", \"weight_block_size\": [64, 64]}"));
        assertEquals("cfg.json: quantization_config.weight_block_size is [1,128]" + SUPPORTED,
                failQ("{\"quant_method\": \"fp8\", \"weight_block_size\": [1, 128]}"));
        assertEquals("cfg.json: quantization_config.weight_block_size is [128]" + SUPPORTED,
                failQ("{\"quant_method\": \"fp8\", \"weight_block_size\": [128]}"));
        assertEquals("cfg.json: quantization_config.scale_fmt is \"ue8m0\"" + SUPPORTED,
                failQ("{\"quant_method\": \"fp8\", \"scale_fmt\": \"ue8m0\"}"));
        assertEquals("cfg.json: quantization_config.weight_format is \"mxfp4\"" + SUPPORTED,
                failQ("{\"quant_method\": \"fp8\", \"weight_format\": \"mxfp4\"}"));
        assertEquals("cfg.json: quantization_config.modules_to_convert is [\"model.embed_tokens\"] (FP8 embeddings are not supported)"
                + SUPPORTED, failQ("{\"quant_method\": \"fp8\", \"modules_to_convert\": [\"model.embed_tokens\"]}"));
        assertEquals("cfg.json: quantization_config must be an object, got \"fp8\"" + SUPPORTED, failQ("\"fp8\""));
        assertEquals("cfg.json: quantization_config.modules_to_not_convert must be a list of module names, got \"lm_head\"",
                failQ("{\"quant_method\": \"fp8\", \"modules_to_not_convert\": \"lm_head\"}"));
        assertEquals("cfg.json: quantization_config.ignored_layers[1] must be a module name, got 3",
                failQ("{\"quant_method\": \"fp8\", \"ignored_layers\": [\"lm_head\", 3]}"));
        assertTrue(failQ("{\"quant_method\": \"fp8\", \"modules_to_not_convert\": [\"lm_head\", \"model.layers.(\"]}")
                .startsWith("cfg.json: quantization_config.modules_to_not_convert[1] \"model.layers.(\" is not a valid regular expression"));
        String compression = fail(ModelConfigTest.LEGACY_80B.replace("\"bos_token_id\"", "\"compression_config\": {\"format\": \"int-quantized\"}, \"bos_token_id\""));
        assertEquals("cfg.json: compression_config (compressed-tensors) is not supported" + SUPPORTED, compression);
        for (String m : new String[]{"gptq", "fp8\", \"weight_block_size\": null, \"x\": \"", "awq"}) {
            assertEquals(1, failQ("{\"quant_method\": \"" + m + "\"}").lines().count(), "one line");
        }
    }

    @Test
    void aRefusedQuantizationStopsTheLoadBeforeAnyWeightIsOpened(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("config.json"), withQuantization("{\"quant_method\": \"gptq\", \"bits\": 4}"));
        // no safetensors at all: the refusal is the quantization's, not "no model.safetensors"
        String msg = assertThrows(JnextException.class, () -> ModelWeights.load(dir)).getMessage();
        assertEquals(dir.resolve("config.json") + ": quantization_config.quant_method is \"gptq\"" + SUPPORTED, msg);
    }
}
