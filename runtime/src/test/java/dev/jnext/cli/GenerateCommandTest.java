package dev.jnext.cli;

import dev.jnext.tokenizer.TestTokenizers;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code jnext generate} end to end on a random tiny checkpoint sized for the Qwen3 tokenizer (CPU backend). */
class GenerateCommandTest {
    @TempDir
    static Path work;
    static Path model;
    private final String tokenizer = TestTokenizers.qwen3Dir().toString();

    @BeforeAll
    static void synthesize() {
        model = work.resolve("tiny");
        CliRun r = CliRun.run("", "synth", "--preset", "tiny", "--vocab-size", "151936", "--out", model.toString());
        assertEquals(0, r.exitCode(), r.err());
    }

    @Test
    void chatGenerationStreamsTextAndReportsTimings() {
        CliRun r = CliRun.run("", "generate", "--model", model.toString(), "--tokenizer", tokenizer, "--chat",
                "--system", "Be brief.", "--prompt", "Hello! Who are you?", "--max-new-tokens", "12", "--temperature", "0.8", "--seed", "3");
        assertEquals(0, r.exitCode(), r.err());
        assertFalse(r.out().isBlank(), "random weights still produce some text");
        assertTrue(r.out().endsWith("\n"));
        // <|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello! Who are you?<|im_end|>\n<|im_start|>assistant\n
        assertTrue(r.err().contains("prompt 22 tokens"), r.err());
        for (String s : new String[] {"loaded", "time to first token", "prefill", "decode", "tok/s", "stopped: "}) {
            assertTrue(r.err().contains(s), "stderr lacks \"" + s + "\": " + r.err());
        }
    }

    @Test
    void aSeedMakesSamplingReproducible() {
        String[] args = {"generate", "--model", model.toString(), "--tokenizer", tokenizer, "--max-new-tokens", "10",
                "--temperature", "1.0", "--top-k", "50", "--top-p", "0.95", "--min-p", "0.01", "--seed", "11"};
        CliRun a = CliRun.run("The weather today is", args), b = CliRun.run("The weather today is", args);
        assertEquals(0, a.exitCode(), a.err());
        assertEquals(a.out(), b.out());
        args[args.length - 1] = "12";
        assertNotEquals(a.out(), CliRun.run("The weather today is", args).out());
    }

    @Test
    void samplingDefaultsAndEosIdsComeFromGenerationConfig() throws Exception {
        Path withConfig = work.resolve("with-generation-config");
        Files.createDirectories(withConfig);
        for (Path f : Files.newDirectoryStream(model)) Files.copy(f, withConfig.resolve(f.getFileName()));
        Files.writeString(withConfig.resolve("generation_config.json"),
                "{\"do_sample\": true, \"eos_token_id\": [151645, 151643], \"temperature\": 0.7, \"top_k\": 20, \"top_p\": 0.8}");
        CliRun r = CliRun.run("", "generate", "--model", withConfig.toString(), "--tokenizer", tokenizer, "--prompt", "hi",
                "--max-new-tokens", "3", "--top-k", "5");
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.err().contains("temperature=0.7 top-k=5 top-p=0.8"), r.err()); // the command line wins over the file
        assertTrue(r.err().contains("eos [151645, 151643]"), r.err());
    }

    @Test
    void cudaIsRefusedUntilTheRunnerExists() {
        CliRun r = CliRun.run("", "generate", "--model", model.toString(), "--tokenizer", tokenizer, "--prompt", "hi", "--device", "cuda");
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode());
        assertTrue(r.err().contains("the CUDA backend is not available"), r.err());
    }

    @Test
    void aCheckpointWithoutTokenizerAsksForOne() {
        CliRun r = CliRun.run("", "generate", "--model", model.toString(), "--prompt", "hi");
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode());
        assertTrue(r.err().contains("tokenizer.json is missing") && r.err().contains("--tokenizer"), r.err());
    }

    @Test
    void aPromptLongerThanTheContextIsRefused() throws Exception {
        Path small = work.resolve("short-context");
        Files.createDirectories(small);
        for (Path f : Files.newDirectoryStream(model)) Files.copy(f, small.resolve(f.getFileName()));
        String config = Files.readString(small.resolve("config.json"));
        Files.writeString(small.resolve("config.json"), config.replaceFirst("\"max_position_embeddings\"\\s*:\\s*\\d+", "\"max_position_embeddings\": 8"));
        CliRun r = CliRun.run("", "generate", "--model", small.toString(), "--tokenizer", tokenizer, "--prompt", "one two three four five six seven eight nine ten");
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode(), r.err());
        assertTrue(r.err().contains("context holds 8"), r.err());
    }

    @Test
    void aTemplateJinjavaCannotRenderIsAClearError() throws Exception {
        Path tok = work.resolve("broken-template");
        Files.createDirectories(tok);
        Files.copy(Path.of(tokenizer, "tokenizer.json"), tok.resolve("tokenizer.json"));
        Files.writeString(tok.resolve("tokenizer_config.json"), "{\"chat_template\": \"{% for m in messages %}{{ m.content \"}");
        CliRun r = CliRun.run("", "generate", "--model", model.toString(), "--tokenizer", tok.toString(), "--chat", "--prompt", "hi");
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode());
        assertTrue(r.err().contains("chat template") && r.err().contains("cannot be rendered"), r.err());
    }

    @Test
    void noPromptAtAllIsAnError() {
        CliRun r = CliRun.run("", "generate", "--model", model.toString(), "--tokenizer", tokenizer);
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode());
        assertTrue(r.err().contains("no prompt"), r.err());
    }
}
