package com.example.jnextsample;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Runs the sample application as a user would, in fresh JVMs: on the module path and on the class path, with the
 * flags README.md's "Embedding jnext" names and nothing else, on a random tiny checkpoint with the real Qwen3
 * tokenizer. It must generate text, print nothing to stderr that it did not ask for, and its dependency tree must be
 * the README's listing.
 */
class SampleAppTest {
    private static final String MAIN = "com.example.jnextsample.Chat";
    private static final String MESSAGE = "Hello! What can you do?";
    private static final Path REPO = Path.of(System.getProperty("jnext.repo")).toAbsolutePath().normalize();
    private static final Path WORK = Path.of(System.getProperty("sample.work"));
    private static final Path TOKENIZER = REPO.resolve(".cache/tokenizer-qwen3");
    private static final Path MODEL = WORK.resolve("tiny-model");
    private static final String JAVA = ProcessHandle.current().info().command().orElse("java");

    /** What one JVM run printed. */
    private record Run(int exit, String stdout, String stderr) {}

    @BeforeAll
    static void checkpoint() throws Exception {
        assertTrue(Files.isRegularFile(TOKENIZER.resolve("tokenizer.json")),
                TOKENIZER + " has no tokenizer.json: build the repository first (the runtime's build fetches it)");
        Path cli = REPO.resolve("runtime/cli/target/jnext.jar");
        assertTrue(Files.isRegularFile(cli), cli + " is missing: build the repository first (mvn package)");
        Path config = MODEL.resolve("config.json");
        // kept between runs, rewritten by a newer jnext.jar (whose checkpoint format may have changed)
        if (Files.isRegularFile(config) && Files.getLastModifiedTime(config).compareTo(Files.getLastModifiedTime(cli)) > 0) return;
        deleteTree(MODEL);
        // the README's first command: a random 38 MiB checkpoint whose vocabulary holds the Qwen3 tokenizer's ids
        Path partial = WORK.resolve("tiny-model.partial");
        deleteTree(partial);
        Run r = run(List.of(JAVA, "-jar", cli.toString(), "synth", "--preset", "tiny", "--vocab-size", "151936",
                "--out", partial.toString()));
        assertEquals(0, r.exit(), "jnext synth failed: " + r.stderr());
        Files.move(partial, MODEL);
    }

    @Test
    void onTheModulePathItGeneratesAndStderrStaysEmpty() throws Exception {
        Run r = chat(modulePath("--enable-native-access=dev.jnext,dev.jnext.bindings"));
        assertEquals(0, r.exit(), r.stderr());
        assertEquals("", r.stderr(), "the application asked for no output on stderr");
        assertReply(r.stdout());
    }

    @Test
    void onTheClassPathItGeneratesTheSameTextAndJnextLogsOnlyWhenAsked() throws Exception {
        Run quiet = chat(classPath("--enable-native-access=ALL-UNNAMED"));
        assertEquals(0, quiet.exit(), quiet.stderr());
        assertEquals("", quiet.stderr(), "the application asked for no output on stderr");
        assertReply(quiet.stdout());
        assertEquals(chat(modulePath("--enable-native-access=dev.jnext,dev.jnext.bindings")).stdout(), quiet.stdout(),
                "greedy generation is the same on the class path and the module path");

        // the application's own logging configuration decides: jnext's info lines appear when it asks for them
        Run logged = chat(classPath("--enable-native-access=ALL-UNNAMED", "-Dorg.slf4j.simpleLogger.log.dev.jnext=info"));
        assertEquals(0, logged.exit(), logged.stderr());
        assertEquals(quiet.stdout(), logged.stdout());
        List<String> lines = logged.stderr().lines().toList();
        assertFalse(lines.isEmpty(), "info logging of dev.jnext was asked for");
        for (String line : lines) assertTrue(line.startsWith("[main] INFO dev.jnext."), "not a jnext log line: " + line);
        assertTrue(lines.stream().anyMatch(l -> l.contains(" - loaded " + MODEL)), logged.stderr());
    }

