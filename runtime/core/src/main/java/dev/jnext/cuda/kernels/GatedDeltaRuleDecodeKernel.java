package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;
import dev.jnext.cpu.ops.GatedDeltaRule;

/**
 * One decode step of the gated delta rule for a batch of sequences (kernels-ptx/gdn_recurrent.cu), semantics of
 * {@link GatedDeltaRule#recurrent}: the fp32 state of each sequence lives in a slot pool {@code [slots, Hv, dk, dv]}
 * (element (h, i, j) = S_h[i][j], i over key dims) and is updated in place; {@code slots[b]} (device int32) names the
 * slot of batch row b, and −1 marks a padding row whose state is untouched and whose output row is zeroed.
 *
 * <p>Inputs: {@code qkv} = conv output rows {@code [B, 2·Hk·dk + Hv·dv]} bf16 ([q | k | v]); the gates as
 * {@link Gates}; output {@code out [B, Hv·dv]} bf16. dk = 128 with dv a multiple of 32 takes the register-resident
 * kernel (grid 32-column block × head × sequence); every other size the plain one.
 */
public final class GatedDeltaRuleDecodeKernel {
    static final int FAST_THREADS = 128;
    static final int FAST_COLUMNS = 32;
    static final int ANY_THREADS = 128;
    static final int MAX_GRID_YZ = 65535;
    static final int MAX_KEY_DIM = 4096;

    /** How beta and g reach the kernel. */
    public sealed interface Gates {
        /**
         * {@code beta [≥B, Hv]} (bf16 or f32: its dtype picks the kernel) and {@code g [≥B, Hv]} f32, e.g. from
         * {@link GdnSplitGatingKernel}.
         */
        record Precomputed(DeviceTensor beta, DeviceTensor g) implements Gates {
            public boolean betaBf16() {
                return beta.dtype() == DType.BF16;
            }
        }

        /**
         * Gating fused in: raw in_proj_ba rows {@code ba [≥B, 2·Hv]} bf16 (grouped per key head as [b (r) | a (r)]) and
         * {@code aLog}, {@code dtBias [Hv]} f32: beta = bf16(sigmoid(b)), g = −exp(A_log)·softplus(a + dt_bias).
         */
        record Fused(DeviceTensor ba, DeviceTensor aLog, DeviceTensor dtBias) implements Gates {}
    }

    /**
     * The launch's tensors for the rule {@code shape}: {@code qkv [≥B, 2·Hk·dk + Hv·dv]} bf16 (the conv output), the
     * {@link Gates}, the layer's state pool {@code state [slots, Hv, dk, dv]} f32, {@code slots [≥B]} i32 and
     * {@code out [≥B, Hv·dv]} bf16. Row counts are capacities, checked per launch.
     */
    public record Args(GatedDeltaRule shape, DeviceTensor qkv, Gates gates, DeviceTensor state, DeviceTensor slots,
                       DeviceTensor out) {
        static final String OP = "gated delta rule decode";

        public Args {
            int any = TensorContract.ANY, hk = shape.keyHeads(), hv = shape.valueHeads(), dk = shape.keyDim(), dv = shape.valueDim();
            TensorContract.require(OP, "qkv", qkv, DType.BF16, any, 2 * hk * dk + hv * dv);
            switch (java.util.Objects.requireNonNull(gates, "gates")) {
                case Gates.Precomputed p -> {
                    DeviceTensor beta = p.beta();
                    TensorContract.require(OP, "beta", beta, beta != null && beta.dtype() == DType.BF16 ? DType.BF16 : DType.F32, any, hv);
                    TensorContract.require(OP, "g", p.g(), DType.F32, any, hv);
                }
                case Gates.Fused f -> {
                    TensorContract.require(OP, "ba", f.ba(), DType.BF16, any, 2 * hv);
                    TensorContract.require(OP, "aLog", f.aLog(), DType.F32, hv);
                    TensorContract.require(OP, "dtBias", f.dtBias(), DType.F32, hv);
                }
            }
            TensorContract.require(OP, "state", state, DType.F32, any, hv, dk, dv);
            TensorContract.require(OP, "slots", slots, DType.I32, any);
            TensorContract.require(OP, "out", out, DType.BF16, any, hv * dv);
        }

        void checkRows(int batch) {
            TensorContract.rows(OP, "qkv", qkv, batch);
            switch (gates) {
                case Gates.Precomputed p -> {
                    TensorContract.rows(OP, "beta", p.beta(), batch);
                    TensorContract.rows(OP, "g", p.g(), batch);
                }
                case Gates.Fused f -> TensorContract.rows(OP, "ba", f.ba(), batch);
            }
            TensorContract.rows(OP, "slots", slots, batch);
            TensorContract.rows(OP, "out", out, batch);
        }
    }

