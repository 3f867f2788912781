package dev.jnext.gpu;

/** No usable CUDA driver (or cuBLASLt library) on this machine: thrown by every GPU entry point. */
public final class NoCudaDriverException extends CudaException {
    /** No driver: {@code message} says what is missing and what jnext needs. */
    public NoCudaDriverException(String message) {
        super(message);
    }
}
