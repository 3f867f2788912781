package dev.jnext.model;

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
        try (Qwen3NextModel m = Qwen3NextModel.load(dir)) {
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
        try (Qwen3NextModel m = Qwen3NextModel.load(mtp)) {
            assertNotNull(m.checkpoint().find("mtp.fc.weight"));
        }
    }

    @Test
    void lmHeadMayBeAbsentOnlyWhenTied() throws IOException {
        Path dir = variant("no-head", t -> t.remove("lm_head.weight"));
        assertEquals("D: missing tensor 'lm_head.weight' (expected shape [128, 32])", loadFails(dir));
        Files.writeString(dir.resolve("config.json"), configJson.replace("\"tie_word_embeddings\" : false",
                "\"tie_word_embeddings\" : true"));
        try (Qwen3NextModel m = Qwen3NextModel.load(dir)) {
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
        try (Qwen3NextModel m = Qwen3NextModel.load(dir)) {
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
}
