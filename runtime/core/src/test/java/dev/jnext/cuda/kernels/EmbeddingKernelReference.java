package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;

/** CPU references of {@link EmbeddingKernel}'s kernels (test oracles: they live with the tests, not in the library). */
public final class EmbeddingKernelReference {
    private EmbeddingKernelReference() {}

    /** CPU reference. */
    public static short[] reference(short[] table, int[] ids, int hidden, int vocab) {
        short[] out = new short[ids.length * hidden];
        for (int t = 0; t < ids.length; t++) {
            if (ids[t] >= 0 && ids[t] < vocab) System.arraycopy(table, ids[t] * hidden, out, t * hidden, hidden);
        }
        return out;
    }
}
