package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;

/** CPU references of {@link ExpertGrouping}'s kernels (test oracles: they live with the tests, not in the library). */
public final class ExpertGroupingReference {
    private ExpertGroupingReference() {}

    /** The grouping of {@code expertIds}; ids outside [0, experts) are dropped (pair row −1), as the kernels do. */
    public static ExpertGrouping.Groups reference(int[] expertIds, int experts, int blockM) {
        int pairs = expertIds.length;
        int[] counts = new int[experts];
        for (int e : expertIds) if (e >= 0 && e < experts) counts[e]++;
        int[] start = new int[experts + 1];
        for (int e = 0; e < experts; e++) start[e + 1] = start[e] + (counts[e] + blockM - 1) / blockM * blockM;
        int maxTiles = ExpertGrouping.maxTiles(pairs, experts, blockM);
        int[] sorted = new int[start[experts]];
        java.util.Arrays.fill(sorted, -1);
        int[] next = java.util.Arrays.copyOf(start, experts);
        int[] pairRow = new int[pairs];
        for (int p = 0; p < pairs; p++) {
            if (expertIds[p] < 0 || expertIds[p] >= experts) {
                pairRow[p] = -1;
                continue;
            }
            int row = next[expertIds[p]]++;
            sorted[row] = p;
            pairRow[p] = row;
        }
        int[] tileExpert = new int[maxTiles];
        java.util.Arrays.fill(tileExpert, -1);
        for (int e = 0; e < experts; e++) {
            for (int r = start[e]; r < start[e + 1]; r += blockM) tileExpert[r / blockM] = e;
        }
        return new ExpertGrouping.Groups(start, sorted, pairRow, tileExpert);
    }
}
