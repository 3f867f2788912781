package dev.jnext.gpu;

/** A device or pinned allocation did not fit: names what was requested and what was free. */
public final class DeviceOutOfMemoryException extends CudaException {
    /** Bytes asked for. */
    private final long requestedBytes;
    /** Bytes free when it was asked. */
    private final long freeBytes;

    DeviceOutOfMemoryException(String what, long requestedBytes, long freeBytes, long totalBytes) {
        super("out of " + what + " memory: requested " + Bytes.human(requestedBytes) + " (" + requestedBytes + " bytes), "
                + Bytes.human(freeBytes) + " free of " + Bytes.human(totalBytes));
        this.requestedBytes = requestedBytes;
        this.freeBytes = freeBytes;
    }

    /** Bytes the failed allocation asked for. */
    public long requestedBytes() {
        return requestedBytes;
    }

    /** Bytes free at that moment. */
    public long freeBytes() {
        return freeBytes;
    }
}
