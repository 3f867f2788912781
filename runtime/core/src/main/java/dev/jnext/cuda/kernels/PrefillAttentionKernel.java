package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;
import dev.jnext.cuda.state.AttentionBatch;
import dev.jnext.cuda.state.KvPages;

/**
 * Prefill/extend flash attention over the paged KV cache (kernels-ptx/attention_prefill.cu): causal, GQA, the keys of
 * every sequence read through its page table (cached tokens and the new ones, which {@link AttentionPrepKernel} wrote),
 * fp32 online softmax, bf16 tensor cores; the output gate {@code bf16(bf16(o)·bf16(sigmoid(gate)))} fused in the epilogue.
 *
 * <p>A block holds 128 query rows: {@code 128 / G} tokens × the G query heads of one KV head, so each K/V page is loaded
 * once for the whole group. The grid comes from the {@link StepShape} only — (entries + token blocks of all the step's
 * rows, KV heads), enough for any split of the rows into entries — and each block finds its (sequence, token block) in
 * the device metadata; blocks nobody owns exit. Padded entries (past −1) and the rows past the last entry get zero rows.
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

    /** Work items per KV head: every entry adds at most one partial token block to the full blocks of all rows. */
    static Dim3 grid(AttentionGeometry g, StepShape shape) {
        int tok = tokensPerBlock(g);
        long items = (long) shape.seqs() + (shape.tokens() + tok - 1) / tok;
        if (items > Integer.MAX_VALUE) throw new IllegalArgumentException("prefill attention: " + shape + " exceeds one launch");
        return Dim3.of((int) items, g.kvHeads());
    }

    /**
     * The launch's tensors for {@code geometry} (H heads, head dim hd; row counts are capacities, checked per launch):
     * {@code q [≥T, H, hd]} bf16 from {@link AttentionPrepKernel}; {@code out [≥T, H·hd]} bf16, ready for o_proj (every
     * row written: padding and rows past the last entry zero); the output gate, or null for none: {@code gate
     * [≥T, H, S]} bf16 whose head rows hold the hd gate values from column {@code gateColumn} on (q_proj's output viewed
     * as {@code [T, H, 2·hd]} with column hd; or a dense {@code [T, H, hd]} with column 0).
     */
    public record Args(AttentionGeometry geometry, DeviceTensor q, DeviceTensor out, DeviceTensor gate, int gateColumn) {
        static final String OP = "prefill attention";

        public Args {
            checkTensors(OP, geometry, q, out, gate, gateColumn);
        }

        void checkRows(int rows) {
            checkTensorRows(OP, rows, q, out, gate);
        }
    }

    /** The contract of both attention launches' records (this and {@link DecodeAttentionKernel.Args}). */
    static void checkTensors(String op, AttentionGeometry g, DeviceTensor q, DeviceTensor out, DeviceTensor gate, int gateColumn) {
        int any = TensorContract.ANY, h = g.heads(), hd = g.headDim();
        TensorContract.require(op, "q", q, DType.BF16, any, h, hd);
        TensorContract.require(op, "out", out, DType.BF16, any, h * hd);
        if (gate == null) return;
        TensorContract.require(op, "gate", gate, DType.BF16, any, h, any);
        if (gateColumn < 0 || gateColumn + hd > gate.dim(2)) {
            throw TensorContract.fail(op, "gateColumn", hd + " gate values from column " + gateColumn + " do not fit " + gate);
        }
        checkGate(gateAddress(gate, gateColumn), gateTokenStride(gate), gateHeadStride(gate), g);
    }

    static void checkTensorRows(String op, int rows, DeviceTensor q, DeviceTensor out, DeviceTensor gate) {
        TensorContract.rows(op, "q", q, rows);
        TensorContract.rows(op, "out", out, rows);
        if (gate != null) TensorContract.rows(op, "gate", gate, rows);
    }

    /** The kernels' gate pointer: the first gate value, or 0 for no gate. */
    static long gateAddress(DeviceTensor gate, int gateColumn) {
        return gate == null ? 0 : gate.address() + (long) DType.BF16.bytes() * gateColumn;
    }

    /** Elements between two tokens' gates (0 for no gate). */
    static int gateTokenStride(DeviceTensor gate) {
        return gate == null ? 0 : gate.dim(1) * gate.dim(2);
    }

    /** Elements between two heads' gates (0 for no gate). */
    static int gateHeadStride(DeviceTensor gate) {
        return gate == null ? 0 : gate.dim(2);
    }

    /** Launch arguments must be built for the launcher's geometry. */
    static void checkGeometry(AttentionGeometry built, AttentionGeometry runs, String op) {
        if (built != runs && !built.equals(runs)) {
            throw new IllegalArgumentException(op + ": arguments built for " + built + ", the launcher runs " + runs);
        }
    }

    /** Attention over {@code layer}'s pages for a step of fixed {@code shape} ({@code shape.tokens()} rows, {@code shape.seqs()} entries). */
    public void launch(Stream s, StepShape shape, Args a, AttentionBatch batch, KvPages pages, int layer) {
        checkGeometry(a.geometry(), geometry, Args.OP);
        checkPool(geometry, pages.geometry(), "prefill attention");
        checkEntries(shape, batch, "prefill attention");
        a.checkRows(shape.tokens());
        DeviceTensor gate = a.gate();
        kernel.args().ptr(a.q().address()).ptr(pages.keys(layer)).ptr(pages.values(layer)).ptr(batch.pageTable())
                .i32(batch.pageTableStride()).ptr(batch.cuSeqlens()).ptr(batch.pastLengths()).i32(shape.seqs()).i32(shape.tokens())
                .ptr(a.out().address()).ptr(gateAddress(gate, a.gateColumn())).i32(gateTokenStride(gate)).i32(gateHeadStride(gate))
                .i32(geometry.heads()).i32(geometry.kvHeads()).f32(geometry.scaleLog2());
        kernel.launch(s, grid(geometry, shape), Dim3.of(threads(groupWarps)), sharedBytes(geometry.headDim(), groupWarps));
    }

    static void checkPool(AttentionGeometry g, KvPages.Geometry pool, String who) {
        if (pool.kvHeads() != g.kvHeads() || pool.headDim() != g.headDim()) {
            throw new IllegalArgumentException(who + ": KV pool is " + pool.kvHeads() + " x " + pool.headDim() + ", the layer "
                    + g.kvHeads() + " x " + g.headDim());
        }
    }

    /** The shape's entries must fit the batch's device arrays (sized once; nothing staged per step is read here). */
    static void checkEntries(StepShape shape, AttentionBatch batch, String who) {
        if (shape.seqs() > batch.maxSeqs()) {
            throw new IllegalArgumentException(who + ": " + shape.seqs() + " entries, the batch metadata holds " + batch.maxSeqs());
        }
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
