package dev.jnext.gpu;

import dev.jnext.cli.Main;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/** Without a driver (development machine, CI) GPU entry points fail with one clear message, never a linkage error. */
class NoDriverTest {
    @Test
    void gpuEntryPointsReportNoDriver() {
        assumeFalse(Cuda.driverPresent(), "this machine has a CUDA driver; the GPU tests cover it");
        NoCudaDriverException e = assertThrows(NoCudaDriverException.class, () -> Gpu.open(0));
        assertTrue(e.getMessage().startsWith("no CUDA driver found: libcuda.so.1 could not be loaded"), e.getMessage());
        assertThrows(NoCudaDriverException.class, Cuda::driverVersion);
        assertThrows(NoCudaDriverException.class, Gemm::libraryVersion);
        assertFalse(Cuda.driverPresent());
    }

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
