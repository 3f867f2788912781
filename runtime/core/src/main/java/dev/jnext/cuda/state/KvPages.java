package dev.jnext.cuda.state;

import dev.jnext.JnextException;
import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Gpu;

/**
 * The paged KV cache of the full-attention layers on the GPU: one device allocation owned by this pool, cut into pages of
 * {@value #PAGE_TOKENS} tokens that sequences take through their {@link PageTable} (host-side bookkeeping in
 * {@link PageAllocator}; the tables reach the kernels through {@link AttentionBatch}).
 *
 * <p>Layout, bf16: {@code [layer][K | V][page][kvHead][PAGE_TOKENS][headDim]}. A page id is shared by all attention layers
 * (one page table per sequence), and one (page, KV head) block of K or V is {@code 64 · headDim} contiguous values, so a
 * kernel loads a whole key tile with one run of 16-byte copies. Keys are stored after k_norm and RoPE, as in transformers'
 * cache.
 */
public final class KvPages implements AutoCloseable {
    /** Tokens per page; the attention kernels use it as their key-tile height (attention.cuh KV_PAGE). */
    public static final int PAGE_TOKENS = 64;

    /** The pool's shape: attention layers, KV heads, head size and page count. */
    public record Geometry(int layers, int kvHeads, int headDim, int pages) {
        /** Checks that every extent is positive. */
        public Geometry {
            if (layers < 1 || kvHeads < 1 || headDim < 1 || pages < 1) {
                throw new IllegalArgumentException("KV pool geometry must be positive: layers=" + layers + " kvHeads=" + kvHeads
                        + " headDim=" + headDim + " pages=" + pages);
            }
            if (headDim % 8 != 0) throw new IllegalArgumentException("KV pool: headDim must be a multiple of 8, got " + headDim);
        }

        /** Bytes of one page of K (or V) for one layer: all KV heads. */
        public long pageBytes() {
            return 2L * kvHeads * PAGE_TOKENS * headDim;
        }

        /** Bytes of one layer's K (or V) region. */
        public long regionBytes() {
            return pageBytes() * pages;
        }

        /** Bytes of the whole pool (K and V of every layer). */
        public long totalBytes() {
            return 2 * regionBytes() * layers;
        }

        /** Pages that fit in {@code bytes} for this many layers and heads (for sizing the pool from free memory). */
        public static int pagesFitting(long bytes, int layers, int kvHeads, int headDim) {
            long perPage = 2L * 2 * kvHeads * PAGE_TOKENS * headDim * layers;
            return (int) Math.min(Integer.MAX_VALUE, bytes / perPage);
        }
    }

    private final Geometry geometry;
    private final DeviceBuffer pool;
    private final PageAllocator allocator;

    private KvPages(Geometry geometry, DeviceBuffer pool) {
        this.geometry = geometry;
        this.pool = pool;
        this.allocator = new PageAllocator(geometry.pages(), PAGE_TOKENS);
    }

    /** Allocates the pool (contents undefined until written). */
    public static KvPages allocate(Gpu gpu, Geometry geometry) {
        Gpu.MemoryInfo mem = gpu.memoryInfo();
        if (geometry.totalBytes() > mem.free()) {
            throw new JnextException("KV cache of " + geometry.pages() + " pages x " + PAGE_TOKENS + " tokens needs "
                    + geometry.totalBytes() + " bytes for " + geometry.layers() + " attention layers; the GPU has " + mem.free()
                    + " bytes free");
        }
        return new KvPages(geometry, gpu.allocate(geometry.totalBytes(), "kv-pages"));
    }

    /** The pool's shape. */
    public Geometry geometry() {
        return geometry;
    }

    /** The allocator handing out this pool's pages. */
    public PageAllocator allocator() {
        return allocator;
    }

    /** An empty page table for a new sequence. */
    public PageTable newSequence() {
        return allocator.newSequence();
    }

    /** Device address of layer {@code layer}'s keys. */
    public long keys(int layer) {
        return pool.address(offset(layer, 0));
    }

    /** Device address of layer {@code layer}'s values. */
    public long values(int layer) {
        return pool.address(offset(layer, 1));
    }

    /** The whole pool (tests and benchmarks fill or read it directly). */
    public DeviceBuffer buffer() {
        return pool;
    }

    /** Byte offset of (layer, K=0|V=1, page, kvHead, row) in the pool. */
    public long byteOffset(int layer, int kOrV, int page, int kvHead, int row) {
        if (page < 0 || page >= geometry.pages()) throw new IndexOutOfBoundsException("page " + page + " of " + geometry.pages());
        return offset(layer, kOrV) + page * geometry.pageBytes()
                + ((long) kvHead * PAGE_TOKENS + row) * geometry.headDim() * 2;
    }

    private long offset(int layer, int kOrV) {
        if (layer < 0 || layer >= geometry.layers()) {
            throw new IndexOutOfBoundsException("attention layer " + layer + " of " + geometry.layers());
        }
        return (2L * layer + kOrV) * geometry.regionBytes();
    }

    @Override
    public void close() {
        pool.close();
    }
}
