package dev.jnext.gpu;

import org.junit.jupiter.api.Test;


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
}
