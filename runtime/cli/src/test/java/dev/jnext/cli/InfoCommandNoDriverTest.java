package dev.jnext.cli;

import dev.jnext.gpu.Cuda;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/** Without a driver (development machine, CI) {@code jnext info} still works and says so. */
class InfoCommandNoDriverTest {
    @Test
    void infoCommandWorksWithoutADriver() {
        assumeFalse(Cuda.driverPresent(), "this machine has a CUDA driver; the GPU tests cover it");
        PrintStream old = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
        int rc;
        try {
            rc = Main.run("info");
        } finally {
            System.setOut(old);
        }
        String out = buf.toString(StandardCharsets.UTF_8);
        assertEquals(0, rc, out);
        assertTrue(out.contains("jvm         " + Runtime.version()), out);
        assertTrue(out.contains("no CUDA driver found"), out);
    }
}
