package dev.jnext.cuda;

import dev.jnext.model.DType;
import dev.jnext.model.LayerType;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.SyntheticCheckpoint;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Parity on geometries nobody chose (issue 16, point 3): draws {@value #GEOMETRIES} random Qwen3-Next geometries that
 * the CUDA kernels accept — hidden 256–2048, attention heads 2–32 with KV heads dividing them, head_dim 64–256, GDN key
 * heads 2–16 with value heads a multiple of them, dk = dv = 128, experts 8–512, top-k 1–10 (Qwen3-Next
 * always has a shared expert: transformers' sparse MoE block builds one and the config requires its width), with and
 * without dense layers, vocabularies 4k–152k, prompts crossing chunk and bucket edges — writes each as a random
 * bf16 checkpoint, has transformers make its fp32 truth and bf16 peer logits ({@code src/reference/cuda_parity.py}), and
 * holds jnext to the bars of {@link CudaForwardParityGpuTest} (prefill eager and piecewise, decode, decode vs
 * re-prefill). The seed is printed first; a new one each run unless {@code -Djnext.sweep.seed=N} gives one. A failure
 * names the seed and the geometry.
 *
 * <p>Tagged {@code gpu-sweep}, not {@code gpu}: it is the acceptance test of an open issue and runs on its own
 * ({@code src/device/pack-and-run.sh run --sweep [SEED]}), on the GPU host where python3, torch and transformers are.
 */
@Tag("gpu-sweep")
class GeometrySweepGpuTest {
    static final int GEOMETRIES = 6;
    /** Logits floats one array may hold here (truth and peers are float[] of positions x vocabulary). */
    static final long MAX_LOGITS = 120_000_000L;

    /** One drawn case: the config, the prompt length P, the prefill length N before the decode steps, and the logit scale. */
    record Drawn(ModelConfig config, int p, int n, float logitScale, SyntheticCheckpoint.ExpertLayout layout) {
        String describe() {
            ModelConfig c = config;
            return String.format("hidden %d, attention %d/%d heads x %d, GDN %d/%d heads, experts %d top-%d (I %d, shared %d), "
                            + "dense layers %s, vocab %d, layers %d, prompt %d (decode from %d), %s experts, logit scale %.2f",
                    c.hiddenSize(), c.numAttentionHeads(), c.numKeyValueHeads(), c.headDim(), c.linearNumKeyHeads(),
                    c.linearNumValueHeads(), c.numExperts(), c.numExpertsPerTok(), c.moeIntermediateSize(),
                    c.sharedExpertIntermediateSize(), c.mlpOnlyLayers(), c.vocabSize(), c.numHiddenLayers(), p, n, layout, logitScale);
        }
    }

    /** A geometry the kernels accept, drawn from {@code r}. */
    static Drawn draw(SplittableRandom r) {
        for (int attempt = 0; attempt < 1000; attempt++) {
            int hidden = 256 + 128 * r.nextInt(15);                         // 256 .. 2048
            int heads = 2 << r.nextInt(5);                                   // 2 .. 32
            int kvHeads = heads >> r.nextInt(Integer.numberOfTrailingZeros(heads) + 1);
            int headDim = new int[]{64, 128, 256}[r.nextInt(3)];
            int hk = 2 << r.nextInt(4);                                      // 2 .. 16
            int hv = hk * (1 << r.nextInt(3));                               // x1, x2, x4
            int experts = 8 << r.nextInt(7);                                 // 8 .. 512
            int topK = 1 + r.nextInt(Math.min(10, experts));
            int moeI = 128 * (1 + r.nextInt(4));
            int layers = 4 + 4 * r.nextInt(2);                               // 4 or 8: every 4th full attention
            List<Integer> dense = r.nextInt(3) == 0 ? List.of(r.nextInt(layers)) : List.of();
            int vocab = 4096 + r.nextInt(152_000 - 4096);
            List<LayerType> types = new ArrayList<>();
            for (int i = 0; i < layers; i++) types.add((i + 1) % 4 == 0 ? LayerType.FULL_ATTENTION : LayerType.LINEAR_ATTENTION);
            ModelConfig c;
            try {
                c = new ModelConfig(vocab, hidden, 2 * moeI, layers, heads, kvHeads, headDim, hk, hv, 128, 128, 4, experts,
                        topK, moeI, moeI, 1, dense, r.nextBoolean(), types, 10_000_000, 0.25, 1e-6f, 262144,
                        false, DType.BF16, null, List.of());
            } catch (RuntimeException e) {
                continue;  // a combination the config itself refuses
            }
            if (!CudaGeometry.violations(c).isEmpty()) continue;
            // prompts crossing the chunked rule's 64-token chunks and the prefill buckets; positions x vocabulary bounded
            int maxP = (int) Math.min(4096, MAX_LOGITS / vocab);
            int p = r.nextInt(4) == 0 ? 1 + r.nextInt(Math.min(64, maxP)) : 64 * (1 + r.nextInt(Math.max(1, maxP / 64))) + r.nextInt(3) - 1;
            p = Math.max(2, Math.min(p, maxP));
            int decode = Math.min(p - 1, 8 + r.nextInt(17));
            float scale = 3f + 3f * (float) r.nextDouble();                 // next-token entropy ~2-4 nats
            SyntheticCheckpoint.ExpertLayout layout = r.nextBoolean() ? SyntheticCheckpoint.ExpertLayout.HUB : SyntheticCheckpoint.ExpertLayout.FUSED;
            return new Drawn(c, p, p - decode, scale, layout);
        }
        throw new IllegalStateException("no accepted geometry in 1000 draws");
    }

    @TestFactory
    Stream<DynamicTest> randomGeometries() throws IOException {
        long seed = Long.getLong("jnext.sweep.seed", new SplittableRandom().nextLong());
        System.out.println("geometry sweep seed=" + seed + " (rerun with -Djnext.sweep.seed=" + seed + ")");
        Path work = Files.createTempDirectory("jnext-sweep-");
        SplittableRandom r = new SplittableRandom(seed);
        List<DynamicTest> tests = new ArrayList<>();
        for (int g = 0; g < GEOMETRIES; g++) {
            Drawn d = draw(r);
            int index = g;
            tests.add(DynamicTest.dynamicTest("seed " + seed + " geometry " + g, () -> {
                String label = "seed " + seed + ", geometry " + index + ": " + d.describe();
                System.out.println(label);
                Path ckpt = work.resolve("ckpt-" + index);
                SyntheticCheckpoint.write(ckpt, new SyntheticCheckpoint.Options(d.config(), DType.BF16, seed + index, 1L << 30,
                        d.layout(), d.logitScale(), SyntheticCheckpoint.ConfigStyle.V5), b -> { });
                Path out = work.resolve("ref");
                reference(ckpt, out, "g" + index, d, seed + index);
                try {
                    CudaForwardParityGpuTest.runCase(out.resolve("g" + index));
                } catch (AssertionError e) {
                    throw new AssertionError(label + "\n" + e.getMessage(), e);
                } finally {
                    deleteTree(ckpt);
                }
            }));
        }
        return tests.stream();
    }

    /** transformers' truth and peer logits for the case, by src/reference/cuda_parity.py. */
    private static void reference(Path ckpt, Path out, String name, Drawn d, long seed) throws IOException, InterruptedException {
        Path script = repo().resolve("src/reference/cuda_parity.py");
        Path log = Files.createTempFile("cuda-parity-", ".log");
        Process proc = new ProcessBuilder(System.getProperty("jnext.python", "python3"), script.toString(), "--out", out.toString(),
                "--b", "1", "--p", Integer.toString(d.p()), "--n", Integer.toString(d.n()), "--seed", Long.toString(seed % 1_000_000),
                name + "=" + ckpt).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        if (!proc.waitFor(20, TimeUnit.MINUTES)) {
            proc.destroyForcibly();
            fail("cuda_parity.py timed out for " + d.describe());
        }
        assertEquals(0, proc.exitValue(), "cuda_parity.py failed for " + d.describe() + ":\n" + Files.readString(log));
    }

    /** The repository's root: -Djnext.repo, else the first folder up from here that holds src/reference. */
    static Path repo() {
        String prop = System.getProperty("jnext.repo");
        if (prop != null) return Path.of(prop);
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("src/reference/cuda_parity.py"))) return p;
        }
        throw new IllegalStateException("src/reference/cuda_parity.py not found above " + Path.of("").toAbsolutePath() + "; set -Djnext.repo");
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(java.util.Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }
}
