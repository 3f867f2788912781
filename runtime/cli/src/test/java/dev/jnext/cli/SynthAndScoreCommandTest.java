package dev.jnext.cli;

import dev.jnext.cpu.CpuSession;
import dev.jnext.model.weights.Checkpoint;
import dev.jnext.model.DType;
import dev.jnext.model.LayerType;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.Npy;
import dev.jnext.cpu.Qwen3NextModel;
import dev.jnext.model.SyntheticCheckpoint;
import dev.jnext.tokenizer.TestTokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SynthAndScoreCommandTest {

    static CliRun run(String... args) {
        return CliRun.run("", args);
    }

    @Test
    void synthWritesALoadableShardedCheckpointAndScoreMatchesTheLibrary(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("m");
        CliRun s = run("synth", "--preset", "tiny", "--layers", "4", "--experts", "5", "--seed", "3", "--dtype", "f32",
                "--shard-size-mb", "1", "--out", dir.toString());
        assertEquals(0, s.exitCode(), s.err());
        assertTrue(Files.isRegularFile(dir.resolve(Checkpoint.INDEX_FILE)));
        assertTrue(Files.readString(dir.resolve("config.json")).contains("\"rope_parameters\""));
        try (var files = Files.list(dir)) {
            assertTrue(files.filter(p -> p.toString().endsWith(".safetensors")).count() >= 2);
        }
        int[] ids = {5, 17, 200, 3, 3, 99, 12};
        float[] expected;
        try (Qwen3NextModel m = Qwen3NextModel.load(dir); CpuSession session = new CpuSession(m)) {
            assertEquals(5, m.config().numExperts());
            assertEquals(LayerType.FULL_ATTENTION, m.config().layerType(3));
            expected = session.extendAll(ids);
        }
        Path npy = tmp.resolve("logits.npy");
        CliRun r = run("score", "--model", dir.toString(), "--ids", "5,17,200,3,3,99,12", "--logits-out", npy.toString(),
                "--device", "cpu");
        assertEquals(0, r.exitCode(), r.err());
        Npy.Array logits = Npy.read(npy);
        assertArrayEquals(new int[]{7, 256}, logits.shape());
        assertArrayEquals(expected, logits.floats());
        // the printed log-probs are log-softmax of the previous row at the next id
        double sum = 0;
        String[] lines = r.out().split("\n");
        for (int t = 1; t < ids.length; t++) {
            double lp = ScoreCommand.logSoftmaxAt(expected, (t - 1) * 256, 256, ids[t]);
            assertTrue(lp < 0);
            assertEquals(t + "\t" + ids[t] + "\t" + String.format("%.6f", lp), lines[t + 1]);
            sum += lp;
        }
        assertTrue(r.out().contains(String.format("perplexity: %.6f", Math.exp(-sum / 6))), r.out());
    }

    @Test
    void synthDrawsNoProgressBarWhenNoTerminalWatches(@TempDir Path tmp) {
        var savedErr = System.err;
        var stderr = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(stderr, true));
        CliRun s;
        try {
            s = run("synth", "--preset", "tiny", "--out", tmp.resolve("m").toString());
        } finally {
            System.setErr(savedErr);
        }
        assertEquals(0, s.exitCode(), s.err());
        assertEquals("", stderr.toString(), "the JVM's stderr (a test log here) gets no progress bar");
        assertEquals("", s.err());
        assertTrue(s.out().startsWith("wrote ") && !s.out().contains("\r"), s.out());
    }

    @Test
    void synthRefusesToOverwriteAndScoreRejectsBadInput(@TempDir Path tmp) {
        Path dir = tmp.resolve("m");
        assertEquals(0, run("synth", "--preset", "tiny", "--out", dir.toString()).exitCode());
        CliRun again = run("synth", "--preset", "tiny", "--out", dir.toString());
        assertEquals(2, again.exitCode());
        assertTrue(again.err().contains("already holds config.json; choose an empty directory"), again.err());
        if (!dev.jnext.gpu.Cuda.driverPresent()) {
            CliRun cuda = run("score", "--model", dir.toString(), "--ids", "1,2", "--device", "cuda");
            assertEquals(2, cuda.exitCode());
            assertTrue(cuda.err().trim().startsWith("jnext: no CUDA driver found") && cuda.err().trim().lines().count() == 1, cuda.err());
        }
        CliRun one = run("score", "--model", dir.toString(), "--ids", "7");
        assertEquals(0, one.exitCode(), one.err());
        assertTrue(one.out().endsWith("tokens: 1 (perplexity needs at least 2 tokens)\n"), one.out());
        assertTrue(one.err().matches("jnext: device cpu; load [0-9.]+ s, forward [0-9.]+ s \\(1 token\\)\n"), one.err());
        CliRun badId = run("score", "--model", dir.toString(), "--ids", "1,256");
        assertEquals("jnext: token id 256 at position 1 is outside the vocabulary 0..255", badId.err().trim());
        CliRun noTok = run("score", "--model", dir.toString(), "--text", "hi");
        assertEquals("jnext: --model " + dir + ": the folder has no tokenizer.json (synthetic checkpoints have none); pass --tokenizer DIR",
                noTok.err().trim());
        CliRun preset = run("synth", "--preset", "huge", "--out", tmp.resolve("x").toString());
        assertTrue(preset.exitCode() != 0 && preset.err().contains("expected one of tiny, gpu-small, next-80b-a3b, qwen3.5-tiny"),
                preset.err());
    }

    @Test
    void qwen35CheckpointsAreWrittenDescribedAndScoredOnTheCpu(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("q35");
        CliRun synth = run("synth", "--preset", "qwen3.5-moe-tiny", "--multimodal", "--experts-layout", "fused",
                "--dtype", "f32", "--out", dir.toString());
        assertEquals(0, synth.exitCode(), synth.err());
        CliRun info = run("info", "--model", dir.toString());
        assertEquals(0, info.exitCode(), info.err());
        assertTrue(info.out().contains("family      Qwen3.5 (MoE) (multimodal checkpoint Qwen3_5MoeForConditionalGeneration: "
                + "its text model, weights under model.language_model.)"), info.out());
        assertTrue(info.out().contains("deltanet    2 key heads × 16, 4 value heads × 24, conv 4, split projections"), info.out());
        assertTrue(info.out().contains("cuda        the CUDA kernels "), info.out());
        CliRun score = run("score", "--model", dir.toString(), "--ids", "1,5,9", "--device", "auto");
        assertEquals(0, score.exitCode(), score.err());
        assertTrue(score.err().contains("device cpu"), score.err());
        Path fp8 = tmp.resolve("q35-fp8");
        CliRun q = run("synth", "--preset", "qwen3.5-moe-tiny", "--multimodal", "--dtype", "fp8", "--out", fp8.toString());
        assertEquals(0, q.exitCode(), q.err());
        assertTrue(Files.readString(fp8.resolve("config.json")).contains("model.language_model.layers.0.linear_attn.in_proj_a"),
                "Qwen3.5's kept modules under the multimodal prefix");
        CliRun fp8Score = run("score", "--model", fp8.toString(), "--ids", "1,5,9", "--device", "cpu");
        assertEquals(0, fp8Score.exitCode(), fp8Score.err());
        CliRun bad = run("synth", "--preset", "qwen3.5-tiny", "--mlp-only-layers", "0", "--out", tmp.resolve("y").toString());
        assertEquals("jnext: --mlp-only-layers is Qwen3-Next's (Qwen3.5 models have no mlp_only_layers)", bad.err().trim());
    }

    @Test
    void scoreTextUsesTheModelDirectorysTokenizer(@TempDir Path tmp) throws Exception {
        // a narrow model with the real Qwen vocabulary, so the Qwen3 tokenizer's ids are valid
        ModelConfig c = new ModelConfig(151936, 16, 24, 2, 2, 1, 8, 1, 2, 4, 4, 4, 2, 1, 8, 8, 1, List.of(), true,
                List.of(LayerType.LINEAR_ATTENTION, LayerType.FULL_ATTENTION), 1e6, 0.5, 1e-6f, 4096, false,
                DType.BF16, null, List.of());
        Path dir = tmp.resolve("m");
        SyntheticCheckpoint.write(dir, new SyntheticCheckpoint.Options(c, DType.BF16, 1, 1L << 30,
                SyntheticCheckpoint.ExpertLayout.HUB), n -> { });
        Files.copy(TestTokenizers.qwen3Dir().resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        int[] ids = TestTokenizers.qwen3().encode("Hello world, hello jnext!");
        CliRun text = run("score", "--model", dir.toString(), "--text", "Hello world, hello jnext!");
        assertEquals(0, text.exitCode(), text.err());
        StringBuilder idArg = new StringBuilder();
        for (int id : ids) idArg.append(idArg.isEmpty() ? "" : ",").append(id);
        CliRun byIds = run("score", "--model", dir.toString(), "--ids", idArg.toString());
        String perplexity = byIds.out().lines().filter(l -> l.startsWith("tokens:")).findFirst().orElseThrow();
        assertTrue(text.out().contains(perplexity), text.out());
        assertTrue(text.out().contains("\t world"), text.out());
    }

    @Test
    void synthWritesTheOfficialFp8LayoutThatScoreRunsAsTheDequantizedModel(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("fp8");
        CliRun s = run("synth", "--preset", "tiny", "--layers", "4", "--experts", "4", "--dtype", "fp8", "--experts-layout", "fused",
                "--seed", "5", "--out", dir.toString());
        assertEquals(0, s.exitCode(), s.err());
        assertTrue(s.out().contains("FP8 (e4m3, 128x128 blocks; bf16 where kept)"), s.out());
        String config = Files.readString(dir.resolve("config.json"));
        assertTrue(config.contains("\"quant_method\" : \"fp8\"") && config.contains("\"weight_block_size\" : [ 128, 128 ]")
                && config.contains("\"model.layers.0.linear_attn.in_proj_ba\""), config);
        try (Checkpoint c = Checkpoint.open(dir)) {
            assertEquals(DType.F8_E4M3, c.find("model.layers.0.mlp.experts.gate_up_proj").dtype());
            assertEquals(DType.F32, c.find("model.layers.0.mlp.experts.gate_up_proj_scale_inv").dtype());
            assertEquals(DType.F8_E4M3, c.find("model.layers.3.self_attn.q_proj.weight").dtype());
            assertEquals(DType.BF16, c.find("model.layers.0.linear_attn.in_proj_ba.weight").dtype());
            assertEquals(DType.BF16, c.find("model.layers.0.mlp.gate.weight").dtype());
            assertEquals(DType.BF16, c.find("lm_head.weight").dtype());
        }
        float[] expected;
        try (Qwen3NextModel m = Qwen3NextModel.load(dir); CpuSession session = new CpuSession(m)) {
            expected = session.extendAll(new int[]{1, 2, 3});
        }
        Path npy = tmp.resolve("logits.npy");
        CliRun r = run("score", "--model", dir.toString(), "--ids", "1,2,3", "--logits-out", npy.toString(), "--device", "cpu");
        assertEquals(0, r.exitCode(), r.err());
        assertArrayEquals(expected, Npy.read(npy).floats());
        // another quantization is refused before anything is read, in one line
        Files.writeString(dir.resolve("config.json"), config.replace("\"quant_method\" : \"fp8\"", "\"quant_method\" : \"gptq\""));
        CliRun gptq = run("score", "--model", dir.toString(), "--ids", "1,2", "--device", "cpu");
        assertEquals(2, gptq.exitCode());
        assertEquals("jnext: " + dir.resolve("config.json") + ": quantization_config.quant_method is \"gptq\"; jnext loads unquantized "
                + "checkpoints (F32, BF16, F16) and fine-grained FP8 (quant_method \"fp8\", fmt \"e4m3\", activation_scheme \"dynamic\", "
                + "weight_block_size [128, 128])", gptq.err().trim());
    }

    /** {@code --model synthetic:...}: score and info run on a model generated in memory, named so in what they print. */
    @Test
    void aSyntheticModelNameRunsWithoutAFolder(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("written");
        assertEquals(0, run("synth", "--preset", "tiny", "--layers", "2", "--seed", "9", "--out", dir.toString()).exitCode());
        Path a = tmp.resolve("a.npy"), b = tmp.resolve("b.npy");
        CliRun written = run("score", "--model", dir.toString(), "--ids", "4,8,15,16", "--logits-out", a.toString(), "--device", "cpu");
        CliRun generated = run("score", "--model", "synthetic:tiny,layers=2,seed=9", "--ids", "4,8,15,16", "--logits-out", b.toString(),
                "--device", "cpu");
        assertEquals(0, written.exitCode(), written.err());
        assertEquals(0, generated.exitCode(), generated.err());
        assertArrayEquals(Npy.read(a).floats(), Npy.read(b).floats());
        CliRun info = run("info", "--model", "synthetic:next-80b-a3b,dtype=fp8");
        assertEquals(0, info.exitCode(), info.err());
        assertTrue(info.out().contains("checkpoint  synthetic: ") && info.out().contains("generated in host memory"), info.out());
        CliRun bad = run("score", "--model", "synthetic:tiny,depth=3", "--ids", "1");
        assertEquals(2, bad.exitCode());
        assertTrue(bad.err().contains("unknown part \"depth=3\""), bad.err());
        CliRun noTok = run("score", "--model", "synthetic:tiny", "--text", "hi", "--device", "cpu");
        assertTrue(noTok.err().contains("a synthetic model has no tokenizer; pass --tokenizer DIR"), noTok.err());
        // through the engine (generate, and so serve and bench serve): the same tokens as the written checkpoint
        Path small = tmp.resolve("small");
        assertEquals(0, run("synth", "--preset", "gpu-small", "--layers", "1", "--experts", "4", "--out", small.toString()).exitCode());
        String tok = dev.jnext.tokenizer.TestTokenizers.qwen3Dir().toString();
        CliRun g1 = run("generate", "--model", small.toString(), "--tokenizer", tok, "--prompt", "Hello", "--max-new-tokens", "4",
                "--device", "cpu");
        CliRun g2 = run("generate", "--model", "synthetic:gpu-small,layers=1,experts=4", "--tokenizer", tok, "--prompt", "Hello",
                "--max-new-tokens", "4", "--device", "cpu");
        assertEquals(0, g1.exitCode(), g1.err());
        assertEquals(0, g2.exitCode(), g2.err());
        assertEquals(g1.out(), g2.out());
    }
}
