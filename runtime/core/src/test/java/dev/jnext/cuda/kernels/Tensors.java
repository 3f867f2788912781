package dev.jnext.cuda.kernels;

import dev.jnext.gpu.DeviceBuffer;

/** Typed views of the GPU tests' buffers for the launchers' argument records. */
public final class Tensors {
    private Tensors() {}

    /** {@code b} as {@code [rows, row...]} of {@code dtype}, rows = as many whole rows as the buffer holds. */
    public static DeviceTensor rows(DeviceBuffer b, DType dtype, int... row) {
        long per = (long) dtype.bytes();
        for (int d : row) per *= d;
        int[] shape = new int[row.length + 1];
        shape[0] = (int) (b.bytes() / per);
        System.arraycopy(row, 0, shape, 1, row.length);
        return DeviceTensor.of(b, dtype, shape);
    }

    /** {@code b} as exactly {@code shape} of {@code dtype} (it must fit the buffer). */
    public static DeviceTensor of(DeviceBuffer b, DType dtype, int... shape) {
        return DeviceTensor.of(b, dtype, shape);
    }

    /**
     * The sampler's record over whole buffers (null: absent): {@code logits} as {@code [rows, stride]} bf16, {@code params}
     * as {@code [rows, 8]} f32, {@code rng} as {@code [rows, 2]} u64, {@code rowSlot} and {@code outIds} as i32 vectors.
     */
    public static SamplingKernel.Args sampling(DeviceBuffer logits, int stride, DeviceBuffer params, DeviceBuffer rng,
                                               DeviceBuffer rowSlot, TokenHistory history, DeviceBuffer outIds) {
        return new SamplingKernel.Args(rows(logits, DType.BF16, stride),
                params == null ? null : rows(params, DType.F32, SamplingKernel.PARAMS_BYTES / 4),
                rng == null ? null : rows(rng, DType.U64, SamplingKernel.RNG_BYTES / 8),
                rowSlot == null ? null : rows(rowSlot, DType.I32), history, rows(outIds, DType.I32));
    }

    /** The token history's observe record over two whole i32 buffers: the ids and each row's slot. */
    public static TokenHistory.ObserveArgs observe(DeviceBuffer ids, DeviceBuffer rowSlot) {
        return new TokenHistory.ObserveArgs(rows(ids, DType.I32), rows(rowSlot, DType.I32));
    }
}
