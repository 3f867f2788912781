package dev.jnext.cuda.kernels;

import dev.jnext.JnextException;
import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;

/**
 * Embedding gather (kernels-ptx/embedding.cu): {@code out[t] = table[ids[t]]}, bf16 rows of {@code hidden}.
 * Ids come from the host, which validates them with {@link #validateIds} before the upload; a negative id (a padding
 * row of a graph bucket) gives a zero row.
 */
public final class EmbeddingKernel {
    private static final int THREADS = 256;
    private final Kernel kernel;

    public EmbeddingKernel(KernelLibrary lib) {
        this.kernel = lib.kernel("embedding", "embedding_gather");
    }

    /** {@code table [vocab, hidden]}, {@code ids [tokens]} int32 → {@code out [tokens, hidden]}. */
    public void launch(Stream s, long table, long ids, long out, int tokens, int hidden, int vocab) {
        if (tokens < 1) throw new IllegalArgumentException("embedding: tokens must be >= 1, got " + tokens);
        if (hidden < 8 || hidden % 8 != 0) throw new IllegalArgumentException("embedding: hidden must be a positive multiple of 8, got " + hidden);
        if (vocab < 1) throw new IllegalArgumentException("embedding: vocab must be >= 1, got " + vocab);
        long threads = (long) tokens * (hidden / 8);
        kernel.args().ptr(table).ptr(ids).ptr(out).i32(tokens).i32(hidden).i32(vocab);
        kernel.launch(s, Dim3.of((int) ((threads + THREADS - 1) / THREADS)), Dim3.of(THREADS), 0);
    }

    /** Rejects a token id outside {@code [0, vocab)} before it reaches the device. */
    public static void validateIds(int[] ids, int count, int vocab) {
        for (int i = 0; i < count; i++) {
            if (ids[i] < 0 || ids[i] >= vocab) {
                throw new JnextException("token id " + ids[i] + " at position " + i + " is outside the model's vocabulary [0, " + vocab + ")");
            }
        }
    }
}
