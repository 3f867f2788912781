package dev.jnext.cuda.kernels;

/**
 * A weight matrix (or a stack of per-expert matrices) on the device, as a kernel reads it: bf16 values, or fine-grained
 * FP8 — e4m3 values with one fp32 scale per 128 × 128 block, {@code w[r, c] = bf16(float(q[r, c]) · scales[row block of
 * r, c / 128])} (the official checkpoints' layout; kernels-ptx/fp8.cuh dequantizes exactly as the host loader does).
 *
 * <p>{@code split} says how the rows were blocked: rows {@code [0, split)} and {@code [split, R)} quantized as two
 * matrices (the hub's separate {@code gate_proj} and {@code up_proj} stacked as gate|up: split = I), or as one (split =
 * R: a single projection, transformers' fused experts). So the scales hold {@link #scaleRows(int, int)} rows per matrix.
 *
 * @param values bf16 or f8e4m3 {@code [R, C]} or {@code [E, R, C]}
 * @param scales null for bf16; for FP8 f32 {@code [scaleRows(R, split), ⌈C/128⌉]} (with a leading E for a stack)
 * @param split  the row where the second blocked matrix starts, in {@code [1, R]} (R: one matrix); R for bf16
 */
public record DeviceWeight(DeviceTensor values, DeviceTensor scales, int split) {
    /** The FP8 block edge. */
    public static final int BLOCK = 128;

    public DeviceWeight {
        String op = "device weight";
        if (values == null) throw TensorContract.fail(op, "values", "is missing");
        if (values.rank() != 2 && values.rank() != 3) {
            throw TensorContract.fail(op, "values", "must be a matrix [R, C] or a stack [E, R, C], got " + values);
        }
        int r = values.dim(values.rank() - 2), c = values.dim(values.rank() - 1);
        switch (values.dtype()) {
            case BF16 -> {
                if (scales != null) throw TensorContract.fail(op, "scales", "belong to FP8 values, got bf16 " + values);
                if (split != r) throw TensorContract.fail(op, "split", "of bf16 " + values + " must be its row count " + r);
            }
            case F8_E4M3 -> {
                if (split < 1 || split > r) {
                    throw TensorContract.fail(op, "split", "must be in [1, " + r + "] for " + values + ", got " + split);
                }
                int[] dims = values.rank() == 2 ? new int[] {scaleRows(r, split), blocks(c)}
                        : new int[] {values.dim(0), scaleRows(r, split), blocks(c)};
                TensorContract.require(op, "scales of " + values.name(), scales, DType.F32, dims);
            }
            default -> throw TensorContract.fail(op, "values", "must be bf16 or f8e4m3, got " + values);
        }
    }

    /** A bf16 weight. */
    public static DeviceWeight bf16(DeviceTensor values) {
        return values == null ? null : new DeviceWeight(values, null, values.dim(values.rank() - 2));
    }

    /** An FP8 weight whose rows were quantized as one matrix. */
    public static DeviceWeight fp8(DeviceTensor values, DeviceTensor scales) {
        return new DeviceWeight(values, scales, values.dim(values.rank() - 2));
    }

    /** An FP8 weight whose rows {@code [0, split)} and {@code [split, R)} were quantized as two matrices. */
    public static DeviceWeight fp8(DeviceTensor values, DeviceTensor scales, int split) {
        return new DeviceWeight(values, scales, split);
    }

    /** Scale rows of an {@code rows}-row matrix blocked as two at {@code split}. */
    public static int scaleRows(int rows, int split) {
        return blocks(split) + blocks(rows - split);
    }

    /** {@code ⌈n / 128⌉}. */
    public static int blocks(int n) {
        return (n + BLOCK - 1) / BLOCK;
    }

    public boolean fp8() {
        return values.dtype() == DType.F8_E4M3;
    }

    public DType dtype() {
        return values.dtype();
    }

    public int rank() {
        return values.rank();
    }

    public int dim(int i) {
        return values.dim(i);
    }

    /** The scales' device address, 0 for bf16. */
    long scalesAddress() {
        return scales == null ? 0 : scales.address();
    }

    /** Bytes the values and scales occupy. */
    public long bytes() {
        return values.bytes() + (scales == null ? 0 : scales.bytes());
    }

    @Override
    public String toString() {
        return fp8() ? values + " (scales " + scales.signature() + ", split " + split + ")" : values.toString();
    }
}
