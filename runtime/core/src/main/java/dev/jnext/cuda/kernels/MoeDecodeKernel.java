package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.KernelArgs;
import dev.jnext.gpu.Stream;

/**
 * The decode expert MLPs (kernels-ptx/moe_decode.cu): bandwidth-bound GEMVs over the selected experts only, with the
 * expert ids read from device memory (graph-capturable). The shared expert, when given, runs as one more slot per token.
 * Two launches after the router: gate_up+SiLU per slot, then down per slot (weighted) whose last block per (token,
 * row block) does the combine of {@link MoeCombineKernel} (k-ordered fp32 sum with one rounding, plus the gated shared
 * expert).
 * Bytes that must move per token: topK·3·H·I·2 (+ 3·H·I·2 shared) of weights. Same rounding points as the prefill path.
 *
 * <p>The expert weights are bf16 or fine-grained FP8 ({@link DeviceWeight}): FP8 experts read half the bytes (one byte a
 * weight, plus a scale per 16,384) and give bit for bit what the bf16 kernels give on the loader's dequantized image.
 */
public final class MoeDecodeKernel {
    static final int THREADS = 256;
    static final int COLS_PER_BLOCK = 16;  // gate_up: 8 warps x 2 activation columns
    static final int ROWS_PER_BLOCK = 64;  // down: 8 warps x 8 output rows
    public static final int MAX_TOP_K = 32;
    /** A slot's activation row and its down-weight pieces stay on chip. */
    public static final int MAX_INTER = 512;

    private final Kernel gateUp;
    private final Kernel down;
    private final Kernel gateUpFp8;
    private final Kernel downFp8;

    public MoeDecodeKernel(KernelLibrary lib) {
        this.gateUp = lib.kernel("moe_decode", "moe_decode_gate_up");
        this.down = lib.kernel("moe_decode", "moe_decode_down");
        this.gateUpFp8 = lib.kernel("moe_decode", "moe_decode_gate_up_fp8");
        this.downFp8 = lib.kernel("moe_decode", "moe_decode_down_fp8");
    }

    /** Rows of activations and of down outputs: one per (token, k), then one per token for the shared expert. */
    public static int actRows(int tokens, int topK, boolean shared) {
        return tokens * topK + (shared ? tokens : 0);
    }

    /**
     * The gate_up launch's tensors. The expert weights fix the contract: {@code gateUp [E, 2I, H]} bf16 or FP8 (each
     * expert's gate rows then up rows); {@code x [≥tokens, H]} bf16; {@code topkIds [≥tokens, topK]} i32;
     * {@code sharedGateUp [2I, H]} of the experts' dtype, or null (no shared expert); {@code act [≥actRows, I]} bf16. Row
     * counts are capacities, checked per launch.
     */
    public record GateUpArgs(DeviceTensor x, DeviceTensor topkIds, DeviceWeight gateUp, DeviceWeight sharedGateUp,
                             DeviceTensor act) {
        static final String OP = "moe decode gate_up";

        public GateUpArgs {
            requireExperts(OP, "gateUp", gateUp);
            if (gateUp.dim(1) % 2 != 0) throw TensorContract.fail(OP, "gateUp", "must hold 2·I rows per expert, got " + gateUp);
            int h = gateUp.dim(2), i = gateUp.dim(1) / 2;
            TensorContract.require(OP, "x", x, DType.BF16, TensorContract.ANY, h);
            TensorContract.require(OP, "topkIds", topkIds, DType.I32, TensorContract.ANY, TensorContract.ANY);
            requireShared(OP, "sharedGateUp", sharedGateUp, gateUp, 2 * i, h);
            TensorContract.require(OP, "act", act, DType.BF16, TensorContract.ANY, i);
        }

        /** bf16 expert weights. */
        public GateUpArgs(DeviceTensor x, DeviceTensor topkIds, DeviceTensor gateUp, DeviceTensor sharedGateUp, DeviceTensor act) {
            this(x, topkIds, DeviceWeight.bf16(gateUp), DeviceWeight.bf16(sharedGateUp), act);
        }

        public int experts() {
            return gateUp.dim(0);
        }

        public int inter() {
            return gateUp.dim(1) / 2;
        }

        public int hidden() {
            return gateUp.dim(2);
        }

        public int topK() {
            return topkIds.dim(1);
        }

        /** The rows a launch over {@code tokens} touches fit every buffer. */
        void checkRows(int tokens) {
            TensorContract.rows(OP, "x", x, tokens);
            TensorContract.rows(OP, "topkIds", topkIds, tokens);
            TensorContract.rows(OP, "act", act, actRows(tokens, topK(), sharedGateUp != null));
        }
    }

