package dev.jnext.engine;

import dev.jnext.JnextException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GenerationConfigTest {

    @Test
    void readsEosIdsAndSamplingDefaultsAsQwenShipsThem(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("generation_config.json"), """
                {"bos_token_id": 151643, "do_sample": true, "eos_token_id": [151645, 151643],
                 "pad_token_id": 151643, "temperature": 0.7, "top_k": 20, "top_p": 0.8, "transformers_version": "4.57.0"}""");
        GenerationConfig g = GenerationConfig.read(dir);
        assertEquals(List.of(151645, 151643), g.eosTokenIds());
        assertEquals(Optional.of(0.7f), g.temperature());
        assertEquals(Optional.of(20), g.topK());
        assertEquals(Optional.of(0.8f), g.topP());
        assertEquals(Optional.empty(), g.minP());
        assertEquals(Optional.of(true), g.doSample());
    }

    @Test
    void aSingleEosIdAndAMissingFileAreFine(@TempDir Path dir) throws Exception {
        assertTrue(GenerationConfig.read(dir).eosTokenIds().isEmpty());
        Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\": 2}");
        assertEquals(List.of(2), GenerationConfig.read(dir).eosTokenIds());
    }

    @Test
    void wrongTypesAreNamed(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("generation_config.json"), "{\"eos_token_id\": \"</s>\"}");
        var e = assertThrows(JnextException.class, () -> GenerationConfig.read(dir));
        assertTrue(e.getMessage().contains("eos_token_id"), e.getMessage());
        Files.writeString(dir.resolve("generation_config.json"), "{\"temperature\": \"hot\"}");
        e = assertThrows(JnextException.class, () -> GenerationConfig.read(dir));
        assertTrue(e.getMessage().contains("temperature must be a number"), e.getMessage());
        Files.writeString(dir.resolve("generation_config.json"), "{oops");
        e = assertThrows(JnextException.class, () -> GenerationConfig.read(dir));
        assertTrue(e.getMessage().contains("generation_config.json"), e.getMessage());
    }
}
