package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;
import dev.jnext.model.GdnProjections;

/**
 * The Gated DeltaNet's split of its two projection outputs (kernels-ptx/gdn_gating.cu), semantics of
 * {@link GdnProjections#split} followed by {@link dev.jnext.cpu.ops.GdnGating}:
 * <ul>
 *   <li>{@code qkvz [T, Hk·(2dk + 2r·dv)]} (grouped per key head) → {@code mixed [T, 2·Hk·dk + Hv·dv]} = [q | k | v],
 *       the conv input, and {@code z [T, Hv·dv]}: a permutation of 16-byte vectors, bit-exact;</li>
 *   <li>{@code ba [T, 2·Hv]} (grouped per key head as [b (r) | a (r)]) with {@code A_log}, {@code dt_bias} fp32 [Hv] →
 *       {@code beta [T, Hv]} fp32 holding bf16(sigmoid(b)) (torch computes it in the bf16 model dtype; widened to fp32
 *       losslessly because {@link ChunkedDeltaRuleKernel} and {@link GatedDeltaRuleDecodeKernel} read fp32 β) and
 *       {@code g [T, Hv]} fp32 = −exp(A_log)·softplus(a + dt_bias).</li>
 * </ul>
 * One launch, one thread per 16-byte vector or per (token, head) gate pair. dk and dv must be multiples of 8.
 */
public final class GdnSplitGatingKernel {
    static final int THREADS = 256;

    private final Kernel kernel;

    public GdnSplitGatingKernel(KernelLibrary lib) {
        this.kernel = lib.kernel("gdn_gating", "gdn_split_gating");
    }

    /** Rejects shapes the kernel cannot run, naming the value. */
    public static void validate(GdnProjections shape, int tokens) {
        if (tokens < 1) throw new IllegalArgumentException("gdn split/gating: tokens must be >= 1, got " + tokens);
        int hk = shape.keyHeads(), hv = shape.valueHeads();
        if (hk < 1 || hv < 1 || hv % hk != 0) {
            throw new IllegalArgumentException("gdn split/gating: value heads " + hv + " must be a positive multiple of key heads " + hk);
        }
        if (shape.keyDim() < 8 || shape.keyDim() % 8 != 0 || shape.valueDim() < 8 || shape.valueDim() % 8 != 0) {
            throw new IllegalArgumentException("gdn split/gating: key and value dims must be positive multiples of 8 (16-byte vectors), got "
                    + shape.keyDim() + " and " + shape.valueDim());
        }
        if ((long) tokens * itemsPerToken(shape) > Integer.MAX_VALUE * (long) THREADS) {
            throw new IllegalArgumentException("gdn split/gating: " + tokens + " tokens exceed one launch");
        }
    }

    /** Work items per token: one per 16-byte vector of a qkvz row, one per value head. */
    static long itemsPerToken(GdnProjections shape) {
        return shape.qkvzWidth() / 8 + shape.valueHeads();
    }

    public static Dim3 grid(GdnProjections shape, int tokens) {
        long items = (long) tokens * itemsPerToken(shape);
        return Dim3.of((int) ((items + THREADS - 1) / THREADS));
    }

    /**
     * The launch's tensors for the projections {@code shape} (rows are capacities, checked per launch):
     * {@code qkvz [≥T, Hk·(2dk + 2r·dv)]} and {@code ba [≥T, 2·Hv]} bf16 in; {@code aLog}, {@code dtBias [Hv]} f32;
     * {@code mixed [≥T, 2·Hk·dk + Hv·dv]} and {@code z [≥T, Hv·dv]} bf16 out; {@code beta}, {@code g [≥T, Hv]} f32 out.
     */
    public record Args(GdnProjections shape, DeviceTensor qkvz, DeviceTensor ba, DeviceTensor aLog, DeviceTensor dtBias,
                       DeviceTensor mixed, DeviceTensor z, DeviceTensor beta, DeviceTensor g) {
        static final String OP = "gdn split/gating";

        public Args {
            int any = TensorContract.ANY, hv = shape.valueHeads();
            TensorContract.require(OP, "qkvz", qkvz, DType.BF16, any, shape.qkvzWidth());
            TensorContract.require(OP, "ba", ba, DType.BF16, any, shape.baWidth());
            TensorContract.require(OP, "aLog", aLog, DType.F32, hv);
            TensorContract.require(OP, "dtBias", dtBias, DType.F32, hv);
            TensorContract.require(OP, "mixed", mixed, DType.BF16, any, shape.convDim());
            TensorContract.require(OP, "z", z, DType.BF16, any, hv * shape.valueDim());
            TensorContract.require(OP, "beta", beta, DType.F32, any, hv);
            TensorContract.require(OP, "g", g, DType.F32, any, hv);
        }

        void checkRows(int tokens) {
            TensorContract.rows(OP, "qkvz", qkvz, tokens);
            TensorContract.rows(OP, "ba", ba, tokens);
            TensorContract.rows(OP, "mixed", mixed, tokens);
            TensorContract.rows(OP, "z", z, tokens);
            TensorContract.rows(OP, "beta", beta, tokens);
            TensorContract.rows(OP, "g", g, tokens);
        }
    }

    /** Splits and gates the first {@code tokens} rows. */
    public void launch(Stream s, Args a, int tokens) {
        GdnProjections shape = a.shape();
        validate(shape, tokens);
        a.checkRows(tokens);
        kernel.args().ptr(a.qkvz().address()).ptr(a.ba().address()).ptr(a.aLog().address()).ptr(a.dtBias().address())
                .ptr(a.mixed().address()).ptr(a.z().address()).ptr(a.beta().address()).ptr(a.g().address())
                .i32(tokens).i32(shape.keyHeads()).i32(shape.valueHeads()).i32(shape.keyDim()).i32(shape.valueDim());
        kernel.launch(s, grid(shape, tokens), Dim3.of(THREADS), 0);
    }

    /** Bytes a launch must move: qkvz and ba read, mixed, z, beta (fp32) and g (fp32) written. */
    public static long bytes(GdnProjections shape, int tokens) {
        long perToken = 2L * shape.qkvzWidth() * 2 + 2L * shape.baWidth() + (4L + 4L) * shape.valueHeads();
        return perToken * tokens + 8L * shape.valueHeads();
    }
}
