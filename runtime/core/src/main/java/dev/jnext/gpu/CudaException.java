package dev.jnext.gpu;

import dev.jnext.JnextException;

/** A CUDA driver or cuBLASLt call failed: carries the call, the library's error name and code. */
public class CudaException extends JnextException {
    /** The failed function. */
    private final String call;
    /** The library's name of the error. */
    private final String errorName;
    /** The library's error code (−1 when not from a call). */
    private final int code;

    /** A failed call: its name, the library's code and error name, and an optional detail. */
    public CudaException(String call, int code, String errorName, String detail) {
        super(call + " failed: " + errorName + " (" + code + ")" + (detail == null || detail.isEmpty() ? "" : ": " + detail));
        this.call = call;
        this.code = code;
        this.errorName = errorName;
    }

    /** A GPU-side failure that is not one call's error code (no driver, out of memory). */
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

    /** The library's error code, −1 when the failure is not one call's. */
    public int code() {
        return code;
    }
}
