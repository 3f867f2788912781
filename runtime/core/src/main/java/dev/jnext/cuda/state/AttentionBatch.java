package dev.jnext.cuda.state;

import dev.jnext.JnextException;
import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Event;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.PinnedBuffer;
import dev.jnext.gpu.Stream;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * The attention metadata of one forward step in fixed device buffers (allocated once, so captured graphs can read them),
 * refreshed by one host-to-device copy per step. int32, in one allocation:
 * <pre>
 *   cu_seqlens [maxSeqs + 1]            first new-token row of each sequence, then the total
 *   past       [maxSeqs]                tokens cached before this step; −1 marks a padded entry, which kernels skip
 *   pageTable  [maxSeqs][maxPagesPerSeq] the sequence's KV pages in token order, −1 beyond its reserved pages
 * </pre>
 * Sequence i's new tokens are rows cu_seqlens[i] .. cu_seqlens[i+1]−1 of the step's activations, at positions
 * past[i] .. past[i] + newTokens − 1; their K/V go to those positions of the page table.
 */
public final class AttentionBatch implements AutoCloseable {

    /** One batch entry: a sequence's pages, how many tokens it had cached, how many new tokens it brings. */
    public record Sequence(PageTable pages, int past, int newTokens) {
        /** Checks that a sequence without pages is padding and that the lengths are not negative. */
        public Sequence {
            if (pages == null && past != -1) throw new IllegalArgumentException("a sequence without pages must be padding (past = -1)");
            if (pages != null && past < 0) throw new IllegalArgumentException("past length must be >= 0, got " + past);
            if (newTokens < 0) throw new IllegalArgumentException("new tokens must be >= 0, got " + newTokens);
        }

        /** A padded batch entry of {@code newTokens} rows (decode graphs pad the batch to their bucket size). */
        public static Sequence padding(int newTokens) {
            return new Sequence(null, -1, newTokens);
        }

        /** Whether this entry is padding (no pages, past −1): kernels skip it and zero its rows. */
        public boolean isPadding() {
            return pages == null;
        }
    }

    private final int maxSeqs;
    private final int maxPagesPerSeq;
    private final int[] host;
    private final DeviceBuffer device;
    private final PinnedBuffer staging;
    private final Event copied;
    /** Device address of the int32 layout: the owned buffer's, or the caller's region for a {@link #view}. */
    private final long base;
    private boolean copyPending;
    private int numSeqs;
    private int totalTokens;
    private int maxNewTokens;
    private boolean decode;

    /** Device buffers for batches of up to {@code maxSeqs} entries of up to {@code maxPagesPerSeq} pages each. */
    public AttentionBatch(Gpu gpu, int maxSeqs, int maxPagesPerSeq) {
        this.maxSeqs = maxSeqs;
        this.maxPagesPerSeq = maxPagesPerSeq;
        this.host = new int[intsFor(maxSeqs, maxPagesPerSeq)];
        DeviceBuffer d = gpu.allocate(4L * host.length, "attention-batch");
        PinnedBuffer p = null;
        try {
            p = gpu.allocatePinned(4L * host.length);
            this.copied = gpu.createEvent(false);
        } catch (RuntimeException e) {
            if (p != null) p.close();
            d.close();
            throw e;
        }
        this.device = d;
        this.staging = p;
        this.base = d.address();
    }

    private AttentionBatch(long base, int maxSeqs, int maxPagesPerSeq) {
        this.maxSeqs = maxSeqs;
        this.maxPagesPerSeq = maxPagesPerSeq;
        this.host = null;
        this.device = null;
        this.staging = null;
        this.copied = null;
        this.base = base;
    }

    /**
     * A batch whose {@link #intsFor} int32 words live at {@code base} inside a buffer the caller owns and fills (with
     * {@link #pack}) as part of its own single host-to-device copy per step; {@link #stage} is not available on a view.
     */
    public static AttentionBatch view(long base, int maxSeqs, int maxPagesPerSeq) {
        intsFor(maxSeqs, maxPagesPerSeq);
        if (base == 0 || base % 16 != 0) throw new IllegalArgumentException("attention batch view: base must be a 16-byte aligned device address");
        return new AttentionBatch(base, maxSeqs, maxPagesPerSeq);
    }

    /** Length of the int32 layout (cu_seqlens, past lengths, page table) for these bounds. */
    public static int intsFor(int maxSeqs, int maxPagesPerSeq) {
        if (maxSeqs < 1 || maxPagesPerSeq < 1) {
            throw new IllegalArgumentException("attention batch: maxSeqs and maxPagesPerSeq must be positive, got " + maxSeqs
                    + " and " + maxPagesPerSeq);
        }
        return Math.addExact(2 * maxSeqs + 1, Math.multiplyExact(maxSeqs, maxPagesPerSeq));
    }

