package dev.jnext.cuda;

import dev.jnext.backend.KvBudget;
import dev.jnext.backend.PrefillMode;

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
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 9 §4: piecewise prefill graphs are exact. On a small GPU-shaped checkpoint, with buckets up to 512 tokens
 * (captured lazily): eager launches padded to the bucket, {@code PIECEWISE} and {@code GDN_LAYER_EAGER} give the same
 * bits for batches of 1–16 sequences of mixed lengths at n = bucket, n = bucket + 1 and above the largest bucket; the
 * unpadded eager step is within mean KL 1e-4; NaN planted in the padded rows changes no real row; 1,000 mixed replays
 * leave device memory where it was.
 */
@Tag("gpu")
class PiecewiseGraphsGpuTest {
    static final int VOCAB = 4096;
    static Path dir;
    static CudaModel piecewise;
    static CudaModel gdnLayerEager;

    @BeforeAll
    static void load() throws Exception {
        ModelConfig c = GpuShapedCheckpoints.config(8, VOCAB, List.of(5), true, false);
        dir = GpuShapedCheckpoints.write(c, SyntheticCheckpoint.ExpertLayout.FUSED, 21);
        CudaOptions base = CudaOptions.defaults().withMaxSequences(16).withMaxStepTokens(1024).withMaxContext(2048)
                .withMaxLogitRows(1024).withKvBudget(new KvBudget.Tokens(64 * 1024)).withMaxPrefillBucket(512)
                .withLazyCapture(true);
        piecewise = CudaModel.load(dir, base.withPrefill(PrefillMode.PIECEWISE), b -> {});
        gdnLayerEager = CudaModel.load(dir, base.withPrefill(PrefillMode.GDN_LAYER_EAGER), b -> {});
    }

    @AfterAll
    static void close() {
        if (piecewise != null) piecewise.close();
        if (gdnLayerEager != null) gdnLayerEager.close();
    }

    /** Logits of every token of {@code prompts} run as one step on fresh slots of {@code m}. */
    private static List<float[]> run(CudaModel m, List<int[]> prompts, CudaModel.StepPath path) {
        List<CudaModel.Input> in = new ArrayList<>();
        for (int[] p : prompts) in.add(new CudaModel.Input(m.open(SamplingKernel.RowParams.greedy(), VOCAB, 0), p, false, CudaModel.Logits.ALL));
        List<CudaModel.Output> out = m.step(in, path);
        List<float[]> logits = new ArrayList<>();
        for (int i = 0; i < in.size(); i++) {
            logits.add(out.get(i).logits());
            m.close(in.get(i).slot());
        }
        return logits;
    }

    /** {@code count} prompts of mixed lengths adding up to exactly {@code total} tokens. */
    private static List<int[]> prompts(Random rnd, int count, int total) {
        List<int[]> out = new ArrayList<>();
        int left = total;
        for (int i = 0; i < count; i++) {
            int len = i == count - 1 ? left : Math.max(1, Math.min(left - (count - 1 - i), 1 + rnd.nextInt(2 * total / count + 1)));
            left -= len;
            int[] ids = new int[len];
            for (int t = 0; t < len; t++) ids[t] = rnd.nextInt(VOCAB);
            out.add(ids);
        }
        return out;
    }

    @Test
    void paddedEagerPiecewiseAndGdnLayerEagerAreBitwiseEqual() {
        Random rnd = new Random(17);
        int[][] cases = {{1, 16}, {1, 17}, {3, 64}, {3, 65}, {5, 256}, {5, 257}, {16, 512}, {16, 600}, {2, 511}};
        for (int[] c : cases) {
            List<int[]> ps = prompts(rnd, c[0], c[1]);
            boolean above = c[1] > 512;
            List<float[]> eager = run(piecewise, ps, above ? CudaModel.StepPath.EAGER_PREFILL : CudaModel.StepPath.EAGER_PREFILL_BUCKET);
            List<float[]> graphs = run(piecewise, ps, null);
            List<float[]> ablation = run(gdnLayerEager, ps, null);
            for (int i = 0; i < ps.size(); i++) {
                String what = c[0] + " sequences, " + c[1] + " tokens, sequence " + i;
                assertArrayEquals(eager.get(i), graphs.get(i), "padded eager vs piecewise: " + what);
                assertArrayEquals(eager.get(i), ablation.get(i), "padded eager vs gdn-layer-eager: " + what);
            }
            if (!above) {
                List<float[]> unpadded = run(piecewise, ps, CudaModel.StepPath.EAGER_PREFILL);
                for (int i = 0; i < ps.size(); i++) {
                    LogitStats.Figures f = LogitStats.compare(unpadded.get(i), 0, graphs.get(i), 0, ps.get(i).length, VOCAB);
                    assertTrue(f.meanKl() <= 1e-4, "unpadded eager vs piecewise, " + c[0] + " sequences, " + c[1] + " tokens: " + f);
                }
            }
        }
        assertTrue(piecewise.prefillGraphCount() > 0);
    }

    @Test
    void nanInPaddedRowsNeverReachesARealRow() {
        Random rnd = new Random(23);
        for (int[] c : new int[][]{{1, 5}, {4, 100}, {7, 300}}) {
            List<int[]> ps = prompts(rnd, c[0], c[1]);
            List<float[]> clean = run(piecewise, ps, null);
            piecewise.poisonPadding(true);
            List<float[]> poisoned;
            try {
                poisoned = run(piecewise, ps, null);
            } finally {
                piecewise.poisonPadding(false);
            }
            for (int i = 0; i < ps.size(); i++) assertArrayEquals(clean.get(i), poisoned.get(i), c[1] + " tokens, sequence " + i);
        }
    }

    @Test
    void thousandMixedReplaysDoNotGrowDeviceMemory() {
        Random rnd = new Random(31);
        Gpu probe = GpuTestSupport.gpu();
        for (int b : piecewise.prefillBuckets().sizes()) {
            if (b <= 208) run(piecewise, prompts(rnd, 1, b), null);  // every bucket the loop can hit is captured first
        }
        long live = piecewise.deviceBytesInUse();
        long free = probe.memoryInfo().free();
        for (int i = 0; i < 1000; i++) run(piecewise, prompts(rnd, 1 + rnd.nextInt(4), 4 + rnd.nextInt(200)), null);
        assertEquals(live, piecewise.deviceBytesInUse());
        assertTrue(Math.abs(free - probe.memoryInfo().free()) < (4L << 20), "free device memory moved");
    }
}
