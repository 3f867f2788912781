package dev.jnext.cuda.kernels;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.BitSet;

/**
 * The tokens each sequence slot has seen, on the device, for the sampling penalties of {@link SamplingKernel}: two bitmask
 * pools {@code [slots][ceil(vocab / 32)]} u32 — <em>seen</em> (prompt and generated tokens: the repetition penalty's set)
 * and <em>generated</em> (the presence penalty's) — bit {@code id % 32} of word {@code id / 32} per token id. The sampler
 * marks each picked id in both; {@link #observe} marks a step's input ids as seen; {@link #reset} clears a slot when a new
 * sequence takes it. Every operation is stream-ordered and decides nothing on the host, so it can sit inside a graph.
 */
public final class TokenHistory implements AutoCloseable {
    static final int OBSERVE_THREADS = 256;

    private final Kernel observe;
    private final int slots;
    private final int vocab;
    private final int words;
    private final DeviceBuffer pools;

    /** Both pools for {@code slots} sequence slots over ids [0, vocab), cleared. */
    public TokenHistory(KernelLibrary lib, int slots, int vocab) {
        if (slots < 1) throw new IllegalArgumentException("token history: slots must be >= 1, got " + slots);
        if (vocab < 1) throw new IllegalArgumentException("token history: vocab must be >= 1, got " + vocab);
        this.slots = slots;
        this.vocab = vocab;
        this.words = wordsFor(vocab);
        this.observe = lib.kernel("sampling", "history_observe");
        this.pools = lib.gpu().allocate(poolBytes(slots, vocab) * 2, "token-history");
        try (Stream init = lib.gpu().createStream()) {
            pools.fill32(0, init);
            init.synchronize();
        } catch (RuntimeException e) {
            pools.close();
            throw e;
        }
    }

    /** u32 words per slot. */
    public static int wordsFor(int vocab) {
        return (vocab + 31) / 32;
    }

    /** Bytes of one pool. */
    public static long poolBytes(int slots, int vocab) {
        return 4L * slots * wordsFor(vocab);
    }

    public int slots() {
        return slots;
    }

    public int vocab() {
        return vocab;
    }

    public int words() {
        return words;
    }

    /** Device address of the seen pool. */
    public long seen() {
        return pools.address();
    }

    /** Device address of the generated pool. */
    public long generated() {
        return pools.address(poolBytes(slots, vocab));
    }

    /** Clears {@code slot} in both pools (two ranged memsets), for the sequence that takes it next. */
    public void reset(Stream s, int slot) {
        checkSlot(slot, slots);
        long bytes = poolBytes(slots, vocab), at = 4L * slot * words;
        pools.fill32(at, words, 0, s);
        pools.fill32(bytes + at, words, 0, s);
    }

    /**
     * The tensors {@link #observe} reads, i32 (row counts are capacities, checked per launch): {@code ids [≥rows]}, e.g. a
     * step's input token ids, and {@code rowSlot [≥rows]}, each row's sequence slot.
     */
    public record ObserveArgs(DeviceTensor ids, DeviceTensor rowSlot) {
        static final String OP = "token history observe";

        public ObserveArgs {
            TensorContract.require(OP, "ids", ids, DType.I32, TensorContract.ANY);
            TensorContract.require(OP, "rowSlot", rowSlot, DType.I32, TensorContract.ANY);
        }

        void checkRows(int rows) {
            TensorContract.rows(OP, "ids", ids, rows);
            TensorContract.rows(OP, "rowSlot", rowSlot, rows);
        }
    }

    /**
     * Marks the first {@code rows} ids as seen in the slot of each row (a row whose slot is −1 or out of range is skipped;
     * ids outside [0, vocab) are ignored).
     */
    public void observe(Stream s, ObserveArgs a, int rows) {
        if (rows < 1) throw new IllegalArgumentException("token history: rows must be >= 1, got " + rows);
        a.checkRows(rows);
        observe.args().ptr(a.ids().address()).ptr(a.rowSlot().address()).i32(rows).ptr(seen()).i32(words).i32(slots).i32(vocab);
        observe.launch(s, Dim3.of((rows + OBSERVE_THREADS - 1) / OBSERVE_THREADS), Dim3.of(OBSERVE_THREADS), 0);
    }

    /**
     * Marks {@code tokens} as seen in {@code slot} (ids outside [0, vocab) are ignored), as if a step had fed them: a
     * prefix restored from the prefix cache. The slot's seen row is overwritten with a bitmask built on the host, so the
     * slot must be fresh (just {@link #reset}). Stream-ordered after the reset; waits for the stream (the host
     * buffer's lifetime), so it runs between steps.
     */
    public void markSeenFresh(Stream s, int slot, int[] tokens) {
        checkSlot(slot, slots);
        int[] bits = new int[words];
        for (int t : tokens) if (t >= 0 && t < vocab) bits[t >>> 5] |= 1 << (t & 31);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(4L * words, 4);
            MemorySegment.copy(bits, 0, host, java.lang.foreign.ValueLayout.JAVA_INT, 0, words);
            pools.copyFromHostAsync(host, 4L * slot * words, s);
            s.synchronize();
        }
    }

    /** The seen set of {@code slot}, read back synchronously (tests, diagnostics). */
    public BitSet downloadSeen(int slot) {
        return download(0, slot);
    }

    /** The generated set of {@code slot}, read back synchronously. */
    public BitSet downloadGenerated(int slot) {
        return download(poolBytes(slots, vocab), slot);
    }

    private BitSet download(long poolOffset, int slot) {
        checkSlot(slot, slots);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocate(4L * words);
            pools.copyToHost(host, poolOffset + 4L * slot * words);
            return BitSet.valueOf(host.asByteBuffer().order(java.nio.ByteOrder.LITTLE_ENDIAN));
        }
    }

    static void checkSlot(int slot, int slots) {
        if (slot < 0 || slot >= slots) throw new IllegalArgumentException("token history: slot " + slot + " outside [0, " + slots + ")");
    }
    @Override
    public void close() {
        pools.close();
    }
}
