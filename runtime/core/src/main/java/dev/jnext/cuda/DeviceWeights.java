package dev.jnext.cuda;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Event;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.PinnedBuffer;
import dev.jnext.gpu.Stream;

import java.lang.foreign.MemorySegment;
import java.util.function.LongConsumer;

/**
 * A {@link WeightImage} on the device: one allocation, filled by streaming the image through two pinned staging
 * buffers — while the copy engine moves one, the host converts the next (mapped checkpoint pages → bf16) into the
 * other. Owns the allocation; closing frees it.
 */
final class DeviceWeights implements AutoCloseable {
    /** Size of each staging buffer. */
    static final long STAGING_BYTES = 64L << 20;

    private final DeviceBuffer buffer;
    private final long uploadNanos;

    private DeviceWeights(DeviceBuffer buffer, long uploadNanos) {
        this.buffer = buffer;
        this.uploadNanos = uploadNanos;
    }

    /**
     * Allocates the image's bytes and uploads every region on {@code stream}; returns once the data is on the device.
     * {@code progress} receives the bytes of each finished chunk.
     */
    public static DeviceWeights upload(Gpu gpu, Stream stream, WeightImage image, LongConsumer progress) {
        long t0 = System.nanoTime();
        DeviceBuffer dst = gpu.allocate(image.bytes(), "weights");
        try (PinnedBuffer a = gpu.allocatePinned(STAGING_BYTES); PinnedBuffer b = gpu.allocatePinned(STAGING_BYTES);
             Event ea = gpu.createEvent(false); Event eb = gpu.createEvent(false)) {
            PinnedBuffer[] staging = {a, b};
            Event[] done = {ea, eb};
            boolean[] pending = new boolean[2];
            int turn = 0;
            for (WeightImage.Region r : image.regions()) {
                long chunk = STAGING_BYTES / r.target().bytes * r.target().bytes;
                for (long from = 0; from < r.bytes(); from += chunk) {
                    long len = Math.min(chunk, r.bytes() - from);
                    if (pending[turn]) done[turn].synchronize();
                    MemorySegment seg = staging[turn].segment().asSlice(0, len);
                    WeightImage.write(r, from, len, seg, 0);
                    dst.copyFromHostAsync(seg, r.offset() + from, stream);
                    done[turn].record(stream);
                    pending[turn] = true;
                    progress.accept(len);
                    turn ^= 1;
                }
            }
            stream.synchronize();
        } catch (RuntimeException | Error e) {
            dst.close();
            throw e;
        }
        return new DeviceWeights(dst, System.nanoTime() - t0);
    }

    /** Device address of an image offset. */
    public long at(long offset) {
        return buffer.address(offset);
    }

    public long bytes() {
        return buffer.bytes();
    }

    /** Wall time of the upload (allocation, conversion and copies). */
    public long uploadNanos() {
        return uploadNanos;
    }

    @Override
    public void close() {
        buffer.close();
    }
}
