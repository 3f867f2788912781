package dev.jnext.cli;

import dev.jnext.tokenizer.TestTokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Options that mean the same are the same on every command, are checked before any work, and name their folder. */
class CommandOptionsTest {
    private static final List<String> MODEL_COMMANDS = List.of("generate", "score");
    private final String tokenizer = TestTokenizers.qwen3Dir().toString();

    @Test
    void everyModelCommandHasTheSameModelTokenizerAndDeviceOptions() {
        Map<String, CommandLine> commands = Main.commandLine().getSubcommands();
        OptionSpec[] reference = null;
        for (String name : MODEL_COMMANDS) {
            var spec = commands.get(name).getCommandSpec();
            OptionSpec[] shared = {spec.findOption("--model"), spec.findOption("--tokenizer"), spec.findOption("--device")};
            for (OptionSpec o : shared) assertNotNull(o, name + " lacks one of --model, --tokenizer, --device");
            if (reference == null) {
                reference = shared;
                continue;
            }
            for (int i = 0; i < shared.length; i++) {
                assertEquals(Arrays.asList(reference[i].description()), Arrays.asList(shared[i].description()), name + " " + shared[i].longestName());
                assertEquals(reference[i].paramLabel(), shared[i].paramLabel());
                assertEquals(reference[i].type(), shared[i].type());
            }
        }
        // every command with a --model is one of them, so a new command cannot drift unnoticed; info only describes a
        // checkpoint (runs nothing, needs no tokenizer, and its --device is a GPU ordinal), but means the same folder
        OptionSpec infoModel = commands.get("info").getCommandSpec().findOption("--model");
        assertEquals(Arrays.asList(reference[0].description()), Arrays.asList(infoModel.description()));
        assertEquals(reference[0].paramLabel(), infoModel.paramLabel());
        assertEquals(reference[0].type(), infoModel.type());
        for (var e : commands.entrySet()) {
            if (e.getValue().getCommandSpec().findOption("--model") != null && !e.getKey().equals("info")) {
                assertTrue(MODEL_COMMANDS.contains(e.getKey()) || e.getValue().getCommandSpec().findOption("--tokenizer") != null,
                        e.getKey() + " has --model but not the shared options");
            }
        }
    }