    private final Kernel[] fast = new Kernel[3];
    private final Kernel[] any = new Kernel[3];

    public GatedDeltaRuleDecodeKernel(KernelLibrary lib) {
        String[] modes = {"f32", "bf16", "fused"};
        for (int i = 0; i < 3; i++) {
            fast[i] = lib.kernel("gdn_recurrent", "gdn_recurrent_k128_" + modes[i]);
            any[i] = lib.kernel("gdn_recurrent", "gdn_recurrent_any_" + modes[i]);
        }
    }

    /** True when {@code shape} takes the register-resident dk = 128 kernel. */
    public static boolean fastPath(GatedDeltaRule shape) {
        return shape.keyDim() == 128 && shape.valueDim() % FAST_COLUMNS == 0;
    }

    /** Grid of the launch: (dv / 32, Hv, B) on the fast path (a head's column blocks adjacent), else (B, Hv). */
    public static Dim3 grid(GatedDeltaRule shape, int batch) {
        return fastPath(shape) ? Dim3.of(shape.valueDim() / FAST_COLUMNS, shape.valueHeads(), batch)
                : Dim3.of(batch, shape.valueHeads());
    }

    /** Dynamic shared memory of the launch: normalised q and k (2·dk floats) on the plain path. */
    public static int sharedBytes(GatedDeltaRule shape) {
        return fastPath(shape) ? 0 : 2 * shape.keyDim() * Float.BYTES;
    }

    /** Rejects shapes and batch sizes the kernels cannot run, naming the value. */
    public static void validate(GatedDeltaRule shape, int batch) {
        if (batch < 1) throw new IllegalArgumentException("gated delta rule decode: batch must be >= 1, got " + batch);
        int hk = shape.keyHeads(), hv = shape.valueHeads(), dk = shape.keyDim(), dv = shape.valueDim();
        if (hk < 1 || hv < 1 || dk < 1 || dv < 1) {
            throw new IllegalArgumentException("gated delta rule decode: heads and dims must be >= 1, got " + shape);
        }
        if (hv % hk != 0) {
            throw new IllegalArgumentException("gated delta rule decode: value heads " + hv + " must be a multiple of key heads " + hk);
        }
        if (hv > MAX_GRID_YZ) throw new IllegalArgumentException("gated delta rule decode: at most " + MAX_GRID_YZ + " value heads, got " + hv);
        if (batch > MAX_GRID_YZ) throw new IllegalArgumentException("gated delta rule decode: batch at most " + MAX_GRID_YZ + ", got " + batch);
        if (dk > MAX_KEY_DIM) {
            throw new IllegalArgumentException("gated delta rule decode: key dim at most " + MAX_KEY_DIM + " (q and k in shared memory), got " + dk);
        }
    }

    /**
     * Enqueues one decode step of fixed {@code step} shape (batch = {@code step.seqs()} rows, row b is entry b; rows whose
     * slot is −1 are padding: state untouched, output zero): reads {@code qkv}, the gates and each row's slot of
     * {@code state}, writes {@code out} and the updated state: the tensors of {@code a}, checked against the batch.
     */
    public void launch(Stream stream, StepShape step, Args a) {
        if (!step.decode()) throw new IllegalArgumentException("gated delta rule decode: " + step + " is not a decode shape");
        int batch = step.seqs();
        GatedDeltaRule shape = a.shape();
        validate(shape, batch);
        a.checkRows(batch);
        int mode;
        long gate0, g = 0, aLog = 0, dtBias = 0;
        switch (a.gates()) {
            case Gates.Precomputed p -> {
                mode = p.betaBf16() ? 1 : 0;
                gate0 = p.beta().address();
                g = p.g().address();
            }
            case Gates.Fused f -> {
                mode = 2;
                gate0 = f.ba().address();
                aLog = f.aLog().address();
                dtBias = f.dtBias().address();
            }
        }
        boolean fastPath = fastPath(shape);
        Kernel k = fastPath ? fast[mode] : any[mode];
        k.args().ptr(a.qkv().address()).ptr(gate0).ptr(g).ptr(aLog).ptr(dtBias).ptr(a.state().address()).ptr(a.slots().address())
                .ptr(a.out().address())
                .i32(batch).i32(shape.keyHeads()).i32(shape.valueHeads()).i32(shape.keyDim()).i32(shape.valueDim());
        k.launch(stream, grid(shape, batch), Dim3.of(fastPath ? FAST_THREADS : ANY_THREADS), sharedBytes(shape));
    }

    /**
     * Bytes a step must move: the state of every non-padding row read and written (fp32), q/k/v read and the output
     * written (bf16), the gates read. {@code stateBytes} alone is what the anchors count.
     */
    public static long stateBytes(GatedDeltaRule shape, int liveRows) {
        return 2L * liveRows * shape.stateSize() * Float.BYTES;
    }
}
