package dev.jnext.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;
import dev.jnext.state.AttentionBatch;
import dev.jnext.state.KvPages;

/**
 * Prefill/extend flash attention over the paged KV cache (kernels-ptx/attention_prefill.cu): causal, GQA, the keys of
 * every sequence read through its page table (cached tokens and the new ones, which {@link AttentionPrepKernel} wrote),
 * fp32 online softmax, bf16 tensor cores; the output gate {@code bf16(bf16(o)·bf16(sigmoid(gate)))} fused in the epilogue.
 *
 * <p>A block holds 128 query rows: {@code 128 / G} tokens × the G query heads of one KV head, so each K/V page is loaded
 * once for the whole group. Grid: (token blocks of the longest sequence, sequences, KV heads).
 */
public final class PrefillAttentionKernel {
    static final int BLOCK_ROWS = 128;
    /** Warps per group of 32 query rows of the default kernel (8 warps per block). */
    public static final int DEFAULT_GROUP_WARPS = 2;

    private final Kernel kernel;
    private final AttentionGeometry geometry;
    private final int groupWarps;

    public PrefillAttentionKernel(KernelLibrary lib, AttentionGeometry geometry) {
        this(lib, geometry, DEFAULT_GROUP_WARPS);
    }

    /**
     * {@code groupWarps} warps share each group of 32 query rows: 2 (the default, verified by the parity tests) or 4
     * (experimental, head_dim 256 only: 16 warps of 128 registers; the attention benchmark compares it with the default).
     */
    public PrefillAttentionKernel(KernelLibrary lib, AttentionGeometry geometry, int groupWarps) {
        if (groupWarps != 2 && !(groupWarps == 4 && geometry.headDim() == 256)) {
            throw new IllegalArgumentException("prefill attention: 2 warps per row group, or 4 at head_dim 256; got " + groupWarps
                    + " at head_dim " + geometry.headDim());
        }
        this.geometry = geometry;
        this.groupWarps = groupWarps;
        this.kernel = lib.kernel("attention_prefill", "attention_prefill_hd" + geometry.headDim() + (groupWarps == 4 ? "_w4" : ""));
        int smem = sharedBytes(geometry.headDim(), groupWarps);
        if (smem > 48 * 1024) kernel.allowDynamicSharedMemory(smem);
    }

    /** Q tile, double-buffered K and V tiles, the P tile and the row groups' max/sum exchange (attention_prefill.cu). */
    static int sharedBytes(int headDim, int groupWarps) {
        return (BLOCK_ROWS + 4 * KvPages.PAGE_TOKENS) * headDim * 2 + BLOCK_ROWS * KvPages.PAGE_TOKENS * 2
                + 2 * groupWarps * BLOCK_ROWS * 4;
    }

    static int threads(int groupWarps) {
        return 4 * groupWarps * 32;
    }

    /** Query tokens per block: 128 rows / G heads. */
    static int tokensPerBlock(AttentionGeometry g) {
        return BLOCK_ROWS / g.group();
    }

    static Dim3 grid(AttentionGeometry g, int numSeqs, int maxNewTokens) {
        int tok = tokensPerBlock(g);
        return Dim3.of(Math.max(1, (maxNewTokens + tok - 1) / tok), numSeqs, g.kvHeads());
    }

    /**
     * @param q     [T, heads, headDim] from {@link AttentionPrepKernel}
     * @param out   [T, heads · headDim], ready for o_proj
     * @param gate  first gate value (q_proj output + headDim elements), or 0 for no gate
     * @param gateTokenStride elements between tokens of the gate (q_proj layout: heads · 2 · headDim)
     * @param gateHeadStride  elements between heads of the gate (q_proj layout: 2 · headDim)
     */
    public void launch(Stream s, long q, KvPages pages, int layer, AttentionBatch batch, long out, long gate,
                       int gateTokenStride, int gateHeadStride) {
        checkGate(gate, gateTokenStride, gateHeadStride, geometry);
        if (pages.geometry().kvHeads() != geometry.kvHeads() || pages.geometry().headDim() != geometry.headDim()) {
            throw new IllegalArgumentException("prefill attention: KV pool is " + pages.geometry().kvHeads() + " x "
                    + pages.geometry().headDim() + ", the layer " + geometry.kvHeads() + " x " + geometry.headDim());
        }
        if (batch.maxNewTokens() < 1) return;
        kernel.args().ptr(q).ptr(pages.keys(layer)).ptr(pages.values(layer)).ptr(batch.pageTable()).i32(batch.pageTableStride())
                .ptr(batch.cuSeqlens()).ptr(batch.pastLengths()).i32(batch.numSeqs()).ptr(out).ptr(gate)
                .i32(gateTokenStride).i32(gateHeadStride).i32(geometry.heads()).i32(geometry.kvHeads()).f32(geometry.scaleLog2());
        kernel.launch(s, grid(geometry, batch.numSeqs(), batch.maxNewTokens()), Dim3.of(threads(groupWarps)),
                sharedBytes(geometry.headDim(), groupWarps));
    }

    static void checkGate(long gate, int tokenStride, int headStride, AttentionGeometry g) {
        if (gate == 0) return;
        if (gate % 16 != 0 || tokenStride % 8 != 0 || headStride % 8 != 0 || headStride < g.headDim()
                || tokenStride < g.heads() * headStride) {
            throw new IllegalArgumentException("attention gate: address must be 16-byte aligned and strides multiples of 8 with "
                    + "headStride >= " + g.headDim() + " and tokenStride >= heads * headStride; got headStride " + headStride
                    + ", tokenStride " + tokenStride);
        }
    }
}
