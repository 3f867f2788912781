package dev.jnext.model;

import dev.jnext.cpu.Qwen3NextModel;

import dev.jnext.model.weights.ModelWeights;
import dev.jnext.model.weights.Checkpoint;
import dev.jnext.model.weights.Tensor;
import dev.jnext.JnextException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Loading whole checkpoints: names, shapes, layouts, shards; failures name the tensor and unmap everything. */
class CheckpointLoadTest {

    record Raw(String dtype, int[] shape, byte[] bytes) {}

    @TempDir
    static Path tmp;
    static Map<String, Raw> base;
    static String configJson;

    @BeforeAll
    static void readBase() {
        Path dir = TinyModels.write(tmp.resolve("base"), TinyModels.config(true, DType.F32), 3,
                SyntheticCheckpoint.ExpertLayout.HUB, Long.MAX_VALUE);
        base = new LinkedHashMap<>();
        try (Checkpoint c = Checkpoint.open(dir)) {
            for (Tensor t : c.tensors().values()) {
                base.put(t.name(), new Raw(t.dtype().name(), t.shape(), t.data().toArray(ValueLayout.JAVA_BYTE)));
            }
        }
        configJson = TinyModels.config(true, DType.F32).toJson();
    }

    static void writeFile(Path file, Map<String, Raw> tensors) throws IOException {
        StringBuilder h = new StringBuilder("{");
        long off = 0;
        for (Map.Entry<String, Raw> e : tensors.entrySet()) {
            if (h.length() > 1) h.append(',');
            StringBuilder shape = new StringBuilder();
            for (int d : e.getValue().shape()) shape.append(shape.isEmpty() ? "" : ",").append(d);
            h.append('"').append(e.getKey()).append("\":{\"dtype\":\"").append(e.getValue().dtype())
                    .append("\",\"shape\":[").append(shape).append("],\"data_offsets\":[").append(off).append(',')
                    .append(off + e.getValue().bytes().length).append("]}");
            off += e.getValue().bytes().length;
        }
        byte[] header = h.append('}').toString().getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate((int) (8 + header.length + off)).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(header.length).put(header);
        for (Raw r : tensors.values()) b.put(r.bytes());
        Files.write(file, b.array());
    }

