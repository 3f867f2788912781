package dev.jnext.fuzz;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jnext.cli.Main;
import dev.jnext.model.weights.Checkpoint;
import dev.jnext.model.DType;
import dev.jnext.model.SyntheticCheckpoint;
import dev.jnext.model.TinyModels;
import dev.jnext.tokenizer.TestTokenizers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The corpus through the command line, as a user meets it: {@code jnext score} on checkpoints with each corpus
 * config.json, index and safetensors file exits 0, or exits 2 with exactly one line on stderr that names the file
 * and says what is wrong (never an internal error or a stack trace); {@code jnext tokenize --chat} prints every
 * hostile message content verbatim inside its prompt.
 */
class CliCorpusTest {
    static final FuzzTally TALLY = new FuzzTally("corpus through the CLI (score, tokenize --chat)");
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path tmp;

    record Run(int exitCode, String out, String err) {}

    static synchronized Run run(String stdin, String... args) {
        InputStream savedIn = System.in;
        PrintStream savedOut = System.out;
        StringWriter out = new StringWriter(), err = new StringWriter();
        ByteArrayOutputStream stdout = new ByteArrayOutputStream();
        try {
            System.setIn(new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8)));
            System.setOut(new PrintStream(stdout, true, StandardCharsets.UTF_8)); // score prints its table there
            var cl = Main.commandLine();
            cl.setOut(new PrintWriter(out, true));
            cl.setErr(new PrintWriter(err, true));
            int code = cl.execute(args);
            return new Run(code, out + stdout.toString(StandardCharsets.UTF_8), err.toString());
        } finally {
            System.setIn(savedIn);
            System.setOut(savedOut);
        }
    }

    @AfterAll
    static void report() {
        TALLY.report();
    }

    /** Exit 0 when the corpus expects acceptance, else exit 2 with one stderr line containing the phrase and the folder. */
    static void expect(Path dir, Corpus.Entry e, boolean accepted, String phrase) {
        Run r = run("", "score", "--model", dir.toString(), "--ids", "1,2,3");
        String label = e.name() + ": exit " + r.exitCode() + ", stderr " + r.err();
        if (accepted) {
            assertEquals(0, r.exitCode(), label);
            TALLY.count(FuzzTally.Outcome.ACCEPTED);
        } else {
            assertEquals(2, r.exitCode(), label);
            assertTrue(r.err().startsWith("jnext: ") && r.err().strip().lines().count() == 1, label);
            assertTrue(r.err().contains(dir.toString()) && (phrase == null || r.err().contains(phrase)), label);
            TALLY.count(FuzzTally.Outcome.CLEAN_ERROR);
        }
    }

    @Test
    void scoreOnEveryCorpusConfig() throws IOException {
        Path dir = TinyModels.write(tmp.resolve("config"), TinyModels.config(true, DType.F32), 3,
                SyntheticCheckpoint.ExpertLayout.HUB, Long.MAX_VALUE);
        for (Corpus.Entry e : Corpus.entries("config")) {
            Files.write(dir.resolve("config.json"), e.bytes());
            expect(dir, e, e.accepted(), e.phrase());
        }
    }

    @Test
    void scoreOnEveryCorpusIndex() throws IOException {
        Path dir = TinyModels.write(tmp.resolve("index"), TinyModels.config(true, DType.BF16), 3,
                SyntheticCheckpoint.ExpertLayout.HUB, 20_000);
        for (Corpus.Entry e : Corpus.entries("index")) {
            Files.write(dir.resolve(Checkpoint.INDEX_FILE), e.bytes());
            expect(dir, e, e.accepted(), e.phrase());
        }
    }

    @Test
    void scoreOnEveryCorpusSafetensorsFile() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("safetensors"));
        Files.writeString(dir.resolve("config.json"), TinyModels.config(true, DType.F32).toJson());
        for (Corpus.Entry e : Corpus.entries("safetensors")) {
            Files.write(dir.resolve(Checkpoint.SINGLE_FILE), e.bytes());
            // a file the format accepts still lacks this model's tensors: then the load names the first missing one
            expect(dir, e, false, e.accepted() ? "missing tensor 'model.embed_tokens.weight'" : e.phrase());
        }
    }

    @Test
    void tokenizeChatPrintsEveryHostileContentVerbatim() throws IOException {
        List<String> contents = new ArrayList<>();
        StringBuilder stdin = new StringBuilder();
        for (String line : Files.readAllLines(Corpus.dir("chat").resolve("contents.jsonl"), StandardCharsets.UTF_8)) {
            if (line.isBlank()) continue;
            String c = JSON.readValue(line, String.class);
            contents.add(c);
            stdin.append(JSON.writeValueAsString(List.of(Map.of("role", "system", "content", c),
                    Map.of("role", "user", "content", c)))).append('\n');
        }
        Run r = run(stdin.toString(), "tokenize", "--tokenizer", TestTokenizers.qwen3Dir().toString(), "--chat");
        assertEquals(0, r.exitCode(), r.err());
        List<String> prompts = r.out().lines().map(l -> {
            try {
                return JSON.readTree(l).get("prompt").asText();
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
        }).toList();
        assertEquals(contents.size(), prompts.size());
        for (int i = 0; i < contents.size(); i++) {
            String c = contents.get(i);
            assertEquals("<|im_start|>system\n" + c + "<|im_end|>\n<|im_start|>user\n" + c + "<|im_end|>\n<|im_start|>assistant\n",
                    prompts.get(i));
            TALLY.count(FuzzTally.Outcome.ACCEPTED);
        }
    }
}
