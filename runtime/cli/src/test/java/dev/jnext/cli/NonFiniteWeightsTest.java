package dev.jnext.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jnext.JnextException;
import dev.jnext.cpu.CpuBackend;
import dev.jnext.backend.ModelBackend;
import dev.jnext.backend.SamplingParams;
import dev.jnext.model.DType;
import dev.jnext.cpu.Qwen3NextModel;
import dev.jnext.model.SyntheticCheckpoint;
import dev.jnext.model.TinyModels;
import dev.jnext.model.weights.Checkpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 19: {@code score} on a checkpoint with NaN/Inf weights printed NaN and exited 0. Non-finite logits are refused
 * (score: one line naming the tensor, exit 2; the CPU backend: the step fails naming it) before anything is printed or
 * sampled.
 */
class NonFiniteWeightsTest {

    /** A tiny f32 checkpoint with {@code value} written into element {@code element} of {@code tensor}. */
    static Path poisoned(Path dir, String tensor, long element, float value) throws IOException {
        TinyModels.write(dir, TinyModels.config(true, DType.F32), 3, SyntheticCheckpoint.ExpertLayout.HUB, 1L << 30);
        List<Path> files;
        try (Stream<Path> s = Files.list(dir)) {
            files = s.filter(p -> p.toString().endsWith(".safetensors")).toList();
        }
        for (Path file : files) {
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
                ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
                ch.read(len, 0);
                int headerLen = (int) len.getLong(0);
                ByteBuffer header = ByteBuffer.allocate(headerLen);
                ch.read(header, 8);
                JsonNode t = new ObjectMapper().readTree(header.array()).path(tensor);
                if (t.isMissingNode()) continue;
                assertEquals("F32", t.path("dtype").asText());
                long at = 8 + headerLen + t.path("data_offsets").get(0).asLong() + 4 * element;
                ch.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(0, value), at);
                return dir;
            }
        }
        throw new AssertionError("no tensor " + tensor + " in " + dir);
    }

    @Test
    void theFirstNonFiniteWeightIsFoundByName(@TempDir Path tmp) throws Exception {
        assertEquals(Optional.empty(), Checkpoint.firstNonFinite(TinyModels.write(tmp.resolve("ok"), 3)));
        Path bad = poisoned(tmp.resolve("bad"), "model.norm.weight", 5, Float.NEGATIVE_INFINITY);
        assertEquals(Optional.of("tensor 'model.norm.weight' [32] holds -Inf at element 5"), Checkpoint.firstNonFinite(bad));
    }

    @Test
    void scoreRefusesNanLogitsNamingTheTensorAndExitsNonZero(@TempDir Path tmp) throws Exception {
        for (float poison : new float[] {Float.NaN, Float.POSITIVE_INFINITY}) {
            Path model = poisoned(tmp.resolve("m" + Float.floatToRawIntBits(poison)), "model.norm.weight", 3, poison);
            CliRun r = CliRun.run("", "score", "--model", model.toString(), "--ids", "1,2,3", "--device", "cpu");
            assertEquals(Main.EXIT_USER_ERROR, r.exitCode(), r.err());
            assertFalse(r.out().contains("NaN") || r.out().contains("Infinity"), "printed: " + r.out());
            assertTrue(r.err().contains("logit at position 0") && r.err().contains("tensor 'model.norm.weight' [32] holds "
                    + (Float.isNaN(poison) ? "NaN" : "+Inf") + " at element 3: the checkpoint is corrupt"), r.err());
            assertEquals(1, r.err().strip().lines().filter(l -> l.startsWith("jnext: ") && l.contains("logit")).count(), r.err());
        }
    }

    @Test
    void theCpuBackendFailsTheStepInsteadOfSamplingFromNan(@TempDir Path tmp) throws Exception {
        Path model = poisoned(tmp, "model.norm.weight", 0, Float.NaN);
        try (CpuBackend backend = new CpuBackend(Qwen3NextModel.load(model), 1, 64, Long.MAX_VALUE)) {
            int slot = backend.openSequence(new SamplingParams(1f, 0, 1f, 0f, 1f, 0f, 1), 128);
            var e = assertThrows(JnextException.class,
                    () -> backend.step(List.of(new ModelBackend.StepInput(slot, new int[] {1, 2}, true, 0))));
            assertTrue(e.getMessage().startsWith("the model produced a NaN logit (token id 0); tensor 'model.norm.weight' [32] "
                    + "holds NaN at element 0"), e.getMessage());
        }
    }
}
