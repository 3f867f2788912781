package dev.jnext.gpu;

import dev.jnext.bindings.cuda.CudaDriver;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One device with its primary context: the owner of everything allocated through it. Every
 * {@link DeviceBuffer}, {@link PinnedBuffer}, {@link Stream}, {@link Event}, {@link PtxModule},
 * {@link CudaGraph} and {@link Gemm} is {@link AutoCloseable} and has exactly one owner; the counters
 * here let tests prove that closing frees everything.
 */
public final class Gpu implements AutoCloseable {
    private final Device device;
    private final MemorySegment context;
    private final ThreadLocal<Boolean> bound = ThreadLocal.withInitial(() -> Boolean.FALSE);
    private final AtomicLong liveBuffers = new AtomicLong();
    private final AtomicLong liveBufferBytes = new AtomicLong();
    private final AtomicLong liveObjects = new AtomicLong();
    private volatile boolean closed;

    private Gpu(Device device, MemorySegment context) {
        this.device = device;
        this.context = context;
    }

    /** Opens device {@code ordinal} (retains its primary context and makes it current on this thread). */
    public static Gpu open(int ordinal) {
        Device device = Device.query(ordinal);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            Cuda.check(CudaDriver.cuDevicePrimaryCtxRetain(p, device.handle()), "cuDevicePrimaryCtxRetain");
            Gpu gpu = new Gpu(device, p.get(ValueLayout.ADDRESS, 0));
            gpu.bindThread();
            return gpu;
        }
    }

    /** The device's properties. */
    public Device device() {
        return device;
    }

    /** Makes this device's context current on the calling thread (cheap after the first call per thread). */
    public void bindThread() {
        checkOpen();
        if (!bound.get()) {
            Cuda.check(CudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent");
            bound.set(Boolean.TRUE);
        }
    }

    /** Device memory: {@code free} and {@code total} bytes, as the driver reports them. */
    public record MemoryInfo(long free, long total) {}

    /** Free and total device memory now. */
    public MemoryInfo memoryInfo() {
        bindThread();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment free = a.allocate(ValueLayout.JAVA_LONG);
            MemorySegment total = a.allocate(ValueLayout.JAVA_LONG);
            Cuda.check(CudaDriver.cuMemGetInfo_v2(free, total), "cuMemGetInfo_v2");
            return new MemoryInfo(free.get(ValueLayout.JAVA_LONG, 0), total.get(ValueLayout.JAVA_LONG, 0));
        }
    }

    /** Allocates {@code bytes} of device memory (256-byte aligned); {@code label} names it in errors. */
    public DeviceBuffer allocate(long bytes, String label) {
        return DeviceBuffer.allocate(this, bytes, label);
    }

    /** Allocates {@code bytes} of device memory (256-byte aligned), labelled "buffer". */
    public DeviceBuffer allocate(long bytes) {
        return allocate(bytes, "buffer");
    }

    /** Allocates {@code bytes} of page-locked host memory (for asynchronous copies). */
    public PinnedBuffer allocatePinned(long bytes) {
        return PinnedBuffer.allocate(this, bytes);
    }

    /** A new non-blocking stream. */
    public Stream createStream() {
        return Stream.create(this);
    }

    /** A new event; {@code timing} enables {@link Event#elapsedMillisSince}. */
    public Event createEvent(boolean timing) {
        return Event.create(this, timing);
    }

    /** Loads {@code dev/jnext/kernels/ptx/<name>.ptx} (jnext-kernels-ptx) and JIT-compiles it. */
    public PtxModule loadModule(String name) {
        return PtxModule.load(this, name);
    }

    /** Waits until all work of the context has completed. */
    public void synchronize() {
        bindThread();
        Cuda.check(CudaDriver.cuCtxSynchronize(), "cuCtxSynchronize");
    }

    /** Device buffers not yet closed. */
    public long liveBuffers() {
        return liveBuffers.get();
    }

    /** Bytes of the device buffers not yet closed. */
    public long liveBufferBytes() {
        return liveBufferBytes.get();
    }

    /** Streams, events, modules, graphs, pinned buffers and GEMM handles not yet closed. */
    public long liveObjects() {
        return liveObjects.get();
    }

    void bufferAllocated(long bytes) {
        liveBuffers.incrementAndGet();
        liveBufferBytes.addAndGet(bytes);
    }

    void bufferFreed(long bytes) {
        liveBuffers.decrementAndGet();
        liveBufferBytes.addAndGet(-bytes);
    }

    void objectCreated() {
        liveObjects.incrementAndGet();
    }

    void objectClosed() {
        liveObjects.decrementAndGet();
    }

    void checkOpen() {
        if (closed) throw new IllegalStateException("Gpu " + device.ordinal() + " is closed");
    }

    /** Releases the primary context. Objects still open are a leak: named in the exception. */
    @Override
    public void close() {
        if (closed) return;
        long buffers = liveBuffers.get(), objects = liveObjects.get();
        closed = true;
        Cuda.check(CudaDriver.cuDevicePrimaryCtxRelease_v2(device.handle()), "cuDevicePrimaryCtxRelease_v2");
        if (buffers != 0 || objects != 0) {
            throw new IllegalStateException("Gpu closed with " + buffers + " device buffers ("
                    + Bytes.human(liveBufferBytes.get()) + ") and " + objects + " other objects still open");
        }
    }

    @Override
    public String toString() {
        return "Gpu[" + device.ordinal() + ": " + device.name() + "]";
    }
}
