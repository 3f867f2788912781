package dev.jnext.gpu;

import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Finds {@code libcuda.so.1} and {@code libcublasLt.so.13} before the generated bindings are touched.
 * The bindings look the libraries up by soname; once a library is loaded (from any path) the dynamic
 * linker resolves that soname to it, so loading it here from a well-known directory is enough.
 */
final class NativeLibraries {
    private NativeLibraries() {}

    static final String DRIVER = "libcuda.so.1";
    static final String CUBLASLT = "libcublasLt.so.13";

    private static String driverProblem;
    private static boolean driverLoaded;
    private static String cublasProblem;
    private static boolean cublasLoaded;

    static synchronized void requireDriver() {
        if (driverLoaded) return;
        if (driverProblem == null) {
            driverProblem = load(DRIVER, List.of("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/local/nvidia/lib64",
                    "/usr/local/nvidia/lib", "/usr/lib/wsl/lib"));
            driverLoaded = driverProblem == null;
        }
        if (!driverLoaded) {
            throw new NoCudaDriverException("no CUDA driver found: " + driverProblem
                    + ". jnext needs an NVIDIA GPU with driver 580+ (CUDA 13); everything that needs no GPU still works.");
        }
    }

    static synchronized void requireCublasLt() {
        requireDriver();
        if (cublasLoaded) return;
        if (cublasProblem == null) {
            List<String> dirs = new ArrayList<>();
            for (String env : new String[] {"CUDA_HOME", "CUDA_PATH"}) {
                String v = System.getenv(env);
                if (v != null) dirs.add(v + "/lib64");
            }
            dirs.addAll(List.of("/usr/local/cuda/lib64", "/usr/local/cuda-13/lib64", "/usr/local/cuda-13.0/lib64",
                    "/usr/lib/x86_64-linux-gnu"));
            cublasProblem = load(CUBLASLT, dirs);
            cublasLoaded = cublasProblem == null;
        }
        if (!cublasLoaded) {
            throw new NoCudaDriverException("cuBLASLt not found: " + cublasProblem
                    + ". Install the CUDA 13 cuBLAS libraries or set CUDA_HOME.");
        }
    }

    static synchronized boolean driverPresent() {
        try {
            requireDriver();
            return true;
        } catch (NoCudaDriverException e) {
            return false;
        }
    }

    /** Loads a library by soname, then from each directory; returns null on success, else why not. */
    private static String load(String soname, List<String> dirs) {
        try {
            SymbolLookup.libraryLookup(soname, Arena.global());
            return null;
        } catch (IllegalArgumentException first) {
            for (String dir : dirs) {
                Path p = Path.of(dir, soname);
                if (Files.isRegularFile(p)) {
                    try {
                        SymbolLookup.libraryLookup(p, Arena.global());
                        return null;
                    } catch (IllegalArgumentException ignored) {
                        // try the next directory
                    }
                }
            }
            return soname + " could not be loaded (searched the linker path and " + String.join(", ", dirs) + ")";
        }
    }
}
