package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;
import dev.jnext.numeric.Bf16;

/**
 * Causal depthwise conv1d + SiLU of the Gated DeltaNet over bf16 rows {@code [T, C]} (kernels-ptx/causal_conv1d.cu),
 * semantics of {@link dev.jnext.cpu.ops.CausalConv1d} with torch's bf16 roundings:
 * {@code out = bf16(silu(bf16(Σ_j w[c, j] · x[t − (K−1) + j, c])))}.
 *
 * <p>Conv state pool {@code [slots, C, K−1]} bf16, column 0 the oldest raw input (the CPU op's and the design's
 * orientation; a thread's 8 channels × (K−1) taps are contiguous, so it is read with 16-byte accesses either way).
 * Slot −1 marks a padding sequence: its state is untouched and its output rows are zeroed.
 * <ul>
 *   <li>{@link #launchPrefill}: a varlen batch described by {@code cuSeqlens [B+1]} (device int32); each sequence starts
 *       from its slot's state and leaves its last K−1 raw inputs there.</li>
 *   <li>{@link #launchUpdate}: one token per sequence (decode); the window shifts by one in the slot.</li>
 * </ul>
 * Widths K = 2, 3, 4; C a multiple of 8.
 */
public final class CausalConv1dKernel {
    static final int THREADS = 128;
    /** Tokens one prefill thread convolves: kernels-ptx CHUNK, passed to the kernel, which traps on a mismatch. */
    static final int CHUNK = 8;
    static final int MAX_GRID_YZ = 65535;

    private final Kernel[] prefill = new Kernel[5];
    private final Kernel[] update = new Kernel[5];

    public CausalConv1dKernel(KernelLibrary lib) {
        for (int k = 2; k <= 4; k++) {
            prefill[k] = lib.kernel("causal_conv1d", "causal_conv1d_prefill_k" + k);
            update[k] = lib.kernel("causal_conv1d", "causal_conv1d_update_k" + k);
        }
    }

    /** Rejects widths and channel counts the kernels cannot run, naming the value. */
    public static void validate(int channels, int kernelWidth) {
        if (kernelWidth < 2 || kernelWidth > 4) {
            throw new IllegalArgumentException("causal conv1d: kernel width must be 2, 3 or 4, got " + kernelWidth);
        }
        if (channels < 8 || channels % 8 != 0) {
            throw new IllegalArgumentException("causal conv1d: channels must be a positive multiple of 8, got " + channels);
        }
    }

    /**
     * Prefill grid: channel blocks × the most chunks any split of {@code tokens} rows into {@code batch} entries can have,
     * plus those of the rows past the last entry (zeroed).
     */
    public static Dim3 prefillGrid(int channels, int tokens, int batch) {
        long chunks = (tokens + CHUNK - 1) / CHUNK + (long) batch + 1;
        if (chunks > MAX_GRID_YZ) {
            throw new IllegalArgumentException("causal conv1d prefill: " + tokens + " tokens in " + batch
                    + " sequences need " + chunks + " chunk blocks, at most " + MAX_GRID_YZ);
        }
        return Dim3.of(channelBlocks(channels), (int) chunks);
    }

    public static Dim3 updateGrid(int channels, int batch) {
        if (batch > MAX_GRID_YZ) throw new IllegalArgumentException("causal conv1d update: batch at most " + MAX_GRID_YZ + ", got " + batch);
        return Dim3.of(channelBlocks(channels), batch);
    }

    private static int channelBlocks(int channels) {
        return (channels / 8 + THREADS - 1) / THREADS;
    }

    /**
     * Convolves the {@code shape.tokens()} rows of {@code x} (split into {@code shape.seqs()} entries by
     * {@code cuSeqlens [seqs + 1]}, {@code slots [seqs]}) into {@code out}, reading and updating each entry's slot of
     * {@code state}. The grid comes from the shape (the worst case for a captured bucket); the split is read on the device.
     * Entries with slot −1 and the rows past {@code cuSeqlens[seqs]} get zero outputs; empty entries do nothing.
     */
    public void launchPrefill(Stream s, StepShape shape, long x, long weight, long state, long cuSeqlens, long slots, long out,
                              int channels, int kernelWidth) {
        validate(channels, kernelWidth);
        Kernel k = prefill[kernelWidth];
        Dim3 grid = prefillGrid(channels, shape.tokens(), shape.seqs());
        k.args().ptr(x).ptr(weight).ptr(state).ptr(cuSeqlens).ptr(slots).ptr(out).i32(shape.seqs()).i32(shape.tokens())
                .i32(channels).i32(CHUNK);
        k.launch(s, grid, Dim3.of(THREADS), 0);
    }

    /** One token per entry of a decode {@code shape}: {@code x, out [seqs, C]}, {@code slots [seqs]} (−1: zero output row). */
    public void launchUpdate(Stream s, StepShape shape, long x, long weight, long state, long slots, long out, int channels,
                             int kernelWidth) {
        validate(channels, kernelWidth);
        if (!shape.decode()) throw new IllegalArgumentException("causal conv1d update: " + shape + " is not a decode shape");
        Kernel k = update[kernelWidth];
        Dim3 grid = updateGrid(channels, shape.seqs());
        k.args().ptr(x).ptr(weight).ptr(state).ptr(slots).ptr(out).i32(channels);
        k.launch(s, grid, Dim3.of(THREADS), 0);
    }

    /** Bytes a prefill must move: x read, out written, each live sequence's state read and written, the weights. */
    public static long prefillBytes(int tokens, int liveSequences, int channels, int kernelWidth) {
        return 2L * 2 * tokens * channels + 2L * 2 * liveSequences * channels * (kernelWidth - 1) + 2L * channels * kernelWidth;
    }

    /** Bytes a decode update must move. */
    public static long updateBytes(int batch, int channels, int kernelWidth) {
        return prefillBytes(batch, batch, channels, kernelWidth);
    }
}
