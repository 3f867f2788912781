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
    void thePrefixCacheFlagChangesNoToken() {
        String[] args = {"generate", "--model", model.toString(), "--tokenizer", tokenizer, "--max-new-tokens", "6",
                "--temperature", "1.0", "--seed", "5", "--prefix-cache", "off"};
        CliRun off = CliRun.run("The weather today is", args);
        args[args.length - 1] = "on";
        CliRun on = CliRun.run("The weather today is", append(args, "--prefix-cache-kv", "64m", "--prefix-cache-snapshots",
                "32MiB", "--prefix-cache-interval", "100"));
        assertEquals(0, on.exitCode(), on.err());
        assertEquals(off.out(), on.out());
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
    void cudaWithoutADriverIsOneLine() {
        org.junit.jupiter.api.Assumptions.assumeFalse(dev.jnext.gpu.Cuda.driverPresent(), "a CUDA driver is present");
        CliRun r = CliRun.run("", "generate", "--model", model.toString(), "--tokenizer", tokenizer, "--prompt", "hi", "--device", "cuda");
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode());
        assertTrue(r.err().startsWith("jnext: no CUDA driver found") && r.err().trim().lines().count() == 1, r.err());
    }

    @Test
    void aCheckpointWithoutTokenizerAsksForOne() {
        CliRun r = CliRun.run("", "generate", "--model", model.toString(), "--prompt", "hi");
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode());
        assertEquals("jnext: --model " + model + ": the folder has no tokenizer.json (synthetic checkpoints have none); pass --tokenizer DIR",
                r.err().strip());
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
    void aPromptFromStdinLosesOneFinalNewline() {
        String[] args = {"generate", "--model", model.toString(), "--tokenizer", tokenizer, "--max-new-tokens", "2"};
        CliRun piped = CliRun.run("Once upon a time\n", args);
        assertEquals(0, piped.exitCode(), piped.err());
        CliRun given = CliRun.run("", append(args, "--prompt", "Once upon a time"));
        assertTrue(piped.err().contains("prompt 4 tokens"), piped.err()); // Once, upon, a, time: no "\n" token
        assertTrue(given.err().contains("prompt 4 tokens"), given.err());
        assertEquals(given.out(), piped.out());
        assertTrue(CliRun.run("Once upon a time\r\n", args).err().contains("prompt 4 tokens"));
        // only one: a blank line the user meant stays
        CliRun two = CliRun.run("Once upon a time\n\n", args);
        assertEquals(CliRun.run("", append(args, "--prompt", "Once upon a time\n")).err().replaceAll("[0-9.]+ (s|ms|tok/s)", ""),
                two.err().replaceAll("[0-9.]+ (s|ms|tok/s)", ""));
        assertEquals("a\n", GenerateCommand.withoutFinalNewline("a\n\n"));
        assertEquals("a", GenerateCommand.withoutFinalNewline("a"));
        assertEquals("", GenerateCommand.withoutFinalNewline("\n"));
        String help = CliRun.run("", "generate", "--help").out().replaceAll("\\s+", " ");
        assertTrue(help.contains("default: stdin, without its final newline"), help);
    }

    private static String[] append(String[] args, String... more) {
        String[] all = java.util.Arrays.copyOf(args, args.length + more.length);
        System.arraycopy(more, 0, all, args.length, more.length);
        return all;
    }

    @Test
    void countsOfOneAreSingular() {
        String[] args = {"generate", "--model", model.toString(), "--tokenizer", tokenizer, "--prompt", "Hello", "--max-new-tokens", "2"};
        CliRun r = CliRun.run("", args);
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.err().contains("; prompt 1 token;"), r.err());
        assertTrue(r.err().matches("(?s).*prefill [0-9.]+ tok/s \\(1 token\\); decode [0-9.]+ tok/s \\(1 token\\);.*"), r.err());
        args[args.length - 1] = "1";
        r = CliRun.run("", args);
        assertTrue(r.err().contains("; no decode step;") && !r.err().contains("NaN"), r.err());
        assertEquals("1 token", Plural.of(1, "token"));
        assertEquals("0 tokens", Plural.of(0, "token"));
        assertEquals("2 layers", Plural.of(2, "layer"));
    }

    @Test
    void noPromptAtAllIsAnError() {
        CliRun r = CliRun.run("", "generate", "--model", model.toString(), "--tokenizer", tokenizer);
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode());
        assertTrue(r.err().contains("no prompt"), r.err());
    }
}
