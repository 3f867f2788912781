package com.example.jnextsample;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
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
 * The README's commands, run as a reader would (a doc-test): every line of its {@code sh} blocks is either one of the
 * two Maven commands — the test command, which must be exactly what {@code .ci/run} runs, and the build, which that
 * run includes (verify packages every module before this test runs) — or it is run here with bash from the
 * repository's root and must exit 0. A checkpoint folder under /tmp is redirected to a temporary folder.
 */
class ReadmeCommandsTest {
    private static final Path REPO = Path.of(System.getProperty("jnext.repo")).toAbsolutePath().normalize();
    private static final String BUILD = "export JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64 && mvn -B -ntp -q package -DskipTests";

    static List<String> commands(String readme) {
        List<String> out = new ArrayList<>();
        Matcher m = Pattern.compile("(?ms)^```sh\\n(.*?)^```").matcher(readme);
        while (m.find()) for (String line : m.group(1).split("\n")) if (!line.isBlank()) out.add(line.strip());
        return out;
    }

    @Test
    void everyReadmeCommandRuns(@TempDir Path tmp) throws IOException, InterruptedException {
        List<String> commands = commands(Files.readString(REPO.resolve("README.md")));
        String ci = Files.readAllLines(REPO.resolve(".ci/run")).getLast().strip();
        assertTrue(commands.contains(ci), "the README must show the command .ci/run runs: " + ci);
        assertTrue(commands.contains(BUILD), "the README's build command changed; this test knows: " + BUILD);
        int ran = 0;
        for (String c : commands) {
            if (c.equals(ci) || c.equals(BUILD)) continue;
            assertFalse(c.contains("mvn "), "a Maven command this test does not know: " + c);
            String cmd = c.replace("/tmp/jnext-small", tmp.resolve("jnext-small").toString());
            Path log = tmp.resolve("command-" + ran + ".log");
            Process p = new ProcessBuilder("bash", "-c", cmd).directory(REPO.toFile()).redirectErrorStream(true)
                    .redirectOutput(log.toFile()).start();
            boolean done = p.waitFor(15, TimeUnit.MINUTES);
            if (!done) p.destroyForcibly();
            String out = Files.readString(log, StandardCharsets.UTF_8);
            assertTrue(done, "timed out: " + c + "\n" + out);
            assertEquals(0, p.exitValue(), c + "\n" + out);
            ran++;
        }
        assertTrue(ran >= 1, "the README's main job ran");
    }
}
