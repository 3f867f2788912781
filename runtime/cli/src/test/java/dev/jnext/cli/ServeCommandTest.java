package dev.jnext.cli;

import dev.jnext.model.TestCheckpoints;
import dev.jnext.tokenizer.TestTokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code jnext serve} as a real process: SIGTERM ends a running stream with an error event and the process exits 0,
 * also when it comes during start-up; keys that clients could never send are refused before anything loads.
 */
class ServeCommandTest {

    /** A {@code java} command line that runs jnext's Main from the test's class and module path. */
    static List<String> javaMain(String... args) {
        String classPath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        // the tests run on the module path, where jnext's own classes are not on the class path: the child gets both
        String modulePath = System.getProperty("jdk.module.path", "");
        if (!modulePath.isEmpty()) classPath = modulePath + java.io.File.pathSeparator + classPath;
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        List<String> command = new ArrayList<>(List.of(java.toString(), "--enable-native-access=ALL-UNNAMED", "-cp", classPath, "dev.jnext.cli.Main"));
        command.addAll(List.of(args));
        return command;
    }

    @Test
    @Timeout(120)
    void sigtermDrainsEndsStreamsAndExitsZero(@TempDir Path tmp) throws Exception {
        Path log = tmp.resolve("stderr.txt");
        Process p = new ProcessBuilder(javaMain("serve", "--model", TestCheckpoints.tinyQwen().toString(),
                "--tokenizer", TestTokenizers.qwen3Dir().toString(), "--port", "0", "--drain-timeout", "1",
                "--max-sequences", "2")).redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(log.toFile()).start();
        try {
            // stderr goes to a file: reading a pipe of a process that exits races with its closing
            Pattern serving = Pattern.compile("jnext: serving .* on http://127\\.0\\.0\\.1:(\\d+)/v1");
            int port = -1;
            while (port < 0 && p.isAlive()) {
                Matcher m = serving.matcher(Files.readString(log));
                if (m.find()) port = Integer.parseInt(m.group(1));
                else Thread.sleep(50);
            }
            assertTrue(port > 0, "no serving line: " + Files.readString(log));

            HttpClient http = HttpClient.newHttpClient();
            String body = "{\"model\": \"" + TestCheckpoints.tinyQwen().getFileName() + "\", \"prompt\": \"go\", "
                    + "\"max_tokens\": 100000, \"ignore_eos\": true, \"stream\": true}";
            HttpResponse<InputStream> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/v1/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofInputStream());
            assertEquals(200, r.statusCode());
            BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8));
            List<String> events = new ArrayList<>();
            for (String line; events.size() < 3 && (line = in.readLine()) != null; ) if (line.startsWith("data: ")) events.add(line);

            p.destroy(); // SIGTERM
            for (String line; (line = in.readLine()) != null; ) if (line.startsWith("data: ")) events.add(line);
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the server did not exit");
            String stderr = Files.readString(log);
            assertEquals(0, p.exitValue(), stderr);
            assertEquals("data: [DONE]", events.getLast());
            assertTrue(events.get(events.size() - 2).contains("\"code\":\"shutting_down\""), events.get(events.size() - 2));
            assertTrue(stderr.contains("jnext: shutting down") && stderr.contains("jnext: stopped"), stderr);
        } finally {
            p.destroyForcibly();
        }
    }

    @Test
    void aPublicHostWithoutKeyIsRefusedBeforeLoading() {
        org.junit.jupiter.api.Assumptions.assumeTrue(System.getenv("JNEXT_API_KEY") == null, "JNEXT_API_KEY is set here");
        CliRun r = CliRun.run("", "serve", "--model", "/nonexistent", "--host", "0.0.0.0");
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode(), r.err());
        assertTrue(r.err().contains("not a loopback address") && r.err().contains("--api-key"), r.err());
    }

    @Test
    @Timeout(120)
    void sigtermDuringStartUpExitsZeroLikeTheDrain(@TempDir Path tmp) throws Exception {
        Path log = tmp.resolve("stderr.txt");
        Process p = new ProcessBuilder(javaMain("serve", "--model", TestCheckpoints.tinyQwen().toString(),
                "--tokenizer", TestTokenizers.qwen3Dir().toString(), "--port", "0"))
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(log.toFile()).start();
        try {
            // the signal as soon as serve has begun to load: the tokenizer and the model take far longer than this
            while (p.isAlive() && !Files.readString(log).contains("jnext: loading")) Thread.sleep(5);
            assertTrue(p.isAlive(), Files.readString(log));
            p.destroy(); // SIGTERM
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the server did not exit");
            String stderr = Files.readString(log);
            assertEquals(0, p.exitValue(), stderr);
            assertTrue(stderr.contains("jnext: shutting down during start-up") && stderr.contains("jnext: stopped"), stderr);
            assertFalse(stderr.contains("jnext: serving"), stderr);
        } finally {
            p.destroyForcibly();
        }
    }

    @Test
    void aBlankApiKeyIsRefusedAtStartInOneLine() {
        for (String key : new String[]{" ", "   ", "\t"}) {
            CliRun r = CliRun.run("", "serve", "--model", "/nonexistent", "--api-key", key);
            assertEquals(Main.EXIT_USER_ERROR, r.exitCode(), r.err());
            assertTrue(r.err().startsWith("jnext: --api-key") && r.err().strip().lines().count() == 1, r.err());
        }
    }

    @Test
    @Timeout(60)
    void aBlankJnextApiKeyFromTheEnvironmentIsRefusedAtStart(@TempDir Path tmp) throws Exception {
        Path log = tmp.resolve("stderr.txt");
        ProcessBuilder pb = new ProcessBuilder(javaMain("serve", "--model", "/nonexistent", "--port", "0"))
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(log.toFile());
        pb.environment().put("JNEXT_API_KEY", "  ");
        Process p = pb.start();
        try {
            assertTrue(p.waitFor(50, TimeUnit.SECONDS));
            String stderr = Files.readString(log);
            assertEquals(Main.EXIT_USER_ERROR, p.exitValue(), stderr);
            assertTrue(stderr.contains("JNEXT_API_KEY") && stderr.strip().lines().count() == 1, stderr);
        } finally {
            p.destroyForcibly();
        }
    }
}
