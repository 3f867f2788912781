package dev.jnext.cuda;

import dev.jnext.backend.KvBudget;

import dev.jnext.JnextException;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.GpuTestSupport;
import dev.jnext.cuda.kernels.SamplingKernel;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.SyntheticCheckpoint;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CUDA runner on a small GPU-shaped checkpoint (4 layers: 3 Gated DeltaNet + 1 attention, 16 experts, a dense
 * layer): batching, decode graphs against eager launches, on-device sampling, memory over many sequences, errors.
 */
@Tag("gpu")
class CudaRunnerGpuTest {
    static final int VOCAB = 8192;
    static Path dir;
    static CudaModel model;

    @BeforeAll
    static void load() throws Exception {
        ModelConfig c = GpuShapedCheckpoints.config(4, VOCAB, List.of(2), true, false);
        dir = GpuShapedCheckpoints.write(c, SyntheticCheckpoint.ExpertLayout.HUB, 7);
        model = CudaModel.load(dir, CudaOptions.defaults().withMaxSequences(40).withMaxStepTokens(2048).withMaxContext(2048)
                .withMaxLogitRows(1024).withKvBudget(new KvBudget.Tokens(32 * 1024)), b -> {});
    }

    @AfterAll
    static void close() {
        if (model != null) model.close();
    }

    private static int open() {
        return model.open(SamplingKernel.RowParams.greedy(), VOCAB, 0);
    }

