package dev.jnext.cuda.kernels;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;
import dev.jnext.cuda.state.AttentionBatch;
import dev.jnext.cuda.state.KvPages;

/**
 * Decode attention over the paged KV cache (kernels-ptx/attention_decode.cu), flash-decoding: one new token per sequence
 * (row i of q is sequence i), the cached length split over {@code splits} blocks per (sequence, KV head), each computing a
 * partial softmax·V for the G query heads of its KV head; a combine kernel merges the splits, rounds to bf16 and applies
 * the output gate. Bandwidth bound: every cached K and V byte is read once.
 *
 * <p>The split count depends only on the {@link StepShape}'s entries and the card ({@link #splitsFor}), never on the
 * context lengths or the staged batch, so a decode graph captured for a batch bucket stays valid; the partial-result scratch is allocated here, once, for
 * {@code maxSeqs}.
 */
public final class DecodeAttentionKernel implements AutoCloseable {
    static final int THREADS = 128;
    static final int STAGES = 3;
    static final int COMBINE_THREADS = 128;

    private final Kernel split;
    private final Kernel combine;
    private final AttentionGeometry geometry;
    private final int maxSeqs;
    private final int slots;
    private final int maxSplits;
    private final DeviceBuffer oPart;
    private final DeviceBuffer lsePart;

    public DecodeAttentionKernel(KernelLibrary lib, AttentionGeometry geometry, int maxSeqs) {
        if (maxSeqs < 1) throw new IllegalArgumentException("decode attention: maxSeqs must be positive, got " + maxSeqs);
        this.geometry = geometry;
        this.maxSeqs = maxSeqs;
        int nt = geometry.group() <= 8 ? 1 : 2;
        this.split = lib.kernel("attention_decode", "attention_decode_hd" + geometry.headDim() + "_g" + nt);
        this.combine = lib.kernel("attention_decode", "attention_decode_combine");
        int smem = sharedBytes(geometry.headDim());
        if (smem > 48 * 1024) split.allowDynamicSharedMemory(smem);
        Gpu gpu = lib.gpu();
        this.slots = gpu.device().smCount() * blocksPerSm(smem, gpu.device().maxSharedMemoryPerBlockOptin());
        this.maxSplits = Math.max(1, slots / geometry.kvHeads());
        long entries = scratchEntries(geometry, maxSeqs, slots);
        DeviceBuffer o = gpu.allocate(4L * entries * geometry.headDim(), "decode-o-part");
        try {
            this.lsePart = gpu.allocate(4L * entries, "decode-lse-part");
        } catch (RuntimeException e) {
            o.close();
            throw e;
        }
        this.oPart = o;
    }

    /** K and V pages for each pipeline stage (the merge reuses them). */
    static int sharedBytes(int headDim) {
        return STAGES * 2 * KvPages.PAGE_TOKENS * headDim * 2;
    }

    /** The split weights, then one partial sum per group of threads (128 / (headDim / 4) groups). */
    static int combineSharedBytes(int headDim, int splits) {
        return 4 * ((splits + 3) / 4 * 4 + COMBINE_THREADS / (headDim / 4) * headDim);
    }

    static int blocksPerSm(int smemPerBlock, int smemOptin) {
        return Math.max(1, Math.min(8, smemOptin / smemPerBlock));
    }

    /**
     * Splits per (sequence, KV head): enough blocks for one full wave over the card ({@code slots} resident blocks), one
     * split once the batch alone fills it.
     */
    public static int splitsFor(int numSeqs, int kvHeads, int slots) {
        long pairs = (long) numSeqs * kvHeads;
        return (int) Math.max(1, slots / pairs);
    }

    /** Partial results needed: (sequence, head, split) triples at the largest batch. */
    static long scratchEntries(AttentionGeometry g, int maxSeqs, int slots) {
        long worst = 0;
        for (int n = 1; n <= maxSeqs; n++) worst = Math.max(worst, (long) n * g.heads() * splitsFor(n, g.kvHeads(), slots));
        return worst;
    }

