package dev.jnext.gpu;

import dev.jnext.bindings.cuda.CudaDriver;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** A non-blocking CUDA stream (never the legacy default stream, which cannot be captured). */
public final class Stream implements AutoCloseable {
    private final Gpu gpu;
    private MemorySegment handle;

    private Stream(Gpu gpu, MemorySegment handle) {
        this.gpu = gpu;
        this.handle = handle;
    }

    static Stream create(Gpu gpu) {
        gpu.bindThread();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            Cuda.check(CudaDriver.cuStreamCreate(p, CudaDriver.CU_STREAM_NON_BLOCKING()), "cuStreamCreate");
            gpu.objectCreated();
            return new Stream(gpu, p.get(ValueLayout.ADDRESS, 0));
        }
    }

    /** The CUstream handle. */
    public MemorySegment handle() {
        if (handle == null) throw new IllegalStateException("stream is closed");
        return handle;
    }

    /** The device the stream belongs to. */
    public Gpu gpu() {
        return gpu;
    }

    /** Blocks until all work queued on this stream has finished. */
    public void synchronize() {
        gpu.bindThread();
        Cuda.check(CudaDriver.cuStreamSynchronize(handle()), "cuStreamSynchronize");
    }

    /** Makes later work on this stream wait for {@code event}. */
    public void waitFor(Event event) {
        Cuda.check(CudaDriver.cuStreamWaitEvent(handle(), event.handle(), 0), "cuStreamWaitEvent");
    }

    /** True while this stream is being captured into a graph. */
    public boolean isCapturing() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(ValueLayout.JAVA_INT);
            Cuda.check(CudaDriver.cuStreamIsCapturing(handle(), s), "cuStreamIsCapturing");
            return s.get(ValueLayout.JAVA_INT, 0) != CudaDriver.CU_STREAM_CAPTURE_STATUS_NONE();
        }
    }

    @Override
    public void close() {
        if (handle == null) return;
        gpu.bindThread();
        int rc = CudaDriver.cuStreamDestroy_v2(handle);
        handle = null;
        gpu.objectClosed();
        Cuda.check(rc, "cuStreamDestroy_v2");
    }
}