    private static int[] randomIds(Random rnd, int n) {
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) ids[i] = rnd.nextInt(VOCAB);
        return ids;
    }

    /** Issue 8 §5d: a batch of 1–16 sequences of mixed lengths gives each sequence the logits it gets alone. */
    @Test
    void batchedSequencesMatchEachAlone() {
        Random rnd = new Random(11);
        int[] lengths = {1, 7, 64, 65, 130, 3, 200, 17, 33, 128, 2, 90, 5, 64, 250, 9};
        List<int[]> prompts = new ArrayList<>();
        for (int len : lengths) prompts.add(randomIds(rnd, len));
        for (int batch : new int[]{1, 5, 16}) {
            List<float[]> alone = new ArrayList<>();
            for (int i = 0; i < batch; i++) {
                int s = open();
                // the prefill kernels, as in the batch (a 1-token prompt alone would take the decode kernels: fp32 delta rule)
                alone.add(model.step(List.of(new CudaModel.Input(s, prompts.get(i), false, CudaModel.Logits.LAST)),
                        CudaModel.StepPath.EAGER_PREFILL).getFirst().logits());
                model.close(s);
            }
            List<CudaModel.Input> in = new ArrayList<>();
            int[] slots = new int[batch];
            for (int i = 0; i < batch; i++) {
                slots[i] = open();
                in.add(new CudaModel.Input(slots[i], prompts.get(i), false, CudaModel.Logits.LAST));
            }
            List<CudaModel.Output> together = model.step(in, CudaModel.StepPath.EAGER_PREFILL);
            for (int i = 0; i < batch; i++) {
                LogitStats.Figures f = LogitStats.compare(alone.get(i), 0, together.get(i).logits(), 0, 1, VOCAB);
                assertTrue(f.meanKl() < 2e-3, "batch " + batch + ", sequence " + i + " (" + lengths[i] + " tokens): " + f);
            }
            // a few decode steps for the whole batch, against each sequence decoded alone from the same prefix
            int[] next = randomIds(rnd, batch);
            in.clear();
            for (int i = 0; i < batch; i++) in.add(new CudaModel.Input(slots[i], new int[]{next[i]}, false, CudaModel.Logits.LAST));
            List<CudaModel.Output> dec = model.step(in);
            for (int i = 0; i < batch; i++) {
                int s = open();
                model.step(List.of(new CudaModel.Input(s, prompts.get(i), false, CudaModel.Logits.NONE)), CudaModel.StepPath.EAGER_PREFILL);
                float[] one = model.step(List.of(new CudaModel.Input(s, new int[]{next[i]}, false, CudaModel.Logits.LAST))).getFirst().logits();
                model.close(s);
                LogitStats.Figures f = LogitStats.compare(one, 0, dec.get(i).logits(), 0, 1, VOCAB);
                // batched, the prefix was prefilled with the grouped expert GEMMs and decoded with them (16 rows);
                // alone, a short prefix takes the MoE decode kernels (<= 8 rows): other bf16 roundings. Measured on an
                // H100 with the hi/lo chunked rule (issue 16): up to KL 0.00243 (batch 16, the 7-token sequence)
                assertTrue(f.meanKl() < 3e-3, "decode, batch " + batch + ", sequence " + i + ": " + f);
            }
            for (int s : slots) model.close(s);
        }
    }

    /** Issue 8 §5d: a decode graph replay equals the same launches run eagerly at the bucket's shape, bit for bit. */
    @Test
    void decodeGraphEqualsEagerAtTheBucket() {
        Random rnd = new Random(5);
        for (int batch : new int[]{1, 3, 9}) {
            List<int[]> prompts = new ArrayList<>();
            for (int i = 0; i < batch; i++) prompts.add(randomIds(rnd, 20 + 13 * i));
            int[] a = new int[batch], b = new int[batch];
            List<CudaModel.Input> pa = new ArrayList<>(), pb = new ArrayList<>();
            for (int i = 0; i < batch; i++) {
                a[i] = open();
                b[i] = open();
                pa.add(new CudaModel.Input(a[i], prompts.get(i), false, CudaModel.Logits.NONE));
                pb.add(new CudaModel.Input(b[i], prompts.get(i), false, CudaModel.Logits.NONE));
            }
            model.step(pa);
            model.step(pb);
            for (int step = 0; step < 4; step++) {
                int[] next = randomIds(rnd, batch);
                List<CudaModel.Input> da = new ArrayList<>(), db = new ArrayList<>();
                for (int i = 0; i < batch; i++) {
                    da.add(new CudaModel.Input(a[i], new int[]{next[i]}, false, CudaModel.Logits.LAST));
                    db.add(new CudaModel.Input(b[i], new int[]{next[i]}, false, CudaModel.Logits.LAST));
                }
                List<CudaModel.Output> ga = model.step(da, CudaModel.StepPath.DECODE_GRAPH);
                List<CudaModel.Output> eb = model.step(db, CudaModel.StepPath.EAGER_DECODE_BUCKET);
                for (int i = 0; i < batch; i++) {
                    assertArrayEquals(eb.get(i).logits(), ga.get(i).logits(), "batch " + batch + " step " + step + " sequence " + i);
                }
            }
            for (int i = 0; i < batch; i++) {
                model.close(a[i]);
                model.close(b[i]);
            }
        }
    }

    /** Greedy sampling on the device picks the argmax of the logits the same step returns; penalties change it as the CPU sampler does. */
    @Test
    void onDeviceGreedySamplingIsTheArgmax() {
        Random rnd = new Random(3);
        int s = open();
        int[] prompt = randomIds(rnd, 40);
        CudaModel.Output o = model.step(List.of(new CudaModel.Input(s, prompt, true, CudaModel.Logits.LAST))).getFirst();
        assertEquals(LogitStats.argmax(o.logits(), 0, VOCAB), o.token());
        for (int i = 0; i < 5; i++) {
            o = model.step(List.of(new CudaModel.Input(s, new int[]{o.token()}, true, CudaModel.Logits.LAST))).getFirst();
            assertEquals(LogitStats.argmax(o.logits(), 0, VOCAB), o.token(), "decode step " + i);
        }
        model.close(s);
        // a repetition penalty of 1e9 forbids every token seen so far: the pick is the best unseen one
        int p = model.open(new SamplingKernel.RowParams(0, 0, 1, 0, 1e9f, 0), VOCAB, 0);
        CudaModel.Output q = model.step(List.of(new CudaModel.Input(p, prompt, true, CudaModel.Logits.LAST))).getFirst();
        float[] l = q.logits().clone();
        for (int id : prompt) l[id] = l[id] > 0 ? l[id] / 1e9f : l[id] * 1e9f;
        assertEquals(LogitStats.argmax(l, 0, VOCAB), q.token());
        assertTrue(Arrays.stream(prompt).noneMatch(id -> id == q.token()) || l[q.token()] == 0f);
        model.close(p);
    }

    /** Issue 8 §5e: 1,000 generations in one process leave device memory where it was. */
    @Test
    void thousandGenerationsDoNotGrowDeviceMemory() {
        Random rnd = new Random(9);
        Gpu probe = GpuTestSupport.gpu();
        long liveBefore = model.deviceBytesInUse();
        long freeBefore = 0;
        for (int i = 0; i < 1000; i++) {
            if (i == 10) freeBefore = probe.memoryInfo().free();
            int s = model.open(new SamplingKernel.RowParams(0.8f, 40, 0.95f, 0, 1.1f, 0.2f), VOCAB, i);
            CudaModel.Output o = model.step(List.of(new CudaModel.Input(s, randomIds(rnd, 1 + i % 37), true, CudaModel.Logits.NONE))).getFirst();
            for (int t = 0; t < 4; t++) {
                assertTrue(o.token() >= 0 && o.token() < VOCAB, "sampled id " + o.token());
                o = model.step(List.of(new CudaModel.Input(s, new int[]{o.token()}, true, CudaModel.Logits.NONE))).getFirst();
            }
            model.close(s);
        }
        assertEquals(liveBefore, model.deviceBytesInUse(), "live device bytes of the model's context");
        long freeAfter = probe.memoryInfo().free();
        assertTrue(Math.abs(freeBefore - freeAfter) < (4L << 20), "device free memory moved by " + (freeBefore - freeAfter) + " bytes");
        assertEquals(40, model.freeSlots());
    }

    /** Issue 8 §5e: bad ids, an unsupported geometry and a GPU too small give one-line errors and leak nothing. */
    @Test
    void errorsAreCleanAndFreeEverything() throws Exception {
        int s = open();
        JnextException bad = assertThrows(JnextException.class,
                () -> model.step(List.of(new CudaModel.Input(s, new int[]{1, VOCAB + 5}, false, CudaModel.Logits.LAST))));
        assertTrue(bad.getMessage().contains(String.valueOf(VOCAB + 5)), bad.getMessage());
        assertEquals(0, model.position(s));
        model.step(List.of(new CudaModel.Input(s, new int[]{1, 2, 3}, false, CudaModel.Logits.LAST)));
        model.close(s);

        Gpu probe = GpuTestSupport.gpu();
        long free = probe.memoryInfo().free();
        ModelConfig tiny = SyntheticCheckpoint.preset("tiny", 2, null, dev.jnext.model.DType.BF16);
        Path tinyDir = GpuShapedCheckpoints.writeAny(tiny);
        JnextException geo = assertThrows(JnextException.class, () -> CudaModel.load(tinyDir, CudaOptions.defaults(), b -> {}));
        assertTrue(geo.getMessage().contains("cannot run this geometry"), geo.getMessage());
        JnextException oom = assertThrows(JnextException.class, () -> CudaModel.load(dir,
                CudaOptions.defaults().withKvBudget(new KvBudget.Tokens(1L << 40)).withMaxContext(1 << 30), b -> {}));
        assertTrue(oom.getMessage().contains("free") && oom.getMessage().contains("KV cache"), oom.getMessage());
        assertTrue(Math.abs(free - probe.memoryInfo().free()) < (8L << 20), "device memory after failed loads");
    }
}
