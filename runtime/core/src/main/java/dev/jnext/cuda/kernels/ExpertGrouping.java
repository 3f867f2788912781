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

    /**
     * The launches' tensors, all i32: {@code chunkCounts [≥chunks(pairs), E]} fixes the experts E (at most
     * {@link #MAX_EXPERTS}) and {@code sortedPairs [≥maxTiles, blockM]} the tile height; {@code expertIds [≥pairs]} (the
     * router's ids, flat); {@code expertStart [E + 1]}; {@code pairRow [≥pairs]}; {@code tileExpert [≥maxTiles]}. Row
     * counts are capacities, checked per launch against the pairs and the {@link #maxTiles} they can need.
     */
    public record Args(DeviceTensor expertIds, DeviceTensor chunkCounts, DeviceTensor expertStart, DeviceTensor sortedPairs,
                       DeviceTensor pairRow, DeviceTensor tileExpert) {
        static final String OP = "expert grouping";

        public Args {
            int any = TensorContract.ANY;
            TensorContract.require(OP, "chunkCounts", chunkCounts, DType.I32, any, any);
            int experts = chunkCounts.dim(1);
            if (experts < 1 || experts > MAX_EXPERTS) {
                throw TensorContract.fail(OP, "chunkCounts", "must hold 1 to " + MAX_EXPERTS + " experts per chunk, got " + chunkCounts);
            }
            TensorContract.require(OP, "sortedPairs", sortedPairs, DType.I32, any, any);
            TensorContract.positive(OP, "sortedPairs", sortedPairs, 1);
            TensorContract.require(OP, "expertIds", expertIds, DType.I32, any);
            TensorContract.require(OP, "expertStart", expertStart, DType.I32, experts + 1);
            TensorContract.require(OP, "pairRow", pairRow, DType.I32, any);
            TensorContract.require(OP, "tileExpert", tileExpert, DType.I32, any);
        }

        public int experts() {
            return chunkCounts.dim(1);
        }

        /** The tile height the segments are padded to. */
        public int blockM() {
            return sortedPairs.dim(1);
        }

        void checkRows(int pairs) {
            int tiles = maxTiles(pairs, experts(), blockM());
            TensorContract.rows(OP, "expertIds", expertIds, pairs);
            TensorContract.rows(OP, "chunkCounts", chunkCounts, chunks(pairs));
            TensorContract.rows(OP, "sortedPairs", sortedPairs, tiles);
            TensorContract.rows(OP, "pairRow", pairRow, pairs);
            TensorContract.rows(OP, "tileExpert", tileExpert, tiles);
        }
    }

    /** Groups the first {@code pairs} expert ids (from the router) by expert. */
    public void launch(Stream s, Args a, int pairs) {
        if (pairs < 1) throw new IllegalArgumentException("expert grouping: pairs must be >= 1, got " + pairs);
        a.checkRows(pairs);
        int experts = a.experts(), blockM = a.blockM(), chunks = chunks(pairs);
        long expertIds = a.expertIds().address(), chunkCounts = a.chunkCounts().address(), expertStart = a.expertStart().address();
        long sortedPairs = a.sortedPairs().address(), pairRow = a.pairRow().address(), tileExpert = a.tileExpert().address();
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
