package dev.jnext.cuda.kernels;

import dev.jnext.JnextException;
import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;

/**
 * Embedding gather (kernels-ptx/embedding.cu): {@code out[t] = table[ids[t]]}, bf16 rows of {@code hidden}.
 * Ids come from the host, which validates them with {@link #validateIds} before the upload; a negative id (a padding
 * row of a graph bucket) gives a zero row. The same gather picks the lm_head's rows out of the final activations
 * (the table is then the activations, the ids the step's logits rows).
 */
public final class EmbeddingKernel {
    private static final int THREADS = 256;
    private final Kernel kernel;

    public EmbeddingKernel(KernelLibrary lib) {
        this.kernel = lib.kernel("embedding", "embedding_gather");
    }

    /**
     * The launch's tensors: {@code table [rows, hidden]} bf16 fixes hidden (hidden a positive multiple of 8);
     * {@code ids [≥tokens]} i32; {@code out [≥tokens, hidden]} bf16. The ids' and out's row counts are capacities,
     * checked per launch.
     */
    public record Args(DeviceTensor table, DeviceTensor ids, DeviceTensor out) {
        static final String OP = "embedding";

        public Args {
            int hidden = TensorContract.require(OP, "table", table, DType.BF16, TensorContract.ANY, TensorContract.ANY).dim(1);
            if (hidden < 8 || hidden % 8 != 0) {
                throw TensorContract.fail(OP, "table", "rows must be a positive multiple of 8 wide, got " + table);
            }
            TensorContract.require(OP, "ids", ids, DType.I32, TensorContract.ANY);
            TensorContract.require(OP, "out", out, DType.BF16, TensorContract.ANY, hidden);
        }

        public int hidden() {
            return table.dim(1);
        }

        void checkRows(int tokens, int tableRows) {
            if (tableRows < 1 || tableRows > table.dim(0)) {
                throw TensorContract.fail(OP, "table", "holds " + table.dim(0) + " rows, the launch reads " + tableRows
                        + " (" + table + ")");
            }
            TensorContract.rows(OP, "ids", ids, tokens);
            TensorContract.rows(OP, "out", out, tokens);
        }
    }

    /** {@code out[t] = table[ids[t]]} for the first {@code tokens} ids, any row of the table a valid id. */
    public void launch(Stream s, Args a, int tokens) {
        launch(s, a, tokens, a.table().dim(0));
    }

    /**
     * {@code out[t] = table[ids[t]]} for the first {@code tokens} ids, only the first {@code tableRows} rows of the table
     * valid (an id outside {@code [0, tableRows)} gives a zero row): the lm_head's gather over a step's activation rows.
     */
    public void launch(Stream s, Args a, int tokens, int tableRows) {
        if (tokens < 1) throw new IllegalArgumentException("embedding: tokens must be >= 1, got " + tokens);
        a.checkRows(tokens, tableRows);
        int hidden = a.hidden();
        long threads = (long) tokens * (hidden / 8);
        kernel.args().ptr(a.table().address()).ptr(a.ids().address()).ptr(a.out().address()).i32(tokens).i32(hidden).i32(tableRows);
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
