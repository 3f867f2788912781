package dev.jnext.model.weights;

import dev.jnext.model.DType;
import dev.jnext.numeric.Bf16;
import dev.jnext.numeric.Fp8E4m3;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Objects;

/**
 * A weight matrix [rows, cols] (PyTorch Linear layout [out_features, in_features], so y = x·Wᵀ) stored row-major
 * in {@code dtype} inside {@code data} — typically a slice of a memory-mapped checkpoint. Rows are converted to
 * fp32 on use; nothing is copied at load time. An {@link DType#F8_E4M3} matrix carries its {@link BlockScales} and
 * reads as the dequantized weight: each element is its e4m3 value times its block's scale, one fp32 product (the
 * fp32 model that transformers' FP8 dequantization describes).
 *
 * @param scales the block scales of an FP8 matrix; null for every other dtype
 */
public record Matrix(String name, MemorySegment data, DType dtype, int rows, int cols, BlockScales scales) {

    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Checks the byte count, and that FP8 data comes with block scales covering it (and only FP8 data). */
    public Matrix {
        if ((long) rows * cols * dtype.bytes() != data.byteSize()) {
            throw new IllegalArgumentException(name + ": " + data.byteSize() + " bytes do not hold [" + rows + ", "
                    + cols + "] " + dtype);
        }
        if ((dtype == DType.F8_E4M3) != (scales != null)) {
            throw new IllegalArgumentException(name + ": " + (scales == null ? "F8_E4M3 data needs its block scales"
                    : dtype + " data takes no block scales"));
        }
        if (scales != null && !scales.covers(rows, cols)) {
            throw new IllegalArgumentException(name + ": the block scales " + scales.name() + " do not cover [" + rows
                    + ", " + cols + "] from row " + scales.firstRow());
        }
    }

    /** An unquantized matrix (F32, BF16 or F16). */
    public Matrix(String name, MemorySegment data, DType dtype, int rows, int cols) {
        this(name, data, dtype, rows, cols, null);
    }

    /** A 2-D tensor as a matrix. */
    public static Matrix of(Tensor t) {
        return of(t, null);
    }

    /** A 2-D tensor as a matrix, with the block scales of an FP8 tensor (null otherwise). */
    public static Matrix of(Tensor t, BlockScales scales) {
        if (t.rank() != 2) throw new IllegalArgumentException(t.name() + " is not 2-D: " + t.shapeString());
        return new Matrix(t.name(), t.data(), t.dtype(), t.dim(0), t.dim(1), scales);
    }

    /** Rows [firstRow, firstRow + rowCount) of matrix number {@code index} in a stacked 3-D tensor [n, R, C]. */
    public static Matrix slice(Tensor stacked, int index, int firstRow, int rowCount) {
        return slice(stacked, null, index, firstRow, rowCount);
    }

    /**
     * Rows [firstRow, firstRow + rowCount) of matrix number {@code index} in a stacked 3-D tensor [n, R, C]; for an FP8
     * tensor, {@code scales} is the grid of that whole matrix number {@code index} (firstRow 0), null otherwise.
     */
    public static Matrix slice(Tensor stacked, BlockScales scales, int index, int firstRow, int rowCount) {
        int r = stacked.dim(1);
        int c = stacked.dim(2);
        long elemOffset = ((long) index * r + firstRow) * c;
        long bytes = (long) rowCount * c * stacked.dtype().bytes();
        MemorySegment seg = stacked.data().asSlice(elemOffset * stacked.dtype().bytes(), bytes);
        BlockScales s = scales == null ? null : new BlockScales(scales.name(), scales.values(), scales.gridRows(),
                scales.gridCols(), scales.blockRows(), scales.blockCols(), scales.firstRow() + firstRow);
        return new Matrix(stacked.name() + "[" + index + "][" + firstRow + ":" + (firstRow + rowCount) + "]",
                seg, stacked.dtype(), rowCount, c, s);
    }

