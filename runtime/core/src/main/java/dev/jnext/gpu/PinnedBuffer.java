package dev.jnext.gpu;

import dev.jnext.bindings.cuda.CudaDriver;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Page-locked host memory ({@code cuMemHostAlloc}) for fast and asynchronous copies; freed on close. */
public final class PinnedBuffer implements AutoCloseable {
    private final Gpu gpu;
    private MemorySegment segment;

    private PinnedBuffer(Gpu gpu, MemorySegment segment) {
        this.gpu = gpu;
        this.segment = segment;
    }

    static PinnedBuffer allocate(Gpu gpu, long bytes) {
        if (bytes <= 0) throw new IllegalArgumentException("pinned buffer size must be positive, got " + bytes);
        gpu.bindThread();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            int rc = CudaDriver.cuMemHostAlloc(p, bytes, CudaDriver.CU_MEMHOSTALLOC_PORTABLE());
            if (rc == CudaDriver.CUDA_ERROR_OUT_OF_MEMORY()) {
                throw new DeviceOutOfMemoryException("pinned host", bytes, Runtime.getRuntime().freeMemory(), Runtime.getRuntime().maxMemory());
            }
            Cuda.check(rc, "cuMemHostAlloc(" + bytes + " bytes)");
            gpu.objectCreated();
            return new PinnedBuffer(gpu, p.get(ValueLayout.ADDRESS, 0).reinterpret(bytes));
        }
    }

    /** The pinned memory as a native segment (valid until {@link #close()}). */
    public MemorySegment segment() {
        if (segment == null) throw new IllegalStateException("pinned buffer is closed");
        return segment;
    }

    /** Size in bytes. */
    public long bytes() {
        return segment().byteSize();
    }

    @Override
    public void close() {
        if (segment == null) return;
        gpu.bindThread();
        int rc = CudaDriver.cuMemFreeHost(segment);
        segment = null;
        gpu.objectClosed();
        Cuda.check(rc, "cuMemFreeHost");
    }
}
