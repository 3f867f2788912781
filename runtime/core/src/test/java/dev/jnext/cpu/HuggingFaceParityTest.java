package dev.jnext.cpu;

import dev.jnext.model.Npy;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CPU forward against Hugging Face transformers 5.17 fp32 logits (eager attention, CPU) on the committed tiny
 * checkpoints of src/test/resources/qwen3next-fixtures (written by src/reference/qwen3_next_fixtures.py):
 * max |Δlogit| ≤ 1e-4 · max |ref| for the full sequence, prefill + decode, continuation and a batch of two.
 */
class HuggingFaceParityTest {
    static final double TOL = 1e-4;

    static Path fixture(String name) {
        try {
            return Path.of(HuggingFaceParityTest.class.getResource("/qwen3next-fixtures/" + name + "/ids.npy").toURI())
                    .getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** max |got − ref| / max |ref| over rows [refRow, refRow + rows) of ref; NaN fails. */
    static double relError(float[] got, int gotOffset, float[] ref, int refOffset, int count) {
        double maxDiff = 0;
        double maxRef = 0;
        for (int i = 0; i < count; i++) {
            float g = got[gotOffset + i];
            assertTrue(Float.isFinite(g), "non-finite logit at " + i);
            maxDiff = Math.max(maxDiff, Math.abs((double) g - ref[refOffset + i]));
            maxRef = Math.max(maxRef, Math.abs(ref[refOffset + i]));
        }
        return maxDiff / maxRef;
    }

    static void check(String fixture, String what, double err) {
        System.out.printf("parity %-20s %-28s max|Δ|/max|ref| = %.3e%n", fixture, what, err);
        assertTrue(err <= TOL, fixture + " " + what + ": relative error " + err + " > " + TOL);
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-hub-sharded", "small-legacy-fused", "micro-bf16-tied"})
    void matchesTransformers(String name) {
        Path dir = fixture(name);
        int[] ids = Npy.read(dir.resolve("ids.npy")).ints();
        Npy.Array full = Npy.read(dir.resolve("logits_full.npy"));
        int t = full.dim(0);
        int v = full.dim(1);
        assertEquals(ids.length, t);
        try (Qwen3NextModel model = Qwen3NextModel.load(dir.resolve("checkpoint"))) {
            assertEquals(v, model.config().vocabSize());
            try (CpuSession s = new CpuSession(model)) {
                float[] got = s.extendAll(ids);
                check(name, "full sequence [" + t + "]", relError(got, 0, full.floats(), 0, t * v));
            }

            float[] decodeRef = Npy.read(dir.resolve("logits_decode_hf.npy")).floats();
            int steps = decodeRef.length / v;
            int prefill = t - steps;
            try (CpuSession s = new CpuSession(model)) {
                float[] last = s.prefill(Arrays.copyOf(ids, prefill));
                double err = relError(last, 0, full.floats(), (prefill - 1) * v, v);
                for (int i = 0; i < steps; i++) {
                    float[] step = s.decode(ids[prefill + i]);
                    err = Math.max(err, relError(step, 0, decodeRef, i * v, v));
                    err = Math.max(err, relError(step, 0, full.floats(), (prefill + i) * v, v));
                }
                check(name, "prefill " + prefill + " + " + steps + " decodes", err);
            }

            float[] contRef = Npy.read(dir.resolve("logits_continuation_hf.npy")).floats();
            int m = contRef.length / v;
            int n = 70;
            try (CpuSession s = new CpuSession(model)) {
                s.prefill(Arrays.copyOf(ids, n));
                float[] got = s.extendAll(Arrays.copyOfRange(ids, n, n + m));
                double err = Math.max(relError(got, 0, contRef, 0, m * v),
                        relError(got, 0, full.floats(), n * v, m * v));
                float[] next = s.extendAll(Arrays.copyOfRange(ids, n + m, t));   // and one more continuation
                err = Math.max(err, relError(next, 0, full.floats(), (n + m) * v, (t - n - m) * v));
                check(name, "prefill " + n + " + continuation " + m, err);
            }

            int[] batchIds = Npy.read(dir.resolve("ids_batch.npy")).ints();
            Npy.Array batchRef = Npy.read(dir.resolve("logits_batch.npy"));
            float[] batchDecodeRef = Npy.read(dir.resolve("logits_batch_decode_hf.npy")).floats();
            int tb = batchRef.dim(1);
            int sb = batchDecodeRef.length / (2 * v);
            CpuForward fwd = new CpuForward(model);
            CpuState state = fwd.newState(2);
            int a = state.allocate();
            int b = state.allocate();
            List<float[]> both = fwd.forward(state, List.of(
                    new CpuForward.SequenceInput(a, Arrays.copyOfRange(batchIds, 0, tb - sb)),
                    new CpuForward.SequenceInput(b, Arrays.copyOfRange(batchIds, tb, 2 * tb - sb))), true);
            double err = Math.max(relError(both.get(0), 0, batchRef.floats(), 0, (tb - sb) * v),
                    relError(both.get(1), 0, batchRef.floats(), tb * v, (tb - sb) * v));
            for (int i = 0; i < sb; i++) {
                List<float[]> step = fwd.forward(state, List.of(
                        new CpuForward.SequenceInput(a, new int[]{batchIds[tb - sb + i]}),
                        new CpuForward.SequenceInput(b, new int[]{batchIds[2 * tb - sb + i]})), false);
                err = Math.max(err, relError(step.get(0), 0, batchDecodeRef, (i * 2) * v, v));
                err = Math.max(err, relError(step.get(1), 0, batchDecodeRef, (i * 2 + 1) * v, v));
            }
            check(name, "batch of 2, prefill + decodes", err);
            assertArrayEquals(new int[]{tb, tb}, new int[]{state.position(a), state.position(b)});
        }
    }
}