    /**
     * Rows [first, first + count): a view of the same bytes (a split of the output dimension); an FP8 matrix keeps its
     * block grid, offset by {@code first} rows.
     */
    public Matrix rows(int first, int count) {
        Objects.checkFromIndexSize(first, count, rows);
        long rowBytes = (long) cols * dtype.bytes();
        BlockScales s = scales == null ? null : new BlockScales(scales.name(), scales.values(), scales.gridRows(),
                scales.gridCols(), scales.blockRows(), scales.blockCols(), scales.firstRow() + first);
        return new Matrix(name + "[" + first + ":" + (first + count) + ", :]", data.asSlice(first * rowBytes, count * rowBytes),
                dtype, count, cols, s);
    }

    /**
     * Columns [first, first + count) of every row, copied (a split of the input dimension; the columns of a row-major
     * matrix are not contiguous, so this is the one copy a split makes): in the stored dtype, but an FP8 matrix's
     * columns as their dequantized fp32 values — exactly the values {@link #loadRow} gives, whatever blocks the split
     * cuts.
     */
    public Matrix columns(int first, int count) {
        Objects.checkFromIndexSize(first, count, cols);
        String part = name + "[:, " + first + ":" + (first + count) + "]";
        if (dtype == DType.F8_E4M3) {
            float[] v = new float[Math.multiplyExact(rows, count)];
            for (int r = 0; r < rows; r++) {
                for (int j = 0; j < count; j++) v[r * count + j] = get(r, first + j);
            }
            return ofFloats(part, v, rows, count);
        }
        int b = dtype.bytes();
        MemorySegment out = MemorySegment.ofArray(new byte[Math.toIntExact((long) rows * count * b)]);
        for (int r = 0; r < rows; r++) {
            MemorySegment.copy(data, ((long) r * cols + first) * b, out, (long) r * count * b, (long) count * b);
        }
        return new Matrix(part, out, dtype, rows, count);
    }

    /**
     * The rows of {@code parts} one after the other, copied (a tensor-parallel share of a projection whose rows the split
     * takes from several places, e.g. Qwen3.5's in_proj_qkv [all q | all k | all v]): in the parts' stored dtype, but FP8
     * parts as their dequantized fp32 values (their block grids need not line up) — exactly the values {@link #loadRow}
     * gives.
     *
     * @throws IllegalArgumentException when the parts differ in columns or dtype, or there are none
     */
    public static Matrix concatRows(String name, List<Matrix> parts) {
        if (parts.isEmpty()) throw new IllegalArgumentException(name + ": no parts to concatenate");
        Matrix first = parts.getFirst();
        int cols = first.cols(), rows = 0;
        for (Matrix m : parts) {
            if (m.cols() != cols || m.dtype() != first.dtype()) {
                throw new IllegalArgumentException(name + ": " + m.name() + " is " + m.dtype() + " [" + m.rows() + ", " + m.cols()
                        + "], not " + first.dtype() + " [*, " + cols + "]");
            }
            rows = Math.addExact(rows, m.rows());
        }
        if (first.dtype() == DType.F8_E4M3) {
            float[] v = new float[Math.multiplyExact(rows, cols)];
            float[] row = new float[cols];
            int r0 = 0;
            for (Matrix m : parts) {
                for (int r = 0; r < m.rows(); r++, r0++) {
                    m.loadRow(r, row, null);
                    System.arraycopy(row, 0, v, r0 * cols, cols);
                }
            }
            return ofFloats(name, v, rows, cols);
        }
        MemorySegment out = MemorySegment.ofArray(new byte[Math.toIntExact((long) rows * cols * first.dtype().bytes())]);
        long at = 0;
        for (Matrix m : parts) {
            MemorySegment.copy(m.data(), 0, out, at, m.data().byteSize());
            at += m.data().byteSize();
        }
        return new Matrix(name, out, first.dtype(), rows, cols);
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
            case F8_E4M3 -> {
                int base = ((scales.firstRow() + r) / scales.blockRows()) * scales.gridCols();
                int block = scales.blockCols();
                for (int c0 = 0, b = 0; c0 < cols; c0 += block, b++) {
                    float s = scales.values()[base + b];
                    int end = Math.min(cols, c0 + block);
                    for (int i = c0; i < end; i++) dst[i] = Fp8E4m3.toFloat(data.get(ValueLayout.JAVA_BYTE, first + i)) * s;
                }
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
            case F8_E4M3 -> Fp8E4m3.toFloat(data.get(ValueLayout.JAVA_BYTE, i)) * scales.at(r, c);
        };
    }
}
