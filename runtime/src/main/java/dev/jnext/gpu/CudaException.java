package dev.jnext.gpu;

import dev.jnext.JnextException;

/** A CUDA driver or cuBLASLt call failed: carries the call, the library's error name and code. */
public class CudaException extends JnextException {
    private final String call;
    private final String errorName;
    private final int code;

    public CudaException(String call, int code, String errorName, String detail) {
        super(call + " failed: " + errorName + " (" + code + ")" + (detail == null || detail.isEmpty() ? "" : ": " + detail));
        this.call = call;
        this.code = code;
        this.errorName = errorName;
    }

    protected CudaException(String message) {
        super(message);
        this.call = "";
        this.code = -1;
        this.errorName = "";
    }

    /** The driver/cuBLASLt function that failed, e.g. {@code cuMemAlloc_v2}. */
    public String call() {
        return call;
    }

    /** The library's name for the error, e.g. {@code CUDA_ERROR_OUT_OF_MEMORY}. */
    public String errorName() {
        return errorName;
    }

    public int code() {
        return code;
    }
}