    public int splitsFor(int numSeqs) {
        return splitsFor(numSeqs, geometry.kvHeads(), slots);
    }

    /**
     * The launch's tensors, as {@link PrefillAttentionKernel.Args} with one row per batch entry: {@code q [≥seqs, H, hd]}
     * bf16; {@code out [≥seqs, H·hd]} bf16 (padded entries, past −1, get zero rows); the output gate {@code gate
     * [≥seqs, H, S]} bf16 from column {@code gateColumn} of each head row, or null for none. Row counts are capacities,
     * checked per launch.
     */
    public record Args(AttentionGeometry geometry, DeviceTensor q, DeviceTensor out, DeviceTensor gate, int gateColumn) {
        static final String OP = "decode attention";

        public Args {
            PrefillAttentionKernel.checkTensors(OP, geometry, q, out, gate, gateColumn);
        }

        void checkRows(int seqs) {
            PrefillAttentionKernel.checkTensorRows(OP, seqs, q, out, gate);
        }
    }

    /** As {@link #launch(Stream, StepShape, Args, AttentionBatch, KvPages, int, int)} with {@link #splitsFor}. */
    public void launch(Stream s, StepShape shape, Args a, AttentionBatch batch, KvPages pages, int layer) {
        launch(s, shape, a, batch, pages, layer, splitsFor(shape.seqs()));
    }

    /**
     * Decode attention over {@code layer}'s pages for a decode {@code shape}: {@code shape.seqs()} entries, row i of q and
     * out is entry i; {@code splits} blocks per (sequence, KV head), 1 .. the scratch allows.
     */
    public void launch(Stream s, StepShape shape, Args a, AttentionBatch batch, KvPages pages, int layer, int splits) {
        PrefillAttentionKernel.checkGeometry(a.geometry(), geometry, Args.OP);
        if (!shape.decode()) throw new IllegalArgumentException("decode attention: " + shape + " is not a decode shape");
        int n = shape.seqs();
        if (n > maxSeqs) throw new IllegalArgumentException("decode attention: " + n + " sequences, sized for " + maxSeqs);
        PrefillAttentionKernel.checkEntries(shape, batch, "decode attention");
        if (splits < 1 || (long) n * geometry.heads() * splits > lsePart.bytes() / 4) {
            throw new IllegalArgumentException("decode attention: " + splits + " splits for " + n + " sequences exceed the scratch");
        }
        PrefillAttentionKernel.checkPool(geometry, pages.geometry(), "decode attention");
        a.checkRows(n);
        DeviceTensor gate = a.gate();
        split.args().ptr(a.q().address()).ptr(pages.keys(layer)).ptr(pages.values(layer)).ptr(batch.pageTable())
                .i32(batch.pageTableStride()).ptr(batch.pastLengths()).i32(n).i32(geometry.heads()).i32(geometry.kvHeads()).i32(splits)
                .f32(geometry.scaleLog2()).ptr(oPart.address()).ptr(lsePart.address());
        split.launch(s, Dim3.of(splits, geometry.kvHeads(), n), Dim3.of(THREADS), sharedBytes(geometry.headDim()));
        combine.args().ptr(oPart.address()).ptr(lsePart.address()).ptr(batch.pastLengths()).i32(n).i32(geometry.heads())
                .i32(geometry.headDim()).i32(splits).ptr(a.out().address()).ptr(PrefillAttentionKernel.gateAddress(gate, a.gateColumn()))
                .i32(PrefillAttentionKernel.gateTokenStride(gate)).i32(PrefillAttentionKernel.gateHeadStride(gate));
        combine.launch(s, Dim3.of(n * geometry.heads()), Dim3.of(COMBINE_THREADS), combineSharedBytes(geometry.headDim(), splits));
    }

    /** The most splits the scratch holds for a batch of {@code numSeqs}. */
    public int maxSplitsFor(int numSeqs) {
        return (int) Math.min(maxSplits, lsePart.bytes() / 4 / ((long) numSeqs * geometry.heads()));
    }

    @Override
    public void close() {
        try {
            oPart.close();
        } finally {
            lsePart.close();
        }
    }
}
