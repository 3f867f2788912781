package dev.jnext.gpu;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** kernels-ptx/build-ptx.sh fails with a clear message when nvcc is unusable. */
class PtxBuildScriptTest {
    @Test
    void missingNvccIsAClearBuildError() throws IOException, InterruptedException {
        Path script = Path.of("..", "..", "kernels-ptx", "build-ptx.sh");
        ProcessBuilder pb = new ProcessBuilder("bash", script.toString(), "../../kernels-ptx/src/main/cuda", "target/ptx-script-test")
                .redirectErrorStream(true);
        pb.environment().put("NVCC", "/nonexistent/nvcc");
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(1, p.waitFor(), out);
        assertTrue(out.contains("ERROR: NVCC=/nonexistent/nvcc is not an executable nvcc"), out);
    }

    @Test
    void cpuOnlyBuildsNeedNoNvccAndSaySo() throws IOException, InterruptedException {
        Path out = Path.of("target", "ptx-script-test-none");
        ProcessBuilder pb = new ProcessBuilder("bash", Path.of("..", "..", "kernels-ptx", "build-ptx.sh").toString(),
                "../../kernels-ptx/src/main/cuda", out.toString(), "none").redirectErrorStream(true);
        pb.environment().put("NVCC", "/nonexistent/nvcc");
        Process p = pb.start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), log);
        assertTrue(java.nio.file.Files.readString(out.resolve("NO-KERNELS.txt")).contains("mvn -Pcpu-only"));
        try (var files = java.nio.file.Files.list(out)) {
            assertTrue(files.noneMatch(f -> f.toString().endsWith(".ptx")));
        }
    }
}