    /**
     * Packs {@code seqs} into {@code out} (length {@link #intsFor}) in the device layout and returns the total number of new
     * tokens. Checks that every sequence's pages cover past + newTokens tokens.
     */
    public static int pack(List<Sequence> seqs, int maxSeqs, int maxPagesPerSeq, int[] out) {
        if (seqs.isEmpty()) throw new JnextException("attention batch is empty");
        if (seqs.size() > maxSeqs) {
            throw new JnextException("attention batch of " + seqs.size() + " sequences exceeds the " + maxSeqs + " it was sized for");
        }
        int cuBase = 0, pastBase = maxSeqs + 1, tableBase = 2 * maxSeqs + 1;
        java.util.Arrays.fill(out, 0, intsFor(maxSeqs, maxPagesPerSeq), -1);
        int rows = 0;
        for (int i = 0; i < seqs.size(); i++) {
            Sequence s = seqs.get(i);
            out[cuBase + i] = rows;
            out[pastBase + i] = s.past();
            if (!s.isPadding()) {
                long tokens = (long) s.past() + s.newTokens();
                PageTable t = s.pages();
                if (tokens > t.capacityTokens()) {
                    throw new JnextException("attention batch sequence " + i + ": " + s.past() + " cached + " + s.newTokens()
                            + " new tokens need " + t.allocator().pagesFor((int) Math.min(Integer.MAX_VALUE, tokens))
                            + " pages but its page table holds " + t.pageCount() + " (reserve first)");
                }
                int used = t.allocator().pagesFor((int) tokens);
                if (used > maxPagesPerSeq) {
                    throw new JnextException("attention batch sequence " + i + ": " + tokens + " tokens need " + used
                            + " pages, more than the " + maxPagesPerSeq + " per sequence the batch was sized for");
                }
                for (int p = 0; p < used; p++) out[tableBase + i * maxPagesPerSeq + p] = t.page(p);
            }
            rows = Math.addExact(rows, s.newTokens());
        }
        for (int i = seqs.size(); i <= maxSeqs; i++) out[cuBase + i] = rows;
        return rows;
    }

    /** Packs {@code seqs} and copies them to the device buffers on {@code stream} (waits for the previous step's copy first). */
    public void stage(List<Sequence> seqs, Stream stream) {
        if (device == null) throw new IllegalStateException("attention batch view: its owner stages the metadata");
        if (copyPending) copied.synchronize();
        totalTokens = pack(seqs, maxSeqs, maxPagesPerSeq, host);
        numSeqs = seqs.size();
        maxNewTokens = 0;
        decode = true;
        for (Sequence s : seqs) {
            maxNewTokens = Math.max(maxNewTokens, s.newTokens());
            decode &= s.newTokens() == 1;
        }
        MemorySegment seg = staging.segment();
        MemorySegment.copy(host, 0, seg, ValueLayout.JAVA_INT, 0, host.length);
        device.copyFromHostAsync(seg, 0, stream);
        copied.record(stream);
        copyPending = true;
    }

    /** Most entries of a batch. */
    public int maxSeqs() {
        return maxSeqs;
    }

    /** Most pages of one entry (the page table's row length). */
    public int maxPagesPerSeq() {
        return maxPagesPerSeq;
    }

    /** Entries of the staged batch (padding included). */
    public int numSeqs() {
        return numSeqs;
    }

    /** New tokens of the staged batch, all entries together. */
    public int totalTokens() {
        return totalTokens;
    }

    /** New tokens of the staged batch's longest entry. */
    public int maxNewTokens() {
        return maxNewTokens;
    }

    /** Whether every entry of the staged batch brings exactly one token (row i is sequence i). */
    public boolean isDecode() {
        return decode;
    }

    /** Device address of {@code cu_seqlens} [maxSeqs + 1] (int32): entry i's rows are [cu[i], cu[i+1]). */
    public long cuSeqlens() {
        return base;
    }

    /** Device address of the cached-token counts [maxSeqs] (int32; −1 marks padding). */
    public long pastLengths() {
        return base + 4L * (maxSeqs + 1);
    }

    /** Device address of the page table [maxSeqs, maxPagesPerSeq] (int32; −1 past a sequence's pages). */
    public long pageTable() {
        return base + 4L * (2 * maxSeqs + 1);
    }

    /** Row stride of the page table (ints). */
    public int pageTableStride() {
        return maxPagesPerSeq;
    }

    @Override
    public void close() {
        if (device == null) return;
        try {
            if (copyPending) copied.synchronize();
        } finally {
            copied.close();
            staging.close();
            device.close();
        }
    }
}
