package dev.jnext.gpu;

/** No usable CUDA driver (or cuBLASLt library) on this machine: thrown by every GPU entry point. */
public final class NoCudaDriverException extends CudaException {
    public NoCudaDriverException(String message) {
        super(message);
    }
}
