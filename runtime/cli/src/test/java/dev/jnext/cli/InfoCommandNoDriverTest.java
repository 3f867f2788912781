package dev.jnext.cli;

import dev.jnext.gpu.Cuda;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/** Without a driver (development machine, CI) {@code jnext info} still works and says so. */
class InfoCommandNoDriverTest {
    @Test
    void infoCommandWorksWithoutADriver() {
        assumeFalse(Cuda.driverPresent(), "this machine has a CUDA driver; the GPU tests cover it");
        CliRun run = CliRun.run("", "info");   // info writes to the command line's out, as the other commands do
        String out = run.out();
        assertEquals(0, run.exitCode(), out + run.err());
        assertTrue(out.contains("jvm         " + Runtime.version()), out);
        assertTrue(out.contains("no CUDA driver found"), out);
    }
}
