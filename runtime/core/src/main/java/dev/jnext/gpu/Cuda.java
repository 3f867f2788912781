package dev.jnext.gpu;

import dev.jnext.bindings.cuda.CudaDriver;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Driver-level entry points: availability, initialisation, version, and error checking of every call. */
public final class Cuda {
    private Cuda() {}

    private static boolean initialised;

    /** True when {@code libcuda.so.1} can be loaded (does not initialise the driver). */
    public static boolean driverPresent() {
        return NativeLibraries.driverPresent();
    }

    /** Loads and initialises the driver once; throws {@link NoCudaDriverException} without one. */
    public static synchronized void init() {
        if (initialised) return;
        NativeLibraries.requireDriver();
        check(CudaDriver.cuInit(0), "cuInit");
        initialised = true;
    }

    /** The driver's CUDA version as an int, e.g. 13000 for 13.0. */
    public static int driverVersion() {
        init();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ValueLayout.JAVA_INT);
            check(CudaDriver.cuDriverGetVersion(v), "cuDriverGetVersion");
            return v.get(ValueLayout.JAVA_INT, 0);
        }
    }

    /** Number of CUDA devices the driver sees. */
    public static int deviceCount() {
        init();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ValueLayout.JAVA_INT);
            check(CudaDriver.cuDeviceGetCount(v), "cuDeviceGetCount");
            return v.get(ValueLayout.JAVA_INT, 0);
        }
    }

    /** Throws a {@link CudaException} naming the call and the driver's error name unless rc is CUDA_SUCCESS. */
    public static void check(int rc, String call) {
        if (rc != 0) throw error(rc, call, null);
    }

    static CudaException error(int rc, String call, String detail) {
        return new CudaException(call, rc, errorName(rc), detail == null ? errorString(rc) : errorString(rc) + "; " + detail);
    }

    /** The driver's name for an error code, e.g. {@code CUDA_ERROR_OUT_OF_MEMORY}. */
    public static String errorName(int rc) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            if (CudaDriver.cuGetErrorName(rc, p) != 0) return "CUDA error " + rc;
            return p.get(ValueLayout.ADDRESS, 0).reinterpret(256).getString(0);
        }
    }

    static String errorString(int rc) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            if (CudaDriver.cuGetErrorString(rc, p) != 0) return "";
            return p.get(ValueLayout.ADDRESS, 0).reinterpret(1024).getString(0);
        }
    }
}
