package dev.jnext.cpu;

/**
 * The new tokens of one sequence inside a batched forward call: rows [firstRow, firstRow + rows) of the
 * flattened activations belong to the sequence in {@code slot}, whose first new token sits at {@code position}
 * (the number of tokens it had consumed before this call).
 *
 * @param prompt    the rows are a chunk of the prompt: the delta rule runs chunked even for a single row (as an uncut
 *                  prompt's would), where a lone generated token runs the recurrent form
 * @param captureAt row offsets in (0, rows], ascending, after which the GDN layers copy their state into
 *                  {@code captured} (the same index): the prefix cache's snapshots. Offsets that are multiples of the
 *                  delta rule's chunk keep the arithmetic of the uncut call
 * @param captured  one snapshot per offset, filled layer by layer
 */
public record SequenceSpan(int slot, int firstRow, int rows, int position, boolean prompt, int[] captureAt,
                           StateSnapshot[] captured) {

    private static final int[] NONE = new int[0];

    /** A span that captures nothing and is not marked as a prompt chunk. */
    public SequenceSpan(int slot, int firstRow, int rows, int position) {
        this(slot, firstRow, rows, position, false, NONE, new StateSnapshot[0]);
    }
}
