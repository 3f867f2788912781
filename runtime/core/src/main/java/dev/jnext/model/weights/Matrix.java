package dev.jnext.model.weights;

import dev.jnext.numeric.Bf16;
import dev.jnext.model.DType;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;

/**
 * A weight matrix [rows, cols] (PyTorch Linear layout [out_features, in_features], so y = x·Wᵀ) stored row-major
 * in {@code dtype} inside {@code data} — typically a slice of a memory-mapped checkpoint. Rows are converted to
 * fp32 on use; nothing is copied at load time.
 */
public record Matrix(String name, MemorySegment data, DType dtype, int rows, int cols) {

    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public Matrix {
        if ((long) rows * cols * dtype.bytes() != data.byteSize()) {
            throw new IllegalArgumentException(name + ": " + data.byteSize() + " bytes do not hold [" + rows + ", "
                    + cols + "] " + dtype);
        }
    }

    /** A 2-D tensor as a matrix. */
    public static Matrix of(Tensor t) {
        if (t.rank() != 2) throw new IllegalArgumentException(t.name() + " is not 2-D: " + t.shapeString());
        return new Matrix(t.name(), t.data(), t.dtype(), t.dim(0), t.dim(1));
    }

    /** Rows [firstRow, firstRow + rowCount) of matrix number {@code index} in a stacked 3-D tensor [n, R, C]. */
    public static Matrix slice(Tensor stacked, int index, int firstRow, int rowCount) {
        int r = stacked.dim(1);
        int c = stacked.dim(2);
        long elemOffset = ((long) index * r + firstRow) * c;
        long bytes = (long) rowCount * c * stacked.dtype().bytes();
        MemorySegment seg = stacked.data().asSlice(elemOffset * stacked.dtype().bytes(), bytes);
        return new Matrix(stacked.name() + "[" + index + "][" + firstRow + ":" + (firstRow + rowCount) + "]",
                seg, stacked.dtype(), rowCount, c);
    }

    /** Rows [first, first + count): a view of the same bytes (a row-parallel split of the output dimension). */
    public Matrix rows(int first, int count) {
        Objects.checkFromIndexSize(first, count, rows);
        long rowBytes = (long) cols * dtype.bytes();
        return new Matrix(name + "[" + first + ":" + (first + count) + ", :]", data.asSlice(first * rowBytes, count * rowBytes),
                dtype, count, cols);
    }

    /**
     * Columns [first, first + count) of every row, copied in the stored dtype (a column-parallel split of the input
     * dimension; the columns of a row-major matrix are not contiguous, so this is the one copy a split makes).
     */
    public Matrix columns(int first, int count) {
        Objects.checkFromIndexSize(first, count, cols);
        int b = dtype.bytes();
        MemorySegment out = MemorySegment.ofArray(new byte[Math.toIntExact((long) rows * count * b)]);
        for (int r = 0; r < rows; r++) {
            MemorySegment.copy(data, ((long) r * cols + first) * b, out, (long) r * count * b, (long) count * b);
        }
        return new Matrix(name + "[:, " + first + ":" + (first + count) + "]", out, dtype, rows, count);
    }

    /** A matrix over fp32 values (tests, synthetic inputs). */
    public static Matrix ofFloats(String name, float[] values, int rows, int cols) {
        MemorySegment seg = MemorySegment.ofArray(new byte[values.length * 4]);
        for (int i = 0; i < values.length; i++) seg.set(F32_LE, 4L * i, values[i]);
        return new Matrix(name, seg, DType.F32, rows, cols);
    }

    /** Converts row {@code r} into {@code dst[0 .. cols)}; {@code scratch} needs {@code cols} shorts for 16-bit types. */
    public void loadRow(int r, float[] dst, short[] scratch) {
        long first = (long) r * cols;
        switch (dtype) {
            case F32 -> MemorySegment.copy(data, F32_LE, first * 4, dst, 0, cols);
            case BF16 -> {
                MemorySegment.copy(data, I16_LE, first * 2, scratch, 0, cols);
                for (int i = 0; i < cols; i++) dst[i] = Float.intBitsToFloat(scratch[i] << 16);
            }
            case F16 -> {
                MemorySegment.copy(data, I16_LE, first * 2, scratch, 0, cols);
                for (int i = 0; i < cols; i++) dst[i] = Float.float16ToFloat(scratch[i]);
            }
        }
    }

    /** Element (r, c) as float. */
    public float get(int r, int c) {
        long i = (long) r * cols + c;
        return switch (dtype) {
            case F32 -> data.get(F32_LE, i * 4);
            case BF16 -> Bf16.toFloat(data.get(I16_LE, i * 2));
            case F16 -> Float.float16ToFloat(data.get(I16_LE, i * 2));
        };
    }
}
