package dev.jnext.cuda.kernels;

import dev.jnext.backend.TokenMask;
import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Event;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.PinnedBuffer;
import dev.jnext.gpu.Stream;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Token masks of constrained decoding on the device (sampling.cu {@code mask_logits}): the host computes each sampled
 * row's {@link TokenMask} (structured output's automaton over the vocabulary); this uploads them — a u32 bitmask row per
 * logits row, the {@link TokenMask} layout, and a flag per row — and sets the logits of the ids a row's mask does not
 * allow to −Inf before the sampler runs, as the CPU Sampler does. Steps without a mask launch nothing. The host staging
 * is pinned; an upload waits until the previous one has left it.
 */
public final class TokenMaskKernel implements AutoCloseable {
    private static final int THREADS = 256;
    private final Kernel kernel;
    private final int maxRows;
    private final int vocab;
    private final int words;
    private final DeviceBuffer device;
    private final PinnedBuffer staging;
    private final Event copied;
    private boolean pending;

    /** Masks for up to {@code maxRows} logits rows over ids [0, vocab). */
    public TokenMaskKernel(KernelLibrary lib, int maxRows, int vocab) {
        if (maxRows < 1 || vocab < 1) throw new IllegalArgumentException("token masks: rows and vocab must be >= 1, got " + maxRows + ", " + vocab);
        this.kernel = lib.kernel("sampling", "mask_logits");
        this.maxRows = maxRows;
        this.vocab = vocab;
        this.words = (vocab + 31) / 32;
        long bytes = bytes(maxRows, vocab);
        this.device = lib.gpu().allocate(bytes, "token-masks");
        try {
            this.staging = lib.gpu().allocatePinned(bytes);
            this.copied = lib.gpu().createEvent(false);
        } catch (RuntimeException e) {
            device.close();
            throw e;
        }
    }

    /** Device bytes (and pinned host bytes) for {@code maxRows} rows over {@code vocab} ids: the masks and the flags. */
    public static long bytes(int maxRows, int vocab) {
        return 4L * maxRows * ((vocab + 31) / 32) + 4L * maxRows;
    }

    /**
     * The launch's tensor: {@code logits [≥rows, stride]} bf16, written in place.
     */
    public record Args(DeviceTensor logits) {
        static final String OP = "mask_logits";

        public Args {
            TensorContract.require(OP, "logits", logits, DType.BF16, TensorContract.ANY, TensorContract.ANY);
        }
    }

    /**
     * Applies {@code masks[r]} to logits row {@code r} for the first {@code rows} rows (null: the row is left as it is),
     * over ids [0, {@code candidates}); launches nothing and returns false when no row has a mask.
     */
    public boolean apply(Stream s, Args a, TokenMask[] masks, int candidates, int rows) {
        if (rows < 1 || rows > maxRows || masks.length < rows) {
            throw new IllegalArgumentException("token masks: rows must be in [1, " + maxRows + "] with a mask slot each, got " + rows);
        }
        if (candidates < 1 || candidates > vocab || candidates > a.logits().dim(1)) {
            throw new IllegalArgumentException("token masks: " + candidates + " candidate ids, the masks cover " + vocab
                    + " and the logits rows " + a.logits().dim(1));
        }
        TensorContract.rows(Args.OP, "logits", a.logits(), rows);
        boolean any = false;
        for (int r = 0; r < rows; r++) any |= masks[r] != null;
        if (!any) return false;
        if (pending) {
            copied.synchronize();
            pending = false;
        }
        MemorySegment h = staging.segment();
        long flagsOff = 4L * maxRows * words;
        for (int r = 0; r < rows; r++) {
            TokenMask m = masks[r];
            long rowOff = 4L * r * words;
            h.asSlice(rowOff, 4L * words).fill((byte) 0);
            h.set(ValueLayout.JAVA_INT, flagsOff + 4L * r, m == null ? 0 : 1);
            if (m == null) continue;
            long[] w = m.words();   // bit i % 64 of long i / 64: little-endian, the same bytes as u32 words
            long n = Math.min(8L * w.length, 4L * words);
            MemorySegment.copy(MemorySegment.ofArray(w), 0, h, rowOff, n);
        }
        device.copyFromHostAsync(h.asSlice(0, 4L * rows * words), 0, s);
        device.copyFromHostAsync(h.asSlice(flagsOff, 4L * rows), flagsOff, s);
        copied.record(s);
        pending = true;
        kernel.args().ptr(a.logits().address()).i32(a.logits().dim(1)).i32(candidates).ptr(device.address()).i32(words)
                .ptr(device.address(flagsOff));
        kernel.launch(s, Dim3.of((candidates + THREADS - 1) / THREADS, rows), Dim3.of(THREADS), 0);
        return true;
    }

    @Override
    public void close() {
        try {
            copied.close();
        } finally {
            try {
                staging.close();
            } finally {
                device.close();
            }
        }
    }
}
