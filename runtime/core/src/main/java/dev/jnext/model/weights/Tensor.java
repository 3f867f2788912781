package dev.jnext.model.weights;

import dev.jnext.model.DType;
import dev.jnext.numeric.Bf16;
import dev.jnext.numeric.Fp8E4m3;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * One tensor of a checkpoint: its name, stored dtype, shape (row-major, as on disk) and its bytes, a slice of
 * a memory-mapped safetensors file (valid until the owning {@link Checkpoint} is closed).
 */
public record Tensor(String name, DType dtype, int[] shape, MemorySegment data) {

    static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public Tensor {
        shape = shape.clone();
    }

    @Override
    public int[] shape() {
        return shape.clone();
    }

    public int dim(int i) {
        return shape[i];
    }

    public int rank() {
        return shape.length;
    }

    public long elementCount() {
        long n = 1;
        for (int d : shape) n *= d;
        return n;
    }

    public boolean hasShape(int... expected) {
        return Arrays.equals(shape, expected);
    }

    /** The shape as "[a, b, c]" for messages. */
    public String shapeString() {
        return Arrays.toString(shape);
    }

    /** Element {@code i} (flat, row-major) converted to float (an F8_E4M3 element without its block scale). */
    public float getFloat(long i) {
        return switch (dtype) {
            case F32 -> data.get(F32_LE, i * 4);
            case BF16 -> Bf16.toFloat(data.get(I16_LE, i * 2));
            case F16 -> Float.float16ToFloat(data.get(I16_LE, i * 2));
            case F8_E4M3 -> Fp8E4m3.toFloat(data.get(ValueLayout.JAVA_BYTE, i));
        };
    }

    /** The whole tensor converted to a float array (for small tensors: norms, biases, gates). */
    public float[] toFloatArray() {
        long n = elementCount();
        if (n > Integer.MAX_VALUE - 8) {
            throw new dev.jnext.JnextException("tensor '" + name + "' " + shapeString() + " is too large for one float array");
        }
        float[] out = new float[(int) n];
        copyToFloats(data, dtype, 0, out, 0, out.length);
        return out;
    }

    /**
     * Converts {@code count} elements starting at element {@code firstElement} of {@code src} (stored as
     * {@code dtype}, little-endian) into {@code dst[dstOffset ..]} (F8_E4M3 elements without any block scale).
     */
    public static void copyToFloats(MemorySegment src, DType dtype, long firstElement, float[] dst, int dstOffset,
                                    int count) {
        switch (dtype) {
            case F32 -> MemorySegment.copy(src, F32_LE, firstElement * 4, dst, dstOffset, count);
            case BF16 -> {
                for (int i = 0; i < count; i++) {
                    dst[dstOffset + i] = Bf16.toFloat(src.get(I16_LE, (firstElement + i) * 2));
                }
            }
            case F16 -> {
                for (int i = 0; i < count; i++) {
                    dst[dstOffset + i] = Float.float16ToFloat(src.get(I16_LE, (firstElement + i) * 2));
                }
            }
            case F8_E4M3 -> {
                for (int i = 0; i < count; i++) {
                    dst[dstOffset + i] = Fp8E4m3.toFloat(src.get(ValueLayout.JAVA_BYTE, firstElement + i));
                }
            }
        }
    }
}
