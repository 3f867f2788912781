package dev.jnext.cuda.state;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Event;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.PinnedBuffer;
import dev.jnext.gpu.Stream;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * Everything a forward step needs to know about its batch, in fixed device buffers refreshed by <b>one</b>
 * host-to-device copy per step (graphs of every bucket read these addresses). int32 unless noted, in one allocation:
 * <pre>
 *   attention  the {@link AttentionBatch} layout: cu_seqlens, past (−1: padding entry), page tables
 *   ids        [maxTokens]     token id per activation row; −1 for padding rows (embedding gives a zero row)
 *   tokenSlot  [maxTokens]     sequence slot of each row (the sampling history marks its token as seen); −1: padding
 *   gdnSlot    [maxEntries]    GDN state slot of each batch entry; −1: padding or empty entry
 *   logitRow   [maxLogitRows]  activation row whose logits are computed; −1 gives a zero row
 *   sampleSlot [maxLogitRows]  sequence slot of each logits row for sampling; −1: not sampled
 *   params     [maxLogitRows]  sampling parameters, {@value #PARAM_BYTES} bytes per row (the sampling kernel's encoding)
 *   rng        [maxLogitRows]  (seed, draws so far) u64 pairs
 * </pre>
 * The host writes into pinned staging between steps; {@link #upload} waits until the previous copy has left the staging
 * buffer before the next step overwrites it.
 */
public final class StepMetadata implements AutoCloseable {
    /** Bytes reserved per row for the sampling kernel's parameter record. */
    public static final int PARAM_BYTES = 64;
    /** Bytes of one logits row's generator state: (seed, draws so far) as two u64. */
    public static final int RNG_BYTES = 16;

    private final int maxTokens, maxEntries, maxPagesPerSeq, maxLogitRows;
    private final long attentionOff, idsOff, tokenSlotOff, gdnSlotOff, logitRowOff, sampleSlotOff, paramsOff, rngOff, bytes;
    private final int[] attentionInts;
    private final DeviceBuffer device;
    private final PinnedBuffer staging;
    private final Event copied;
    private final AttentionBatch attention;
    private boolean pending;

    /** Device and pinned staging buffers sized for steps of up to these bounds. */
    public StepMetadata(Gpu gpu, int maxTokens, int maxEntries, int maxPagesPerSeq, int maxLogitRows) {
        this.maxTokens = maxTokens;
        this.maxEntries = maxEntries;
        this.maxPagesPerSeq = maxPagesPerSeq;
        this.maxLogitRows = maxLogitRows;
        long[] o = layout(maxTokens, maxEntries, maxPagesPerSeq, maxLogitRows);
        attentionOff = o[0];
        idsOff = o[1];
        tokenSlotOff = o[2];
        gdnSlotOff = o[3];
        logitRowOff = o[4];
        sampleSlotOff = o[5];
        paramsOff = o[6];
        rngOff = o[7];
        bytes = o[8];
        attentionInts = new int[AttentionBatch.intsFor(maxEntries, maxPagesPerSeq)];
        DeviceBuffer d = gpu.allocate(bytes, "step-metadata");
        PinnedBuffer p = null;
        try {
            p = gpu.allocatePinned(bytes);
            this.copied = gpu.createEvent(false);
        } catch (RuntimeException e) {
            if (p != null) p.close();
            d.close();
            throw e;
        }
        this.device = d;
        this.staging = p;
        this.attention = AttentionBatch.view(d.address(attentionOff), maxEntries, maxPagesPerSeq);
    }

    /** Bytes the metadata of these limits takes on the device (for the memory plan). */
    public static long bytesFor(int maxTokens, int maxEntries, int maxPagesPerSeq, int maxLogitRows) {
        return layout(maxTokens, maxEntries, maxPagesPerSeq, maxLogitRows)[8];
    }

    /** Region offsets in the order of the class comment, then the total. */
    private static long[] layout(int maxTokens, int maxEntries, int maxPagesPerSeq, int maxLogitRows) {
        long[] c = {0};
        long[] o = new long[9];
        o[0] = take(c, 4L * AttentionBatch.intsFor(maxEntries, maxPagesPerSeq));
        o[1] = take(c, 4L * maxTokens);
        o[2] = take(c, 4L * maxTokens);
        o[3] = take(c, 4L * maxEntries);
        o[4] = take(c, 4L * maxLogitRows);
        o[5] = take(c, 4L * maxLogitRows);
        o[6] = take(c, (long) PARAM_BYTES * maxLogitRows);
        o[7] = take(c, (long) RNG_BYTES * maxLogitRows);
        o[8] = take(c, 0);
        return o;
    }

    private static long take(long[] cursor, long n) {
        long off = (cursor[0] + 15) / 16 * 16;
        cursor[0] = off + n;
        return off;
    }

    /**
     * Starts a new step's metadata: waits until the last upload has left staging, then sets every id, slot and row to
     * −1 and packs {@code entries} into the attention region. Returns the entries' total tokens.
     */
    public int begin(List<AttentionBatch.Sequence> entries) {
        if (pending) {
            copied.synchronize();
            pending = false;
        }
        MemorySegment s = staging.segment();
        s.asSlice(idsOff, paramsOff - idsOff).fill((byte) 0xff);
        int total = AttentionBatch.pack(entries, maxEntries, maxPagesPerSeq, attentionInts);
        MemorySegment.copy(attentionInts, 0, s, ValueLayout.JAVA_INT, attentionOff, attentionInts.length);
        return total;
    }

    /** Row {@code row} of the step is token {@code id} of the sequence in {@code slot}. */
    public void setToken(int row, int id, int slot) {
        checkIndex(row, maxTokens, "token row");
        staging.segment().set(ValueLayout.JAVA_INT, idsOff + 4L * row, id);
        staging.segment().set(ValueLayout.JAVA_INT, tokenSlotOff + 4L * row, slot);
    }

    /** Batch entry {@code entry} reads and writes the GDN state of {@code slot} (−1: padding). */
    public void setGdnSlot(int entry, int slot) {
        checkIndex(entry, maxEntries, "batch entry");
        staging.segment().set(ValueLayout.JAVA_INT, gdnSlotOff + 4L * entry, slot);
    }

    /** Logits row {@code r} is computed from activation row {@code row}; sampled for {@code slot} (−1: not sampled). */
    public void setLogitRow(int r, int row, int slot, long seed, long draws) {
        checkIndex(r, maxLogitRows, "logits row");
        MemorySegment s = staging.segment();
        s.set(ValueLayout.JAVA_INT, logitRowOff + 4L * r, row);
        s.set(ValueLayout.JAVA_INT, sampleSlotOff + 4L * r, slot);
        s.set(ValueLayout.JAVA_LONG, rngOff + (long) RNG_BYTES * r, seed);
        s.set(ValueLayout.JAVA_LONG, rngOff + (long) RNG_BYTES * r + 8, draws);
    }

    /** Host staging of the parameter record of logits row {@code r} ({@value #PARAM_BYTES} bytes). */
    public MemorySegment paramsStaging() {
        return staging.segment().asSlice(paramsOff, (long) PARAM_BYTES * maxLogitRows);
    }

    /** Copies the staged metadata to the device on {@code stream} (one copy). */
    public void upload(Stream stream) {
        device.copyFromHostAsync(staging.segment(), 0, stream);
        copied.record(stream);
        pending = true;
    }

    /** The step's attention metadata (a view into the same buffers). */
    public AttentionBatch attention() {
        return attention;
    }

    /** Device address of the token ids [maxTokens] (int32; −1 for padding rows). */
    public long ids() {
        return device.address(idsOff);
    }

    /** Device address of each row's sequence slot [maxTokens] (int32). */
    public long tokenSlots() {
        return device.address(tokenSlotOff);
    }

    /** Device address of each entry's GDN slot [maxEntries] (int32; −1: padding or empty entry). */
    public long gdnSlots() {
        return device.address(gdnSlotOff);
    }

    /** Device address of the activation row of each logits row [maxLogitRows] (int32). */
    public long logitRows() {
        return device.address(logitRowOff);
    }

    /** Device address of the slot each logits row samples for [maxLogitRows] (int32, −1: none). */
    public long sampleSlots() {
        return device.address(sampleSlotOff);
    }

    /** Device address of the sampling parameter records, {@value #PARAM_BYTES} bytes per logits row. */
    public long params() {
        return device.address(paramsOff);
    }

    /** Device address of the generator states, (seed, draws so far) u64 pairs [maxLogitRows]. */
    public long rng() {
        return device.address(rngOff);
    }

    /** Most rows of a step. */
    public int maxTokens() {
        return maxTokens;
    }

    /** Most batch entries of a step. */
    public int maxEntries() {
        return maxEntries;
    }

    /** Most logits rows of a step. */
    public int maxLogitRows() {
        return maxLogitRows;
    }

    private static void checkIndex(int i, int n, String what) {
        if (i < 0 || i >= n) throw new IndexOutOfBoundsException(what + " " + i + " of " + n);
    }

    @Override
    public void close() {
        try {
            if (pending) copied.synchronize();
        } finally {
            copied.close();
            staging.close();
            device.close();
        }
    }
}
