package dev.jnext;

/**
 * Base of every error jnext reports to a user: bad input (config, checkpoint, tokenizer, prompt,
 * request) or a failed CUDA call. The message must name the file/tensor/field/call and what was
 * expected; the CLI prints it without a stack trace and exits non-zero. Subclasses: {@link
 * dev.jnext.gpu.CudaException} (a driver call failed), {@link dev.jnext.gpu.NoCudaDriverException} (no driver or
 * cuBLASLt), {@link dev.jnext.gpu.DeviceOutOfMemoryException}.
 */
public class JnextException extends RuntimeException {
    /**
     * An error with its message.
     *
     * @param message one line naming what is wrong and where
     */
    public JnextException(String message) {
        super(message);
    }

    /**
     * An error with its message and cause.
     *
     * @param message one line naming what is wrong and where
     * @param cause   the underlying exception (an I/O error, a parser's)
     */
    public JnextException(String message, Throwable cause) {
        super(message, cause);
    }
}
