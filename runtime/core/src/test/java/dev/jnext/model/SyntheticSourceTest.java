package dev.jnext.model;

import dev.jnext.JnextException;
import dev.jnext.cpu.CpuSession;
import dev.jnext.cpu.Qwen3NextModel;
import dev.jnext.model.weights.Checkpoint;
import dev.jnext.model.weights.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A synthetic model named where a folder goes is, tensor for tensor and byte for byte, the checkpoint {@code synth}
 * writes for the same preset and options (bf16 and the official FP8 layout), its configuration the one the loader reads
 * from that checkpoint's config.json, and the CPU reference gives bit for bit the same logits on both.
 */
class SyntheticSourceTest {

    @Test
    void theNameParsesWithSynthsDefaultsAndRefusesWhatItDoesNotKnow() {
        SyntheticSource d = SyntheticSource.parse(Path.of("synthetic:next-80b-a3b"));
        assertEquals(new SyntheticSource("next-80b-a3b", null, null, false, 0, 1f), d);
        assertEquals(new SyntheticSource("tiny", 2, 4, true, 7, 4.5f),
                SyntheticSource.parse(Path.of("synthetic:tiny,layers=2,experts=4,dtype=fp8,seed=7,logit-scale=4.5")));
        assertTrue(SyntheticSource.is(Path.of("synthetic:tiny")));
        assertFalse(SyntheticSource.is(Path.of("/models/synthetic:tiny")));
        for (String[] bad : new String[][] {
                {"synthetic:huge", "unknown preset"}, {"synthetic:tiny,layers=0", "bad value in \"layers=0\""},
                {"synthetic:tiny,dtype=int4", "bad value in \"dtype=int4\""}, {"synthetic:tiny,depth=3", "unknown part \"depth=3\""},
                {"synthetic:tiny,logit-scale=-1", "logit-scale must be positive"}}) {
            JnextException e = assertThrows(JnextException.class, () -> SyntheticSource.parse(Path.of(bad[0])));
            assertTrue(e.getMessage().contains(bad[1]), e.getMessage());
        }
        // the full 80B-A3B in the official FP8 layout: what the host must hold (80.4 GB), computed without generating it
        long fp8 = SyntheticSource.parse(Path.of("synthetic:next-80b-a3b,dtype=fp8")).bytes();
        assertTrue(fp8 > 80e9 && fp8 < 81e9, "80B-A3B FP8 bytes " + fp8);
    }

    @Test
    void itIsTheCheckpointSynthWritesTensorForTensor(@TempDir Path tmp) {
        for (boolean fp8 : new boolean[] {false, true}) {
            SyntheticSource src = new SyntheticSource("tiny", 2, 4, fp8, 3, 4f);
            Path dir = tmp.resolve(fp8 ? "fp8" : "bf16");
            SyntheticCheckpoint.write(dir, new SyntheticCheckpoint.Options(src.options().config(), DType.BF16, 3, 1L << 20,
                    SyntheticCheckpoint.ExpertLayout.HUB, 4f, SyntheticCheckpoint.ConfigStyle.V5), n -> { });
            Path name = Path.of("synthetic:tiny,layers=2,experts=4,seed=3,logit-scale=4" + (fp8 ? ",dtype=fp8" : ""));
            assertEquals(ModelConfig.load(dir), ModelConfig.load(name));
            try (Checkpoint written = Checkpoint.open(dir); Checkpoint generated = Checkpoint.open(name)) {
                assertEquals(written.tensors().keySet(), generated.tensors().keySet());
                for (Tensor t : written.tensors().values()) {
                    Tensor g = generated.find(t.name());
                    assertEquals(t.dtype(), g.dtype(), t.name());
                    assertArrayEquals(t.shape(), g.shape(), t.name());
                    assertEquals(-1, t.data().mismatch(g.data()), t.name());
                }
                assertEquals(name, generated.dir());
            }
            float[] a, b;
            try (Qwen3NextModel m = Qwen3NextModel.load(dir); CpuSession s = new CpuSession(m)) {
                a = s.extendAll(new int[] {1, 2, 3, 4});
            }
            try (Qwen3NextModel m = Qwen3NextModel.load(name); CpuSession s = new CpuSession(m)) {
                b = s.extendAll(new int[] {1, 2, 3, 4});
            }
            assertArrayEquals(a, b, fp8 ? "fp8" : "bf16");
        }
    }

    @Test
    void aModelLargerThanTheHostMemoryIsRefusedBeforeAnyAllocation() {
        Path name = Path.of("synthetic:next-80b-a3b");
        JnextException e = assertThrows(JnextException.class, () -> SyntheticSource.checkMemory(name, 159_000_000_000L, 135_000_000_000L));
        assertEquals("synthetic:next-80b-a3b: generating it needs 159.0 GB of host memory and this machine has 135.0 GB "
                + "available; choose fewer layers or experts, or dtype=fp8", e.getMessage());
        SyntheticSource.checkMemory(name, 80_400_000_000L, 135_000_000_000L);
        SyntheticSource.checkMemory(name, 80_400_000_000L, -1);
    }

    @Test
    void aFolderIsStillAFolder(@TempDir Path tmp) {
        JnextException e = assertThrows(JnextException.class, () -> Checkpoint.open(tmp));
        assertTrue(e.getMessage().contains("no model.safetensors"), e.getMessage());
    }
}