    /** A single-file checkpoint of the base tensors after {@code edit}. */
    static Path variant(String name, Consumer<Map<String, Raw>> edit) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve(name));
        Map<String, Raw> t = new LinkedHashMap<>(base);
        edit.accept(t);
        writeFile(dir.resolve("model.safetensors"), t);
        Files.writeString(dir.resolve("config.json"), configJson);
        return dir;
    }

    static String loadFails(Path dir) {
        String msg = assertThrows(JnextException.class, () -> Qwen3NextModel.load(dir)).getMessage();
        assertNothingMapped(dir);
        return msg.replace(dir.toString(), "D");
    }

    /** No file under dir is still memory-mapped by this process (Linux). */
    static void assertNothingMapped(Path dir) {
        try {
            String maps = Files.readString(Path.of("/proc/self/maps"));
            assertFalse(maps.contains(dir.toString()), "a file of " + dir + " is still mapped");
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void validCheckpointLoadsAndClosingUnmaps() throws IOException {
        Path dir = variant("valid", t -> { });
        try (ModelWeights m = ModelWeights.load(dir)) {
            assertEquals(5, m.layers().size());
            assertTrue(Files.readString(Path.of("/proc/self/maps")).contains(dir.toString()));
        }
        assertNothingMapped(dir);
    }

    @Test
    void missingTensorIsNamedWithItsExpectedShape() throws IOException {
        Path dir = variant("missing", t -> t.remove("model.layers.3.self_attn.k_proj.weight"));
        assertEquals("D: missing tensor 'model.layers.3.self_attn.k_proj.weight' (expected shape [32, 32])",
                loadFails(dir));
        Path expert = variant("missing-expert", t -> t.remove("model.layers.0.mlp.experts.5.down_proj.weight"));
        assertEquals("D: missing tensor 'model.layers.0.mlp.experts.5.down_proj.weight' (expected shape [32, 16])",
                loadFails(expert));
    }

    @Test
    void misshapedTensorNamesFoundAndExpectedShape() throws IOException {
        Path dir = variant("misshaped", t -> {
            Raw r = t.get("model.layers.0.linear_attn.in_proj_ba.weight");
            t.put("model.layers.0.linear_attn.in_proj_ba.weight", new Raw("F32", new int[]{4, 64}, r.bytes()));
        });
        assertEquals("D: tensor 'model.layers.0.linear_attn.in_proj_ba.weight' has shape [4, 64], expected [8, 32]",
                loadFails(dir));
    }

    @Test
    void unexpectedTensorsFailButMtpIsIgnored() throws IOException {
        Path extra = variant("extra", t -> t.put("model.layers.3.self_attn.q_proj.bias", new Raw("F32", new int[]{1},
                new byte[4])));
        assertEquals("D: unexpected tensor ['model.layers.3.self_attn.q_proj.bias'] (not part of a Qwen3-Next model "
                + "with this config.json)", loadFails(extra));
        Path mtp = variant("mtp", t -> t.put("mtp.fc.weight", new Raw("BF16", new int[]{2, 2}, new byte[8])));
        try (ModelWeights m = ModelWeights.load(mtp)) {
            assertNotNull(m.checkpoint().find("mtp.fc.weight"));
        }
    }

    @Test
    void lmHeadMayBeAbsentOnlyWhenTied() throws IOException {
        Path dir = variant("no-head", t -> t.remove("lm_head.weight"));
        assertEquals("D: missing tensor 'lm_head.weight' (expected shape [128, 32])", loadFails(dir));
        Files.writeString(dir.resolve("config.json"), configJson.replace("\"tie_word_embeddings\" : false",
                "\"tie_word_embeddings\" : true"));
        try (ModelWeights m = ModelWeights.load(dir)) {
            assertEquals(m.embedTokens().data(), m.lmHead().data());
        }
    }

    @Test
    void mixedExpertLayoutsAreRejected() throws IOException {
        Path dir = variant("both-layouts", t -> {
            t.put("model.layers.0.mlp.experts.gate_up_proj", new Raw("F32", new int[]{6, 32, 32}, new byte[6 * 32 * 32 * 4]));
            t.put("model.layers.0.mlp.experts.down_proj", new Raw("F32", new int[]{6, 32, 16}, new byte[6 * 32 * 16 * 4]));
        });
        assertTrue(loadFails(dir).contains("has experts in both the fused (model.layers.0.mlp.experts.gate_up_proj)"));
        Path bad = variant("bad-fused", t -> {
            for (int e = 0; e < 6; e++) {
                for (String k : new String[]{"gate_proj", "up_proj", "down_proj"}) {
                    t.remove("model.layers.1.mlp.experts." + e + "." + k + ".weight");
                }
            }
            t.put("model.layers.1.mlp.experts.gate_up_proj", new Raw("F32", new int[]{6, 16, 32}, new byte[6 * 16 * 32 * 4]));
        });
        assertEquals("D: tensor 'model.layers.1.mlp.experts.gate_up_proj' has shape [6, 16, 32], expected [6, 32, 32]",
                loadFails(bad));
    }

    @Test
    void shardedCheckpointsAreCheckedAgainstTheIndex() throws IOException {
        Path dir = TinyModels.write(tmp.resolve("sharded"), TinyModels.config(true, DType.BF16), 3,
                SyntheticCheckpoint.ExpertLayout.HUB, 20_000);
        long shards;
        try (var s = Files.list(dir)) {
            shards = s.filter(p -> p.toString().endsWith(".safetensors")).count();
        }
        assertTrue(shards > 3, "several shards: " + shards);
        try (ModelWeights m = ModelWeights.load(dir)) {
            assertEquals(DType.BF16, m.lmHead().dtype());
        }
        Path index = dir.resolve(Checkpoint.INDEX_FILE);
        String original = Files.readString(index);
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        var tree = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(original);
        var weightMap = (com.fasterxml.jackson.databind.node.ObjectNode) tree.get("weight_map");
        String firstShard = weightMap.get("model.embed_tokens.weight").asText();
        assertFalse(firstShard.equals(weightMap.get("model.norm.weight").asText()));
        weightMap.put("model.norm.weight", "gone.safetensors");
        Files.writeString(index, json.writeValueAsString(tree));
        assertEquals("D/model.safetensors.index.json: shard \"gone.safetensors\" does not exist in D", loadFails(dir));
        weightMap.put("model.norm.weight", firstShard);
        Files.writeString(index, json.writeValueAsString(tree));
        String wrongShard = loadFails(dir);
        assertTrue(wrongShard.startsWith("D/model.safetensors.index.json: weight_map puts 'model.norm.weight' in "
                + firstShard + " but it is in model-"), wrongShard);
        Files.writeString(index, "{\"weight_map\": {}}");
        assertEquals("D/model.safetensors.index.json: weight_map is empty", loadFails(dir));
        Files.writeString(index, original);
        // a later shard that is corrupt: the earlier shards, already mapped, are released
        Path last;
        try (var s = Files.list(dir)) {
            last = s.filter(p -> p.toString().endsWith(".safetensors")).sorted().toList().getLast();
        }
        Files.write(last, new byte[]{1, 2, 3});
        assertTrue(loadFails(dir).endsWith("not a safetensors file (3 bytes, shorter than the 8-byte header length)"));
    }

    @Test
    void aTensorInTwoShardsIsRejected() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("dup"));
        writeFile(dir.resolve("a.safetensors"), base);
        writeFile(dir.resolve("b.safetensors"), Map.of("model.norm.weight", base.get("model.norm.weight")));
        StringBuilder idx = new StringBuilder("{\"weight_map\": {");
        for (String name : base.keySet()) {
            idx.append('"').append(name).append("\": \"").append(name.equals("model.norm.weight") ? "b" : "a")
                    .append(".safetensors\", ");
        }
        Files.writeString(dir.resolve(Checkpoint.INDEX_FILE), idx.substring(0, idx.length() - 2) + "}}");
        Files.writeString(dir.resolve("config.json"), configJson);
        assertEquals("D: tensor 'model.norm.weight' appears in both a.safetensors and b.safetensors", loadFails(dir));
    }

    @Test
    void directoryWithoutWeights() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("empty"));
        Files.writeString(dir.resolve("config.json"), configJson);
        assertEquals("D: no model.safetensors or model.safetensors.index.json (expected a Hugging Face safetensors "
                + "checkpoint)", loadFails(dir));
    }

    // ---- issue 12 ----

    /** The base checkpoint with config.json fields replaced (null removes one). */
    static Path withConfig(String name, Map<String, Object> fields) throws IOException {
        Path dir = variant(name, t -> { });
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        var tree = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(configJson);
        fields.forEach((k, v) -> {
            if (v == null) tree.remove(k);
            else tree.set(k, json.valueToTree(v));
        });
        Files.writeString(dir.resolve("config.json"), json.writeValueAsString(tree));
        return dir;
    }

    @Test
    void configSizesThatWrapAroundFailTheLoadInsteadOfTheForwardPass() throws IOException {
        // (4 + 2^27) heads × head_dim 16 × 2 wraps to the 128 q_proj rows the checkpoint holds
        assertEquals("D/config.json: num_attention_heads × head_dim × 2 = 4294967424 is too large (the q_proj rows must "
                + "be at most 2147483639)", loadFails(withConfig("heads-wrap", Map.of("num_attention_heads", 134217732))));
        assertTrue(loadFails(withConfig("key-dim-wrap", Map.of("linear_key_head_dim", 1073741840)))
                .startsWith("D/config.json: 2 × linear_num_key_heads × linear_key_head_dim + 2 × linear_num_value_heads"));
    }

    @Test
    void aLayerCountBeyondTheCheckpointFailsBeforeAnythingIsBuiltForIt() throws IOException {
        Map<String, Object> fields = new LinkedHashMap<>();
        fields.put("num_hidden_layers", Integer.MAX_VALUE);
        fields.put("layer_types", null);
        Path dir = withConfig("many-layers", fields);
        long start = System.nanoTime();
        assertEquals("D/config.json: num_hidden_layers is 2147483647 but the checkpoint holds tensors for 5 layers",
                loadFails(dir));
        assertTrue(System.nanoTime() - start < 5e9, "rejected after " + (System.nanoTime() - start) / 1e6 + " ms");
    }

    @Test
    void ignoredMtpTensorsGetTheSameHeaderChecks() throws IOException {
        Path dir = variant("mtp-wrap", t -> t.put("mtp.fc.weight", new Raw("F32", new int[]{1 << 30, 1 << 30, 4}, new byte[0])));
        String msg = loadFails(dir);
        assertTrue(msg.endsWith("tensor 'mtp.fc.weight': data_offsets [" + dataBytes() + ", " + dataBytes() + "] hold 0 bytes "
                + "but shape [1073741824,1073741824,4] of F32 needs 18446744073709551616"), msg);
    }

    static long dataBytes() {
        return base.values().stream().mapToLong(r -> r.bytes().length).sum();
    }

    @Test
    void theIndexMustListEveryTensorOfItsShardsAndBeOneJsonValue() throws IOException {
        Path dir = TinyModels.write(tmp.resolve("index-issue12"), TinyModels.config(true, DType.BF16), 3,
                SyntheticCheckpoint.ExpertLayout.HUB, 20_000);
        Path index = dir.resolve(Checkpoint.INDEX_FILE);
        String original = Files.readString(index);
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        var tree = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(original);
        String shard = ((com.fasterxml.jackson.databind.node.ObjectNode) tree.get("weight_map")).remove("model.norm.weight").asText();
        Files.writeString(index, json.writeValueAsString(tree));
        assertEquals("D/model.safetensors.index.json: weight_map does not list tensor 'model.norm.weight' of shard " + shard
                + " (an index must account for every tensor of its shards)", loadFails(dir));
        Files.writeString(index, original + "garbage");
        assertEquals("D/model.safetensors.index.json: not valid JSON: Unrecognized token 'garbage': was expecting (JSON "
                + "String, Number, Array, Object or token 'null', 'true' or 'false') (line " + (original.split("\n").length)
                + ", column " + (original.length() - original.lastIndexOf('\n') + 7) + ")", loadFails(dir));
        Files.writeString(index, original.substring(0, original.indexOf("\",\n", 200) + 1));
        String truncated = loadFails(dir);
        assertTrue(truncated.startsWith("D/model.safetensors.index.json: not valid JSON: Unexpected end-of-input: expected "
                + "close marker for Object (start marker at line 5, column 18)") && !truncated.contains("Source"), truncated);
    }

    @Test
    void invalidUtf8InConfigJsonIsOneLineNamingTheFile() throws IOException {
        Path dir = variant("utf8", t -> { });
        byte[] config = configJson.getBytes(StandardCharsets.UTF_8);
        config[configJson.indexOf("silu") + 1] = (byte) 0xc3; // a lead byte followed by an ASCII letter
        Files.write(dir.resolve("config.json"), config);
        assertEquals("D/config.json: not valid UTF-8 (byte 0xC3 at offset " + (configJson.indexOf("silu") + 1) + ")",
                loadFails(dir));
    }
}
