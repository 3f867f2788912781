package dev.jnext.gpu;

import dev.jnext.bindings.cuda.CudaDriver;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * One device allocation ({@code cuMemAlloc}), owned by whoever created it and freed on {@link #close()}.
 * Host sides of copies must be native segments (off-heap, mapped or pinned).
 */
public final class DeviceBuffer implements AutoCloseable {
    private final Gpu gpu;
    private final long bytes;
    private final String label;
    private long address;

    private DeviceBuffer(Gpu gpu, long address, long bytes, String label) {
        this.gpu = gpu;
        this.address = address;
        this.bytes = bytes;
        this.label = label;
    }

    static DeviceBuffer allocate(Gpu gpu, long bytes, String label) {
        if (bytes <= 0) throw new IllegalArgumentException("device buffer '" + label + "': size must be positive, got " + bytes);
        gpu.bindThread();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ValueLayout.JAVA_LONG);
            int rc = CudaDriver.cuMemAlloc_v2(p, bytes);
            if (rc == CudaDriver.CUDA_ERROR_OUT_OF_MEMORY()) {
                Gpu.MemoryInfo info = gpu.memoryInfo();
                throw new DeviceOutOfMemoryException("device (" + label + ")", bytes, info.free(), info.total());
            }
            Cuda.check(rc, "cuMemAlloc_v2(" + label + ", " + bytes + " bytes)");
            gpu.bufferAllocated(bytes);
            return new DeviceBuffer(gpu, p.get(ValueLayout.JAVA_LONG, 0), bytes, label);
        }
    }

    /** The device address (CUdeviceptr). */
    public long address() {
        if (address == 0) throw new IllegalStateException("device buffer '" + label + "' is closed");
        return address;
    }

    /** The device address {@code offset} bytes in, bounds-checked. */
    public long address(long offset) {
        if (offset < 0 || offset > bytes) {
            throw new IndexOutOfBoundsException("offset " + offset + " outside device buffer '" + label + "' of " + bytes + " bytes");
        }
        return address() + offset;
    }

    /** Size in bytes. */
    public long bytes() {
        return bytes;
    }

    /** The name given at allocation (in error messages). */
    public String label() {
        return label;
    }

    /** The device it lives on. */
    public Gpu gpu() {
        return gpu;
    }

    /**
     * Synchronous host-to-device copy of all of {@code src} to the start of this buffer: waits for all
     * device work first and returns when the data is on the device (streams here are non-blocking, so
     * the legacy stream's implicit ordering is not enough).
     */
    public void copyFromHost(MemorySegment src) {
        copyFromHost(src, 0);
    }

    /** Synchronous host-to-device copy of all of {@code src} to byte {@code dstOffset}: waits for all device work first. */
    public void copyFromHost(MemorySegment src, long dstOffset) {
        checkRange(dstOffset, src.byteSize());
        requireNative(src);
        gpu.bindThread();
        Cuda.check(CudaDriver.cuCtxSynchronize(), "cuCtxSynchronize");
        Cuda.check(CudaDriver.cuMemcpyHtoD_v2(address() + dstOffset, src, src.byteSize()), "cuMemcpyHtoD_v2(" + label + ")");
        Cuda.check(CudaDriver.cuCtxSynchronize(), "cuCtxSynchronize");
    }

    /** Synchronous device-to-host copy into all of {@code dst}: waits for all device work first. */
    public void copyToHost(MemorySegment dst) {
        copyToHost(dst, 0);
    }

    /** Synchronous device-to-host copy from byte {@code srcOffset} into all of {@code dst}: waits for all device work first. */
    public void copyToHost(MemorySegment dst, long srcOffset) {
        checkRange(srcOffset, dst.byteSize());
        requireNative(dst);
        gpu.bindThread();
        Cuda.check(CudaDriver.cuCtxSynchronize(), "cuCtxSynchronize");
        Cuda.check(CudaDriver.cuMemcpyDtoH_v2(dst, address() + srcOffset, dst.byteSize()), "cuMemcpyDtoH_v2(" + label + ")");
    }

    /** Stream-ordered host-to-device copy; {@code src} must stay valid until the stream reaches it (pin it for overlap). */
    public void copyFromHostAsync(MemorySegment src, long dstOffset, Stream stream) {
        checkRange(dstOffset, src.byteSize());
        requireNative(src);
        Cuda.check(CudaDriver.cuMemcpyHtoDAsync_v2(address() + dstOffset, src, src.byteSize(), stream.handle()),
                "cuMemcpyHtoDAsync_v2(" + label + ")");
    }

    /** Stream-ordered device-to-host copy from byte {@code srcOffset} into all of {@code dst} (pinned, to overlap). */
    public void copyToHostAsync(MemorySegment dst, long srcOffset, Stream stream) {
        checkRange(srcOffset, dst.byteSize());
        requireNative(dst);
        Cuda.check(CudaDriver.cuMemcpyDtoHAsync_v2(dst, address() + srcOffset, dst.byteSize(), stream.handle()),
                "cuMemcpyDtoHAsync_v2(" + label + ")");
    }

    /** Stream-ordered device-to-device copy of {@code bytes} from {@code src} into this buffer. */
    public void copyFrom(DeviceBuffer src, long srcOffset, long dstOffset, long count, Stream stream) {
        checkRange(dstOffset, count);
        src.checkRange(srcOffset, count);
        Cuda.check(CudaDriver.cuMemcpyDtoDAsync_v2(address() + dstOffset, src.address() + srcOffset, count, stream.handle()),
                "cuMemcpyDtoDAsync_v2(" + src.label + " -> " + label + ")");
    }

    /** Sets every byte to {@code value}, stream-ordered. */
    public void fill(byte value, Stream stream) {
        Cuda.check(CudaDriver.cuMemsetD8Async(address(), value, bytes, stream.handle()), "cuMemsetD8Async(" + label + ")");
    }

    /** Sets {@code count} bytes from byte {@code offset} to {@code value}, stream-ordered (a memset node inside a capture). */
    public void fill8(long offset, long count, byte value, Stream stream) {
        checkRange(offset, count);
        if (count == 0) return;
        Cuda.check(CudaDriver.cuMemsetD8Async(address() + offset, value, count, stream.handle()),
                "cuMemsetD8Async(" + label + ", offset " + offset + ", " + count + " bytes)");
    }

    /** Sets every 16-bit word of the buffer to {@code pattern} (e.g. a bf16 NaN to poison outputs); the size must be a multiple of 4. */
    public void fill16(short pattern, Stream stream) {
        if (bytes % 4 != 0) throw new IllegalArgumentException("fill16 needs a size that is a multiple of 4 bytes: " + label);
        int word = (pattern & 0xffff) | ((pattern & 0xffff) << 16);
        Cuda.check(CudaDriver.cuMemsetD32Async(address(), word, bytes / 4, stream.handle()), "cuMemsetD32Async(" + label + ")");
    }

    /** Sets every 32-bit word of the buffer to {@code pattern}, stream-ordered; the size must be a multiple of 4. */
    public void fill32(int pattern, Stream stream) {
        if (bytes % 4 != 0) throw new IllegalArgumentException("fill32 needs a size that is a multiple of 4 bytes: " + label);
        Cuda.check(CudaDriver.cuMemsetD32Async(address(), pattern, bytes / 4, stream.handle()), "cuMemsetD32Async(" + label + ")");
    }

    /**
     * Sets {@code count} 32-bit words from byte {@code offset} (a multiple of 4) to {@code value}, stream-ordered: e.g. the
     * reset of one state slot, or NaN planted in a row range.
     */
    public void fill32(long offset, long count, int value, Stream stream) {
        checkFill32(bytes, label, offset, count);
        if (count == 0) return;
        Cuda.check(CudaDriver.cuMemsetD32Async(address() + offset, value, count, stream.handle()),
                "cuMemsetD32Async(" + label + ", offset " + offset + ", " + count + " words)");
    }

    private void checkRange(long offset, long count) {
        checkRange(bytes, label, offset, count);
    }

    /** Byte range [offset, offset + count) within a buffer of {@code bytes}. */
    static void checkRange(long bytes, String label, long offset, long count) {
        if (offset < 0 || count < 0 || offset > bytes || count > bytes - offset) {
            throw new IndexOutOfBoundsException("range [" + offset + ", " + (offset + count) + ") outside device buffer '"
                    + label + "' of " + bytes + " bytes");
        }
    }

    /** {@code count} 32-bit words from byte {@code offset} (4-aligned) within a buffer of {@code bytes}. */
    static void checkFill32(long bytes, String label, long offset, long count) {
        if (offset % 4 != 0) {
            throw new IllegalArgumentException("fill32 of device buffer '" + label + "': offset " + offset + " is not a multiple of 4 bytes");
        }
        if (count < 0 || count > Long.MAX_VALUE / 4) {
            throw new IllegalArgumentException("fill32 of device buffer '" + label + "': word count must be >= 0, got " + count);
        }
        checkRange(bytes, label, offset, 4 * count);
    }

    private static void requireNative(MemorySegment s) {
        if (!s.isNative()) throw new IllegalArgumentException("host side of a device copy must be a native (off-heap) segment");
    }

    @Override
    public void close() {
        if (address == 0) return;
        gpu.bindThread();
        int rc = CudaDriver.cuMemFree_v2(address);
        address = 0;
        gpu.bufferFreed(bytes);
        Cuda.check(rc, "cuMemFree_v2(" + label + ")");
    }

    @Override
    public String toString() {
        return "DeviceBuffer[" + label + ", " + Bytes.human(bytes) + "]";
    }
}
