package dev.jnext.gpu;

/** Grid or block dimensions of a launch. */
public record Dim3(int x, int y, int z) {
    /** Checks that every extent is at least 1. */
    public Dim3 {
        if (x < 1 || y < 1 || z < 1) throw new IllegalArgumentException("launch dimensions must be >= 1: " + x + "x" + y + "x" + z);
    }

    /** {@code (x, 1, 1)}. */
    public static Dim3 of(int x) {
        return new Dim3(x, 1, 1);
    }

    /** {@code (x, y, 1)}. */
    public static Dim3 of(int x, int y) {
        return new Dim3(x, y, 1);
    }

    /** {@code (x, y, z)}. */
    public static Dim3 of(int x, int y, int z) {
        return new Dim3(x, y, z);
    }
}
