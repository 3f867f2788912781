package dev.jnext.cpu;

import dev.jnext.model.DType;
import dev.jnext.model.SyntheticCheckpoint;
import dev.jnext.model.TinyModels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Prefill, decode, continuation and batching of the CPU forward must all give the full-sequence logits. */
class CpuForwardConsistencyTest {
    static final double TOL = 2e-5;

    @TempDir
    static Path tmp;
    static Qwen3NextModel model;
    static int vocab;
    static int[] ids;
    static float[] full;

    @BeforeAll
    static void load() {
        model = Qwen3NextModel.load(TinyModels.write(tmp.resolve("tiny"), 7));
        vocab = model.config().vocabSize();
        ids = TinyModels.ids(150, vocab, 42);
        try (CpuSession s = new CpuSession(model)) {
            full = s.extendAll(ids);
        }
        for (float v : full) assertTrue(Float.isFinite(v));
        double max = 0;
        for (float v : full) max = Math.max(max, Math.abs(v));
        assertTrue(max > 0.1, "logits are not trivially small: " + max);
    }

    @AfterAll
    static void close() {
        model.close();
    }

    private static void assertRow(float[] got, int gotRow, int fullRow) {
        double err = TinyModels.maxRelError(got, gotRow * vocab, full, fullRow * vocab, vocab);
        assertTrue(err <= TOL, "row " + fullRow + ": relative error " + err);
    }

    @Test
    void prefillThenDecodeMatchesFullSequence() {
        try (CpuSession s = new CpuSession(model)) {
            float[] last = s.prefill(Arrays.copyOf(ids, 130));
            assertRow(last, 0, 129);
            for (int t = 130; t < 150; t++) assertRow(s.decode(ids[t]), 0, t);
            assertEquals(150, s.position());
        }
    }

    @Test
    void continuationsFromExistingStateMatchFullSequence() {
        try (CpuSession s = new CpuSession(model)) {
            int[][] pieces = {Arrays.copyOfRange(ids, 0, 2), Arrays.copyOfRange(ids, 2, 3),
                    Arrays.copyOfRange(ids, 3, 70), Arrays.copyOfRange(ids, 70, 140), Arrays.copyOfRange(ids, 140, 150)};
            int pos = 0;
            for (int[] p : pieces) {
                float[] got = s.extendAll(p);
                for (int t = 0; t < p.length; t++) assertRow(got, t, pos + t);
                pos += p.length;
            }
        }
    }

    @Test
    void batchedSequencesAreIndependent() {
        CpuForward fwd = new CpuForward(model);
        CpuState state = fwd.newState(3);
        int a = state.allocate();
        int b = state.allocate();
        int c = state.allocate();
        int[] other = TinyModels.ids(90, vocab, 99);
        float[] otherFull;
        try (CpuSession s = new CpuSession(model)) {
            otherFull = s.extendAll(other);
        }
        // step 1: three prefills of different lengths in one call
        List<float[]> r = fwd.forward(state, List.of(
                new CpuForward.SequenceInput(a, Arrays.copyOf(ids, 100)),
                new CpuForward.SequenceInput(b, Arrays.copyOf(other, 80)),
                new CpuForward.SequenceInput(c, Arrays.copyOf(ids, 5))), true);
        for (int t = 0; t < 100; t++) assertRow(r.get(0), t, t);
        for (int t = 0; t < 5; t++) assertRow(r.get(2), t, t);
        for (int t = 0; t < 80; t++) {
            assertTrue(TinyModels.maxRelError(r.get(1), t * vocab, otherFull, t * vocab, vocab) <= TOL);
        }
        // step 2: a decode, a 10-token continuation and another continuation, together
        r = fwd.forward(state, List.of(
                new CpuForward.SequenceInput(a, new int[]{ids[100]}),
                new CpuForward.SequenceInput(b, Arrays.copyOfRange(other, 80, 90)),
                new CpuForward.SequenceInput(c, Arrays.copyOfRange(ids, 5, 69))), false);
        assertRow(r.get(0), 0, 100);
        assertTrue(TinyModels.maxRelError(r.get(1), 0, otherFull, 89 * vocab, vocab) <= TOL);
        assertRow(r.get(2), 0, 68);
    }

    @Test
    void hubAndFusedExpertLayoutsGiveIdenticalLogits() {
        Path fused = TinyModels.write(tmp.resolve("fused"), TinyModels.config(true, DType.F32), 7,
                SyntheticCheckpoint.ExpertLayout.FUSED, 1 << 20);
        try (Qwen3NextModel m = Qwen3NextModel.load(fused); CpuSession s = new CpuSession(m)) {
            float[] got = s.extendAll(Arrays.copyOf(ids, 70));
            assertEquals(0.0, TinyModels.maxRelError(got, 0, full, 0, 70 * vocab));
        }
    }
}
