package dev.jnext.cuda.kernels;

/**
 * The checks of the launchers' argument records: every tensor's dtype and shape against its op's contract, once when
 * the record is built, and the rows a launch touches against the tensors' capacity, per launch (plain int comparisons;
 * the message is built only on failure). Every failure is an {@link IllegalArgumentException} naming the op, the
 * argument, what was expected and what was given.
 */
final class TensorContract {
    /** A dimension the contract leaves free (a capacity, checked per launch). */
    static final int ANY = -1;

    private TensorContract() {}

    /** {@code t} is present, non-null on the device, of {@code dtype} and of shape {@code dims} ({@link #ANY}: any size). */
    static DeviceTensor require(String op, String arg, DeviceTensor t, DType dtype, int... dims) {
        if (t == null) throw fail(op, arg, "is missing, expected " + signature(dtype, dims));
        if (t.address() == 0) throw fail(op, arg, "is a null device pointer (" + t + ")");
        boolean ok = t.dtype() == dtype && t.rank() == dims.length;
        for (int i = 0; ok && i < dims.length; i++) ok = dims[i] == ANY || dims[i] == t.dim(i);
        if (!ok) throw fail(op, arg, "expected " + signature(dtype, dims) + ", got " + t);
        return t;
    }

    /** {@link #require} unless {@code t} is null (an absent optional argument). */
    static void optional(String op, String arg, DeviceTensor t, DType dtype, int... dims) {
        if (t != null) require(op, arg, t, dtype, dims);
    }

    /** {@code t}'s address is a multiple of {@code bytes}. */
    static void aligned(String op, String arg, DeviceTensor t, int bytes) {
        if (t.address() % bytes != 0) throw fail(op, arg, "must be " + bytes + "-byte aligned, got " + t);
    }

    /** {@code t} has at least {@code needed} rows (dimension 0): the launch's rows fit the buffer. */
    static void rows(String op, String arg, DeviceTensor t, long needed) {
        if (t.dim(0) < needed) {
            throw fail(op, arg, "holds " + t.dim(0) + " rows, the launch needs " + needed + " (" + t + ")");
        }
    }

    /** A positive dimension the other arguments are checked against. */
    static int positive(String op, String arg, DeviceTensor t, int dim) {
        if (t.dim(dim) < 1) throw fail(op, arg, "dimension " + dim + " must be >= 1, got " + t);
        return t.dim(dim);
    }

    static IllegalArgumentException fail(String op, String arg, String what) {
        return new IllegalArgumentException(op + ": argument '" + arg + "' " + what);
    }

    static String signature(DType dtype, int... dims) {
        StringBuilder b = new StringBuilder().append(dtype).append('[');
        for (int i = 0; i < dims.length; i++) {
            if (i > 0) b.append(", ");
            b.append(dims[i] == ANY ? "*" : Integer.toString(dims[i]));
        }
        return b.append(']').toString();
    }
}
