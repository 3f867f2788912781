package dev.jnext.gpu;

import dev.jnext.bindings.cuda.CudaDriver;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** A CUDA event: ordering between streams and, when created with timing, GPU time measurement. */
public final class Event implements AutoCloseable {
    private final Gpu gpu;
    private MemorySegment handle;
    private final MemorySegment millis = Arena.ofAuto().allocate(ValueLayout.JAVA_FLOAT);

    private Event(Gpu gpu, MemorySegment handle) {
        this.gpu = gpu;
        this.handle = handle;
    }

    static Event create(Gpu gpu, boolean timing) {
        gpu.bindThread();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            int flags = timing ? CudaDriver.CU_EVENT_DEFAULT() : CudaDriver.CU_EVENT_DISABLE_TIMING();
            Cuda.check(CudaDriver.cuEventCreate(p, flags), "cuEventCreate");
            gpu.objectCreated();
            return new Event(gpu, p.get(ValueLayout.ADDRESS, 0));
        }
    }

    MemorySegment handle() {
        if (handle == null) throw new IllegalStateException("event is closed");
        return handle;
    }

    /** Records the event on {@code stream}: it completes when the stream's earlier work has. */
    public void record(Stream stream) {
        Cuda.check(CudaDriver.cuEventRecord(handle(), stream.handle()), "cuEventRecord");
    }

    /** Waits on the host until the event has completed. */
    public void synchronize() {
        Cuda.check(CudaDriver.cuEventSynchronize(handle()), "cuEventSynchronize");
    }

    /** GPU milliseconds from {@code start} to this event (both recorded, this one completed). */
    public float elapsedMillisSince(Event start) {
        Cuda.check(CudaDriver.cuEventElapsedTime_v2(millis, start.handle(), handle()), "cuEventElapsedTime_v2");
        return millis.get(ValueLayout.JAVA_FLOAT, 0);
    }

    @Override
    public void close() {
        if (handle == null) return;
        gpu.bindThread();
        int rc = CudaDriver.cuEventDestroy_v2(handle);
        handle = null;
        gpu.objectClosed();
        Cuda.check(rc, "cuEventDestroy_v2");
    }
}