    @Test
    void scoreTextTakesTheTokenizerOption(@TempDir Path tmp) {
        Path model = tmp.resolve("tiny");
        CliRun s = CliRun.run("", "synth", "--preset", "tiny", "--layers", "1", "--vocab-size", "151936", "--out", model.toString());
        assertEquals(0, s.exitCode(), s.err());
        assertTrue(s.out().startsWith("wrote " + model + ": 1 layer, 8 experts, BF16, "), s.out());
        CliRun r = CliRun.run("", "score", "--model", model.toString(), "--tokenizer", tokenizer, "--text", "Hello world");
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().startsWith("pos\ttoken_id\tlog_prob\ttoken\n0\t9707\t-\tHello\n1\t1879\t"), r.out());
        assertTrue(r.out().contains("tokens: 2, scored: 1"), r.out());
    }

    /** The CPU backend is the exact reference of the checkpoint as stored: it refuses to quantize while loading. */
    @Test
    void quantizingWhileLoadingIsRefusedOnTheCpuWithOneLine(@TempDir Path tmp) {
        Path model = tmp.resolve("tiny");
        assertEquals(0, CliRun.run("", "synth", "--preset", "tiny", "--layers", "1", "--out", model.toString()).exitCode());
        CliRun r = CliRun.run("", "score", "--model", model.toString(), "--ids", "1,2,3", "--device", "cpu", "--quantize", "fp8");
        assertEquals(2, r.exitCode(), r.err());
        assertTrue(r.err().contains("quantization fp8 while loading is a CUDA backend feature")
                && r.err().contains("runs the checkpoint as stored") && !r.err().contains("\tat "), r.err());
    }

    @Test
    void everyOptionIsCheckedBeforeTheModelIsRead(@TempDir Path tmp) throws Exception {
        // a model folder whose config.json cannot be parsed: any error about an option must come before reading it
        Path broken = tmp.resolve("broken");
        Files.createDirectories(broken);
        Files.writeString(broken.resolve("config.json"), "{");
        Files.writeString(broken.resolve("tokenizer.json"), "{");
        String m = broken.toString();
        Map<List<String>, String> cases = Map.ofEntries(
                Map.entry(List.of("generate", "--model", m, "--prompt", "hi", "--max-new-tokens", "-5"), "--max-new-tokens must be at least 1, got -5"),
                Map.entry(List.of("generate", "--model", m, "--prompt", "hi", "--temperature", "-1"), "--temperature must be >= 0"),
                Map.entry(List.of("generate", "--model", m, "--prompt", "hi", "--top-k", "-1"), "--top-k must be >= 0"),
                Map.entry(List.of("generate", "--model", m, "--prompt", "hi", "--top-p", "0"), "--top-p must be in (0, 1]"),
                Map.entry(List.of("generate", "--model", m, "--prompt", "hi", "--min-p", "1"), "--min-p must be in [0, 1)"),
                Map.entry(List.of("generate", "--model", m, "--prompt", "hi", "--repetition-penalty", "0"), "--repetition-penalty must be > 0"),
                Map.entry(List.of("generate", "--model", m, "--prompt", "hi", "--presence-penalty", "NaN"), "--presence-penalty must be a finite number"),
                Map.entry(List.of("generate", "--model", m, "--prompt", "hi", "--stop", ""), "--stop needs a non-empty text"),
                Map.entry(List.of("generate", "--model", m, "--prompt", "hi", "--system", "x"), "--system needs --chat"),
                Map.entry(List.of("generate", "--model", m, "--prompt", "hi", "--no-thinking"), "--no-thinking needs --chat"),
                Map.entry(List.of("generate", "--model", m, "--prompt", "hi", "--device", "gpu"), "--device"),
                Map.entry(List.of("generate", "--model", m, "--prompt", "hi", "--quantize", "int4"), "--quantize must be none or fp8, got \"int4\""),
                Map.entry(List.of("score", "--model", m, "--ids", "1", "--quantize", "fp4"), "--quantize must be none or fp8, got \"fp4\""),
                Map.entry(List.of("generate", "--model", m, "--prompt", "hi", "--max-new-tokens", "many"), "'many' is not an int"),
                Map.entry(List.of("generate", "--model", m, "--prompt", "hi", "--max-prefill-chunk", "0"), "prefill chunk must be at least 1"),
                Map.entry(List.of("generate", "--model", m, "--prompt", "hi", "--prefix-cache", "yes"), "--prefix-cache must be on or off, got \"yes\""),
                Map.entry(List.of("generate", "--model", m, "--prompt", "hi", "--prefix-cache-kv", "lots"), "--prefix-cache-kv must be a byte count"),
                Map.entry(List.of("generate", "--model", m, "--prompt", "hi", "--prefix-cache-snapshots", "-1"), "--prefix-cache-snapshots must be a byte count"),
                Map.entry(List.of("generate", "--model", m, "--prompt", "hi", "--prefix-cache-interval", "0"), "--prefix-cache-interval must be at least 1"),
                Map.entry(List.of("score", "--model", m, "--ids", "1,x"), "--ids: \"x\" is not a token id"),
                Map.entry(List.of("score", "--model", m, "--text", ""), "--text is empty"),
                Map.entry(List.of("score", "--model", m, "--ids", "1", "--device", "gpu"), "--device"),
                Map.entry(List.of("score", "--model", m, "--ids", "1", "--decode-from", "0"), "--decode-from must be at least 1"),
                Map.entry(List.of("score", "--model", m, "--ids", "1", "--logits-out", tmp.resolve("no/such/l.npy").toString()), "--logits-out"),
                Map.entry(List.of("synth", "--preset", "tiny", "--layers", "0", "--out", tmp.resolve("s").toString()), "--layers must be at least 1"),
                Map.entry(List.of("synth", "--preset", "tiny", "--vocab-size", "0", "--out", tmp.resolve("s").toString()), "--vocab-size must be at least 1"),
                Map.entry(List.of("synth", "--preset", "tiny", "--shard-size-mb", "0", "--out", tmp.resolve("s").toString()), "--shard-size-mb must be positive"));
        List<String> failures = new ArrayList<>();
        for (var c : cases.entrySet()) {
            // stdin holds a prompt too: it must not be read either before the options are checked
            CliRun r = CliRun.run("a prompt\n", c.getKey().toArray(String[]::new));
            String err = r.err().strip();
            boolean ok = r.exitCode() == Main.EXIT_USER_ERROR && err.startsWith("jnext: ") && err.contains(c.getValue())
                    && !err.contains("\n") && !err.contains("config.json") && r.stdinUnread() == "a prompt\n".length();
            if (!ok) failures.add(c.getKey() + " -> " + r.exitCode() + " " + err);
        }
        assertTrue(failures.isEmpty(), String.join("\n", failures));
        assertFalse(Files.exists(tmp.resolve("s")), "synth wrote nothing");
    }

    @Test
    void aMissingModelFolderIsOneMessageNamingItForEveryCommand(@TempDir Path tmp) throws Exception {
        Path missing = tmp.resolve("no-such-model");
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        Path file = Files.writeString(tmp.resolve("a-file"), "x");
        for (String command : MODEL_COMMANDS) {
            String[] input = command.equals("generate") ? new String[]{"--prompt", "hi"} : new String[]{"--ids", "1,2"};
            assertEquals("jnext: --model " + missing + ": no such folder", runWith(command, missing, input));
            assertEquals("jnext: --model " + file + ": not a folder", runWith(command, file, input));
            assertEquals("jnext: --model " + empty + ": the folder has no config.json; --model must be a Hugging Face "
                    + "checkpoint folder (config.json and *.safetensors)", runWith(command, empty, input));
        }
        // the tokenizer folder: the same words, whichever command names it
        Path noTokenizer = Files.createDirectories(tmp.resolve("synthetic"));
        Files.writeString(noTokenizer.resolve("config.json"), "{}");
        String expected = "jnext: --model " + noTokenizer + ": the folder has no tokenizer.json (synthetic checkpoints have none); pass --tokenizer DIR";
        assertEquals(expected, runWith("generate", noTokenizer, "--prompt", "hi"));
        assertEquals(expected, runWith("score", noTokenizer, "--text", "hi"));
        for (String[] args : List.of(new String[]{"generate", "--model", noTokenizer.toString(), "--prompt", "hi", "--tokenizer", missing.toString()},
                new String[]{"score", "--model", noTokenizer.toString(), "--text", "hi", "--tokenizer", missing.toString()},
                new String[]{"tokenize", "--tokenizer", missing.toString()})) {
            CliRun r = CliRun.run("\"x\"\n", args);
            assertEquals(Main.EXIT_USER_ERROR, r.exitCode());
            assertEquals("jnext: --tokenizer " + missing + ": no such folder", r.err().strip(), args[0]);
        }
    }

    @Test
    void aBadCommandLineIsOneLineThatPointsToHelp() {
        CliRun r = CliRun.run("", "generate", "--prompt", "hi");
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode());
        assertEquals("jnext: Missing required option: '--model=DIR' (see jnext generate --help)", r.err().strip());
        r = CliRun.run("", "generat");
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode());
        assertTrue(r.err().strip().startsWith("jnext: Unmatched argument at index 0: 'generat'; did you mean generate?"), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        r = CliRun.run("", "score", "--model", "m");
        assertEquals("jnext: Missing required argument (specify one of these): (--text=TEXT | --ids=IDS) (see jnext score --help)",
                r.err().strip());
        r = CliRun.run("");
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode());
        assertTrue(r.err().startsWith("Usage: jnext ") && r.err().contains("generate"), "plain jnext lists the commands: " + r.err());
    }

    private static String runWith(String command, Path model, String... rest) {
        List<String> args = new ArrayList<>(List.of(command, "--model", model.toString()));
        args.addAll(List.of(rest));
        CliRun r = CliRun.run("", args.toArray(String[]::new));
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode(), r.err());
        return r.err().strip();
    }
}