    /**
     * {@code x [tokens, H]}, ids [tokens·topK] → {@code act [actRows, I]}; the shared expert's slot when
     * {@code sharedGateUp} is given. An id outside [0, experts) reads no weight and gets a zero activation row.
     */
    public void launchGateUp(Stream s, GateUpArgs a, int tokens) {
        int topK = a.topK(), hidden = a.hidden(), inter = a.inter(), experts = a.experts();
        check(tokens, topK, hidden, inter, experts);
        a.checkRows(tokens);
        DeviceWeight shared = a.sharedGateUp();
        int slots = actRows(tokens, topK, shared != null);
        int smem = hidden * 4;
        if (smem > 48 * 1024) throw new IllegalArgumentException("moe decode: hidden " + hidden + " exceeds 12288");
        Kernel k = a.gateUp().fp8() ? gateUpFp8 : gateUp;
        KernelArgs args = k.args();
        if (a.gateUp().fp8()) {
            args.ptr(a.x().address()).ptr(a.topkIds().address()).ptr(a.gateUp().values().address())
                    .ptr(a.gateUp().scalesAddress()).i32(a.gateUp().split()).ptr(address(shared)).ptr(scales(shared))
                    .i32(shared == null ? 2 * inter : shared.split());
        } else {
            args.ptr(a.x().address()).ptr(a.topkIds().address()).ptr(a.gateUp().values().address()).ptr(address(shared));
        }
        args.ptr(a.act().address()).i32(tokens).i32(topK).i32(hidden).i32(inter).i32(experts);
        k.launch(s, Dim3.of(inter / COLS_PER_BLOCK, slots), Dim3.of(THREADS), smem);
    }

    /** Per-(token, row block) counters {@link #launchDown} needs: zeroed once, left zeroed by every launch. */
    public static long counterBytes(int tokens, int hidden) {
        return 4L * tokens * (hidden / ROWS_PER_BLOCK);
    }

    /**
     * The down launch's tensors. {@code down [E, H, I]} bf16 or FP8 fixes the contract: {@code act [≥actRows, I]} bf16;
     * {@code topkIds [≥tokens, topK]} i32 and {@code topkWeights [≥tokens, topK]} bf16; {@code sharedDown [H, I]} of the
     * experts' dtype, or null; {@code gateLogits [≥tokens, stride]} bf16, the router's logits whose column {@code gateColumn} is the shared
     * expert's gate logit (needed with a shared expert; without one it may be null, and only its row stride reaches the
     * kernel); {@code contrib [≥actRows, H]} bf16 (scratch); {@code counters [≥tokens, H/64]} u32 (zeroed, left zeroed);
     * {@code out [≥tokens, H]} bf16.
     */
    public record DownArgs(DeviceTensor act, DeviceTensor topkIds, DeviceTensor topkWeights, DeviceWeight down,
                           DeviceWeight sharedDown, DeviceTensor gateLogits, int gateColumn, DeviceTensor contrib,
                           DeviceTensor counters, DeviceTensor out) {
        static final String OP = "moe decode down";

        public DownArgs {
            requireExperts(OP, "down", down);
            int h = down.dim(1), i = down.dim(2);
            if (down.fp8() && down.split() != h) throw TensorContract.fail(OP, "down", "must be blocked as one matrix, got " + down);
            TensorContract.require(OP, "act", act, DType.BF16, TensorContract.ANY, i);
            TensorContract.require(OP, "topkIds", topkIds, DType.I32, TensorContract.ANY, TensorContract.ANY);
            TensorContract.require(OP, "topkWeights", topkWeights, DType.BF16, TensorContract.ANY, topkIds.dim(1));
            requireShared(OP, "sharedDown", sharedDown, down, h, i);
            if (sharedDown != null && sharedDown.fp8() && sharedDown.split() != h) {
                throw TensorContract.fail(OP, "sharedDown", "must be blocked as one matrix, got " + sharedDown);
            }
            if (sharedDown != null || gateLogits != null) {
                TensorContract.require(OP, "gateLogits", gateLogits, DType.BF16, TensorContract.ANY, TensorContract.ANY);
                TensorContract.positive(OP, "gateLogits", gateLogits, 1);
            }
            if (sharedDown != null && (gateColumn < 0 || gateColumn >= gateLogits.dim(1))) {
                throw TensorContract.fail(OP, "gateColumn", "must name a column of " + gateLogits + ", got " + gateColumn);
            }
            TensorContract.require(OP, "contrib", contrib, DType.BF16, TensorContract.ANY, h);
            TensorContract.require(OP, "counters", counters, DType.U32, TensorContract.ANY, h / ROWS_PER_BLOCK);
            TensorContract.require(OP, "out", out, DType.BF16, TensorContract.ANY, h);
        }

        /** bf16 expert weights. */
        public DownArgs(DeviceTensor act, DeviceTensor topkIds, DeviceTensor topkWeights, DeviceTensor down, DeviceTensor sharedDown,
                        DeviceTensor gateLogits, int gateColumn, DeviceTensor contrib, DeviceTensor counters, DeviceTensor out) {
            this(act, topkIds, topkWeights, DeviceWeight.bf16(down), DeviceWeight.bf16(sharedDown), gateLogits, gateColumn,
                    contrib, counters, out);
        }

        public int experts() {
            return down.dim(0);
        }

        public int hidden() {
            return down.dim(1);
        }

        public int inter() {
            return down.dim(2);
        }

        public int topK() {
            return topkIds.dim(1);
        }

        void checkRows(int tokens) {
            long slots = actRows(tokens, topK(), sharedDown != null);
            TensorContract.rows(OP, "act", act, slots);
            TensorContract.rows(OP, "topkIds", topkIds, tokens);
            TensorContract.rows(OP, "topkWeights", topkWeights, tokens);
            if (sharedDown != null) TensorContract.rows(OP, "gateLogits", gateLogits, tokens);
            TensorContract.rows(OP, "contrib", contrib, slots);
            TensorContract.rows(OP, "counters", counters, tokens);
            TensorContract.rows(OP, "out", out, tokens);
        }
    }

