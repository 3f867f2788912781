package dev.jnext.gpu;

import dev.jnext.bindings.cuda.CudaDriver;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Properties of one CUDA device, read once from the driver. */
public record Device(int ordinal, String name, int smCount, int computeMajor, int computeMinor, long totalMemory,
                     int l2CacheBytes, int maxSharedMemoryPerBlockOptin, int maxThreadsPerBlock) {

    /** Reads device {@code ordinal}'s properties from the driver; a bad ordinal is a {@link CudaException}. */
    public static Device query(int ordinal) {
        Cuda.init();
        int count = Cuda.deviceCount();
        if (ordinal < 0 || ordinal >= count) {
            throw new CudaException("cuDeviceGet", 101, "CUDA_ERROR_INVALID_DEVICE",
                    "device " + ordinal + " requested, " + count + " present");
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment dev = a.allocate(ValueLayout.JAVA_INT);
            Cuda.check(CudaDriver.cuDeviceGet(dev, ordinal), "cuDeviceGet");
            int d = dev.get(ValueLayout.JAVA_INT, 0);
            MemorySegment name = a.allocate(256);
            Cuda.check(CudaDriver.cuDeviceGetName(name, 256, d), "cuDeviceGetName");
            MemorySegment total = a.allocate(ValueLayout.JAVA_LONG);
            Cuda.check(CudaDriver.cuDeviceTotalMem_v2(total, d), "cuDeviceTotalMem_v2");
            return new Device(ordinal, name.getString(0),
                    attribute(a, d, CudaDriver.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT()),
                    attribute(a, d, CudaDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR()),
                    attribute(a, d, CudaDriver.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR()),
                    total.get(ValueLayout.JAVA_LONG, 0),
                    attribute(a, d, CudaDriver.CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE()),
                    attribute(a, d, CudaDriver.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN()),
                    attribute(a, d, CudaDriver.CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK()));
        }
    }

    private static int attribute(Arena a, int dev, int attr) {
        MemorySegment v = a.allocate(ValueLayout.JAVA_INT);
        Cuda.check(CudaDriver.cuDeviceGetAttribute(v, attr, dev), "cuDeviceGetAttribute(" + attr + ")");
        return v.get(ValueLayout.JAVA_INT, 0);
    }

    /** The CUdevice handle (equals the ordinal for the driver API). */
    int handle() {
        return ordinal;
    }
}
