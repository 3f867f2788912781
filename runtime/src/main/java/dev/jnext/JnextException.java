package dev.jnext;

/**
 * Base of every error jnext reports to a user: bad input (config, checkpoint, tokenizer, prompt,
 * request) or a failed CUDA call. The message must name the file/tensor/field/call and what was
 * expected; the CLI prints it without a stack trace and exits non-zero.
 */
public class JnextException extends RuntimeException {
    public JnextException(String message) {
        super(message);
    }

    public JnextException(String message, Throwable cause) {
        super(message, cause);
    }
}
