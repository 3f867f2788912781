package dev.jnext.model.weights;

import java.util.Objects;

/**
 * The block scales of an FP8 {@link Matrix} ({@code weight_scale_inv}, copied to the heap when the checkpoint is bound,
 * checked positive and finite): element (r, c) of the matrix is its stored e4m3 value times
 * {@code values[((firstRow + r) / blockRows) · gridCols + c / blockCols]}. {@code firstRow} places a matrix cut from a
 * larger one (the gate or up half of a fused {@code gate_up_proj}) in the grid of the whole.
 *
 * @param name      the scale tensor's name, for messages
 * @param values    the grid, row-major [gridRows, gridCols]
 * @param gridRows  ceil(rows of the whole / blockRows)
 * @param gridCols  ceil(cols / blockCols)
 * @param blockRows rows per block
 * @param blockCols columns per block
 * @param firstRow  the matrix's first row in the whole the grid covers
 */
public record BlockScales(String name, float[] values, int gridRows, int gridCols, int blockRows, int blockCols,
                          int firstRow) {

    /** Checks that the grid holds gridRows × gridCols values. */
    public BlockScales {
        Objects.requireNonNull(name, "name");
        if (blockRows <= 0 || blockCols <= 0 || gridRows <= 0 || gridCols <= 0 || firstRow < 0
                || (long) gridRows * gridCols != values.length) {
            throw new IllegalArgumentException(name + ": " + values.length + " scales for a " + gridRows + " x "
                    + gridCols + " grid of " + blockRows + " x " + blockCols + " blocks from row " + firstRow);
        }
    }

    /** The scale of the block holding element (row, col) of the matrix. */
    public float at(int row, int col) {
        return values[((firstRow + row) / blockRows) * gridCols + col / blockCols];
    }

    /** Whether the grid covers a [rows, cols] matrix starting at {@link #firstRow}. */
    boolean covers(int rows, int cols) {
        return (long) firstRow + rows <= (long) gridRows * blockRows && cols <= (long) gridCols * blockCols
                && cols > (long) (gridCols - 1) * blockCols;
    }
}
