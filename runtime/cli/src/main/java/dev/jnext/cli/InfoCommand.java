package dev.jnext.cli;

import dev.jnext.gpu.Bytes;
import dev.jnext.gpu.Cuda;
import dev.jnext.gpu.CudaException;
import dev.jnext.gpu.Device;
import dev.jnext.gpu.Gemm;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.NoCudaDriverException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.concurrent.Callable;

/** {@code jnext info}: JVM, CUDA driver presence and the device's properties. */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Show the JVM and, if a CUDA driver is present, the GPU: name, SMs, memory, driver and cuBLASLt versions.")
public final class InfoCommand implements Callable<Integer> {
    @Option(names = "--device", paramLabel = "N", defaultValue = "0", description = "CUDA device ordinal (default: ${DEFAULT-VALUE}).")
    int ordinal;

    @Override
    public Integer call() {
        System.out.println("jnext       0.1.0");
        System.out.println("jvm         " + Runtime.version() + " (" + System.getProperty("java.vendor") + ", "
                + Runtime.getRuntime().availableProcessors() + " cpus, max heap " + Bytes.human(Runtime.getRuntime().maxMemory()) + ")");
        if (!Cuda.driverPresent()) {
            System.out.println("cuda        no CUDA driver found (libcuda.so.1 not loadable): CPU backend only");
            return 0;
        }
        try {
            int v = Cuda.driverVersion();
            System.out.println("cuda        driver API " + v / 1000 + "." + (v % 1000) / 10 + ", " + Cuda.deviceCount() + " device(s)");
            Device d = Device.query(ordinal);
            try (Gpu gpu = Gpu.open(ordinal)) {
                Gpu.MemoryInfo mem = gpu.memoryInfo();
                System.out.println("device " + d.ordinal() + "    " + d.name() + ", sm_" + d.computeMajor() + d.computeMinor()
                        + ", " + d.smCount() + " SMs, L2 " + Bytes.human(d.l2CacheBytes()));
                System.out.println("memory      " + Bytes.human(mem.total()) + " total, " + Bytes.human(mem.free()) + " free");
            }
            try {
                long lt = Gemm.libraryVersion();
                System.out.println("cublasLt    " + lt);
            } catch (NoCudaDriverException e) {
                System.out.println("cublasLt    not found: " + e.getMessage());
            }
        } catch (NoCudaDriverException e) {
            System.out.println("cuda        " + e.getMessage());
        } catch (CudaException e) {
            System.out.println("cuda        driver present but unusable: " + e.getMessage());
            return 1;
        }
        return 0;
    }
}
