package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;

/**
 * Token → expert grouping on the device (kernels-ptx/moe_align.cu), graph-capturable: the (token, k) pairs
 * ({@code pair = token·topK + k}) are counting-sorted by expert, stably, and each expert's segment is padded to a multiple
 * of the grouped GEMM's tile height, so every m-tile of the GEMM belongs to one expert. Three launches; every size
 * depends only on the number of pairs (the worst case), never on the routing.
 *
 * <p>Device buffers (int32): {@code chunkCounts [chunks(pairs)·E]} scratch, {@code expertStart [E + 1]} (padded segment
 * starts; the last entry is the padded rows in use), {@code sortedPairs [maxTiles·blockM]} (pair or −1 for padding),
 * {@code pairRow [pairs]} (row of each pair), {@code tileExpert [maxTiles]} (expert of each m-tile, −1 past the end).
 */
public final class ExpertGrouping {
    static final int CHUNK = 2048;
    public static final int MAX_EXPERTS = 1024;

    private final Kernel count;
    private final Kernel offsets;
    private final Kernel scatter;

    public ExpertGrouping(KernelLibrary lib) {
        this.count = lib.kernel("moe_align", "moe_align_count");
        this.offsets = lib.kernel("moe_align", "moe_align_offsets");
        this.scatter = lib.kernel("moe_align", "moe_align_scatter");
    }

    /** Chunks of pairs the count and scatter launches use (rows of {@code chunkCounts}). */
    public static int chunks(int pairs) {
        return (pairs + CHUNK - 1) / CHUNK;
    }

    /** The most m-tiles any routing of {@code pairs} pairs can need: full tiles plus one partial tile per used expert. */
    public static int maxTiles(int pairs, int experts, int blockM) {
        return pairs / blockM + Math.min(experts, pairs) + 1;
    }

    /** Groups {@code pairs} expert ids ({@code expertIds [pairs]}, from the router) by expert. */
    public void launch(Stream s, long expertIds, int pairs, int experts, int blockM, long chunkCounts, long expertStart,
                       long sortedPairs, long pairRow, long tileExpert) {
        if (pairs < 1) throw new IllegalArgumentException("expert grouping: pairs must be >= 1, got " + pairs);
        if (experts < 1 || experts > MAX_EXPERTS) {
            throw new IllegalArgumentException("expert grouping: experts must be in [1, " + MAX_EXPERTS + "], got " + experts);
        }
        if (blockM < 1) throw new IllegalArgumentException("expert grouping: tile height must be >= 1, got " + blockM);
        int chunks = chunks(pairs);
        count.args().ptr(expertIds).ptr(chunkCounts).i32(pairs).i32(experts);
        count.launch(s, Dim3.of(chunks), Dim3.of(256), 0);
        offsets.args().ptr(chunkCounts).ptr(expertStart).ptr(tileExpert).ptr(sortedPairs).i32(chunks).i32(experts).i32(blockM)
                .i32(maxTiles(pairs, experts, blockM));
        offsets.launch(s, Dim3.of(1), Dim3.of(1024), 0);
        scatter.args().ptr(expertIds).ptr(chunkCounts).ptr(expertStart).ptr(sortedPairs).ptr(pairRow).i32(pairs).i32(experts);
        scatter.launch(s, Dim3.of(chunks), Dim3.of(256), 0);
    }

    /** The grouping a routing must produce (CPU reference). */
    public record Groups(int[] expertStart, int[] sortedPairs, int[] pairRow, int[] tileExpert) {}
}
