package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import java.util.BitSet;

/** CPU references of {@link TokenHistory}'s kernels (test oracles: they live with the tests, not in the library). */
public final class TokenHistoryReference {
    private TokenHistoryReference() {}

    /** CPU reference of {@link #observe}: {@code seen[slot]} gains every valid id of the rows with a valid slot. */
    public static void referenceObserve(int[] ids, int[] rowSlot, int rows, BitSet[] seen, int vocab) {
        for (int r = 0; r < rows; r++) {
            int slot = rowSlot[r], id = ids[r];
            if (slot < 0 || slot >= seen.length || id < 0 || id >= vocab) continue;
            seen[slot].set(id);
        }
    }
}
