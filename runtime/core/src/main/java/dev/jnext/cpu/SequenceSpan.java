package dev.jnext.cpu;

/**
 * The new tokens of one sequence inside a batched forward call: rows [firstRow, firstRow + rows) of the
 * flattened activations belong to the sequence in {@code slot}, whose first new token sits at {@code position}
 * (the number of tokens it had consumed before this call).
 */
public record SequenceSpan(int slot, int firstRow, int rows, int position) {}
