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

    /** The contract both launches share: the weight [C, K] fixes x, out [*, C], state [*, C, K−1]; slots i32. */
    private static void requireCommon(String op, DeviceTensor x, DeviceTensor weight, DeviceTensor state, DeviceTensor slots,
                                      DeviceTensor out) {
        int any = TensorContract.ANY;
        TensorContract.require(op, "weight", weight, DType.BF16, any, any);
        int c = weight.dim(0), k = weight.dim(1);
        TensorContract.require(op, "x", x, DType.BF16, any, c);
        TensorContract.require(op, "state", state, DType.BF16, any, c, k - 1);
        TensorContract.require(op, "slots", slots, DType.I32, any);
        TensorContract.require(op, "out", out, DType.BF16, any, c);
    }

    /**
     * The prefill launch's tensors; the conv weight {@code weight [C, K]} bf16 fixes the channels and the width:
     * {@code x}, {@code out [≥T, C]} bf16; the layer's conv state pool {@code state [slots, C, K−1]} bf16;
     * {@code cuSeqlens [≥seqs + 1]} and {@code slots [≥seqs]} i32 (the step metadata). Row counts are capacities.
     */
    public record PrefillArgs(DeviceTensor x, DeviceTensor weight, DeviceTensor state, DeviceTensor cuSeqlens,
                              DeviceTensor slots, DeviceTensor out) {
        static final String OP = "causal conv1d prefill";

        public PrefillArgs {
            requireCommon(OP, x, weight, state, slots, out);
            TensorContract.require(OP, "cuSeqlens", cuSeqlens, DType.I32, TensorContract.ANY);
        }

        public int channels() {
            return weight.dim(0);
        }

        public int kernelWidth() {
            return weight.dim(1);
        }

        void checkRows(StepShape shape) {
            TensorContract.rows(OP, "x", x, shape.tokens());
            TensorContract.rows(OP, "out", out, shape.tokens());
            TensorContract.rows(OP, "cuSeqlens", cuSeqlens, shape.seqs() + 1L);
            TensorContract.rows(OP, "slots", slots, shape.seqs());
        }
    }

    /**
     * Convolves the {@code shape.tokens()} rows of {@code x} (split into {@code shape.seqs()} entries by
     * {@code cuSeqlens [seqs + 1]}, {@code slots [seqs]}) into {@code out}, reading and updating each entry's slot of
     * {@code state}. The grid comes from the shape (the worst case for a captured bucket); the split is read on the device.
     * Entries with slot −1 and the rows past {@code cuSeqlens[seqs]} get zero outputs; empty entries do nothing.
     */
    public void launchPrefill(Stream s, StepShape shape, PrefillArgs a) {
        int channels = a.channels(), kernelWidth = a.kernelWidth();
        validate(channels, kernelWidth);
        a.checkRows(shape);
        Kernel k = prefill[kernelWidth];
        Dim3 grid = prefillGrid(channels, shape.tokens(), shape.seqs());
        k.args().ptr(a.x().address()).ptr(a.weight().address()).ptr(a.state().address()).ptr(a.cuSeqlens().address())
                .ptr(a.slots().address()).ptr(a.out().address()).i32(shape.seqs()).i32(shape.tokens()).i32(channels).i32(CHUNK);
        k.launch(s, grid, Dim3.of(THREADS), 0);
    }

    /**
     * The decode update's tensors: as {@link PrefillArgs} without the sequence boundaries; {@code x}, {@code out [≥B, C]},
     * {@code slots [≥B]}.
     */
    public record UpdateArgs(DeviceTensor x, DeviceTensor weight, DeviceTensor state, DeviceTensor slots, DeviceTensor out) {
        static final String OP = "causal conv1d update";

        public UpdateArgs {
            requireCommon(OP, x, weight, state, slots, out);
        }

        public int channels() {
            return weight.dim(0);
        }

        public int kernelWidth() {
            return weight.dim(1);
        }

        void checkRows(int batch) {
            TensorContract.rows(OP, "x", x, batch);
            TensorContract.rows(OP, "out", out, batch);
            TensorContract.rows(OP, "slots", slots, batch);
        }
    }

    /** One token per entry of a decode {@code shape}: {@code x, out [seqs, C]}, {@code slots [seqs]} (−1: zero output row). */
    public void launchUpdate(Stream s, StepShape shape, UpdateArgs a) {
        int channels = a.channels(), kernelWidth = a.kernelWidth();
        validate(channels, kernelWidth);
        if (!shape.decode()) throw new IllegalArgumentException("causal conv1d update: " + shape + " is not a decode shape");
        a.checkRows(shape.seqs());
        Kernel k = update[kernelWidth];
        Dim3 grid = updateGrid(channels, shape.seqs());
        k.args().ptr(a.x().address()).ptr(a.weight().address()).ptr(a.state().address()).ptr(a.slots().address())
                .ptr(a.out().address()).i32(channels);
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