    @Test
    void withoutNativeAccessTheJdkWarnsWhichModuleNeedsIt() throws Exception {
        Run r = chat(modulePath());
        assertEquals(0, r.exit(), r.stderr());
        assertTrue(r.stderr().contains("Use --enable-native-access=dev.jnext to avoid a warning"), r.stderr());
    }

    @Test
    void aBadFolderIsOneLineOnStderrAndExitCode2() throws Exception {
        List<String> cmd = new ArrayList<>(modulePath("--enable-native-access=dev.jnext,dev.jnext.bindings"));
        cmd.addAll(List.of(MODEL.toString(), WORK.resolve("no-such-tokenizer").toString(), MESSAGE));
        Run r = run(cmd);
        assertEquals(2, r.exit(), r.stderr());
        assertEquals(1, r.stderr().lines().count(), r.stderr());
        assertTrue(r.stderr().startsWith("jnext-sample: ") && r.stderr().contains("no-such-tokenizer"), r.stderr());
    }

    @Test
    void theDependencyTreeIsTheReadmes() throws IOException {
        String tree = Files.readString(Path.of(System.getProperty("sample.tree"))).replace("\r\n", "\n").strip() + "\n";
        String readme = Files.readString(REPO.resolve("src/site/markdown/embedding.md"));
        assertTrue(readme.contains("```\n" + tree + "```\n"),
                "embedding.md's dependency tree of the sample application is out of date; the current one is:\n" + tree);
    }

    /** The reply, then the summary line; twelve tokens of a random model rarely hit an EOS id, but they may. */
    private static void assertReply(String stdout) {
        List<String> lines = stdout.lines().toList();
        assertTrue(lines.size() >= 2, stdout);
        String last = lines.getLast();
        assertTrue(last.matches("\\[\\d+ tokens on cpu, stopped: (MAX_TOKENS|EOS)]"), last);
        if (last.endsWith("MAX_TOKENS]")) {
            assertTrue(last.startsWith("[12 tokens "), last);
            assertFalse(stdout.substring(0, stdout.lastIndexOf(last)).isBlank(), "twelve tokens and no text: " + stdout);
        }
    }

    private static Run chat(List<String> launcher) throws Exception {
        List<String> cmd = new ArrayList<>(launcher);
        cmd.addAll(List.of(MODEL.toString(), TOKENIZER.toString(), MESSAGE, "12"));
        return run(cmd);
    }

    private static List<String> modulePath(String... jvmOptions) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(JAVA));
        cmd.addAll(Arrays.asList(jvmOptions));
        cmd.addAll(List.of("--module-path", appPath(), "--module", "com.example.jnextsample/" + MAIN));
        return cmd;
    }

    private static List<String> classPath(String... jvmOptions) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(JAVA));
        cmd.addAll(Arrays.asList(jvmOptions));
        cmd.addAll(List.of("--class-path", appPath(), MAIN));
        return cmd;
    }

    /** The application's classes and every jar it runs with (maven-dependency-plugin's runtime class path). */
    private static String appPath() throws IOException {
        String libs = Files.readString(Path.of(System.getProperty("sample.classpath"))).strip();
        return System.getProperty("sample.classes") + File.pathSeparator + libs;
    }

    private static Run run(List<String> cmd) throws Exception {
        Files.createDirectories(WORK);
        Path out = Files.createTempFile(WORK, "stdout", ".txt");
        Path err = Files.createTempFile(WORK, "stderr", ".txt");
        Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        if (!p.waitFor(3, TimeUnit.MINUTES)) {
            p.destroyForcibly();
            fail("no end after 3 minutes: " + String.join(" ", cmd));
        }
        Run r = new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
        Files.delete(out);
        Files.delete(err);
        return r;
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        try (var paths = Files.walk(dir)) {
            for (Path p : paths.sorted((a, b) -> b.getNameCount() - a.getNameCount()).toList()) Files.delete(p);
        }
    }
}