    /**
     * {@code act} → {@code contrib [actRows, H]} (per-slot weighted down outputs, scratch) → {@code out [tokens, H]} =
     * routed sum (+ gated shared expert when {@code sharedDown} is given, its gate logit at column {@code gateColumn} of
     * {@code gateLogits}); one launch: the last block of each (token, row block) combines. A pair whose id is outside
     * [0, experts) contributes zero and reads no weight.
     */
    public void launchDown(Stream s, DownArgs a, int tokens) {
        int topK = a.topK(), hidden = a.hidden(), inter = a.inter(), experts = a.experts();
        check(tokens, topK, hidden, inter, experts);
        a.checkRows(tokens);
        boolean shared = a.sharedDown() != null;
        long gateLogits = shared ? a.gateLogits().address() + (long) DType.BF16.bytes() * a.gateColumn() : 0;
        int gateStride = a.gateLogits() == null ? 0 : a.gateLogits().dim(1);
        Kernel k = a.down().fp8() ? downFp8 : down;
        KernelArgs args = k.args();
        if (a.down().fp8()) {
            args.ptr(a.act().address()).ptr(a.topkIds().address()).ptr(a.topkWeights().address())
                    .ptr(a.down().values().address()).ptr(a.down().scalesAddress()).ptr(address(a.sharedDown()))
                    .ptr(scales(a.sharedDown()));
        } else {
            args.ptr(a.act().address()).ptr(a.topkIds().address()).ptr(a.topkWeights().address())
                    .ptr(a.down().values().address()).ptr(address(a.sharedDown()));
        }
        args.ptr(gateLogits).i32(gateStride).ptr(a.contrib().address()).ptr(a.counters().address())
                .ptr(a.out().address()).i32(tokens).i32(topK).i32(hidden).i32(inter).i32(experts);
        k.launch(s, Dim3.of(hidden / ROWS_PER_BLOCK, actRows(tokens, topK, shared)), Dim3.of(THREADS), 0);
    }

    /** Routed experts {@code [E, R, C]}: bf16, or FP8 8-byte aligned (the kernels read 8 weights a load). */
    private static void requireExperts(String op, String arg, DeviceWeight w) {
        if (w == null) throw TensorContract.fail(op, arg, "is missing, expected bf16 or f8e4m3 [E, R, C]");
        if (w.rank() != 3) throw TensorContract.fail(op, arg, "expected [E, R, C], got " + w);
        TensorContract.positive(op, arg, w.values(), 0);
        if (w.fp8()) TensorContract.aligned(op, arg, w.values(), 8);
    }

    /** The shared expert {@code [rows, cols]}, absent or of the routed experts' dtype. */
    private static void requireShared(String op, String arg, DeviceWeight w, DeviceWeight routed, int rows, int cols) {
        if (w == null) return;
        if (w.dtype() != routed.dtype()) {
            throw TensorContract.fail(op, arg, "must be " + routed.dtype() + " like the routed experts, got " + w);
        }
        TensorContract.require(op, arg, w.values(), w.dtype(), rows, cols);
        if (w.fp8()) TensorContract.aligned(op, arg, w.values(), 8);
    }

    private static long address(DeviceWeight w) {
        return w == null ? 0 : w.values().address();
    }

    private static long scales(DeviceWeight w) {
        return w == null ? 0 : w.scalesAddress();
    }

    static void check(int tokens, int topK, int hidden, int inter, int experts) {
        if (experts < 1) throw new IllegalArgumentException("moe decode: experts must be >= 1, got " + experts);
        if (tokens < 1 || tokens > 65535) throw new IllegalArgumentException("moe decode: tokens must be in [1, 65535], got " + tokens);
        if (topK < 1 || topK > MAX_TOP_K) throw new IllegalArgumentException("moe decode: top-k must be in [1, " + MAX_TOP_K + "], got " + topK);
        if (hidden < ROWS_PER_BLOCK || hidden % ROWS_PER_BLOCK != 0) {
            throw new IllegalArgumentException("moe decode: hidden must be a positive multiple of " + ROWS_PER_BLOCK + ", got " + hidden);
        }
        if (inter < 16 || inter % 16 != 0 || inter > MAX_INTER) {
            throw new IllegalArgumentException("moe decode: expert width must be a positive multiple of 16 up to " + MAX_INTER + ", got " + inter);
        }
    }
}
