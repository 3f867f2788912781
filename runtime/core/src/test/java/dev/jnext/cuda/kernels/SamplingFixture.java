package dev.jnext.cuda.kernels;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.GpuTestSupport;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** Device inputs of the sampler for the sampling GPU tests: per-row parameters and generator states. */
final class SamplingFixture {
    private SamplingFixture() {}

    /** The rows' parameter records ({@link SamplingKernel#writeParams}), uploaded. */
    static DeviceBuffer params(SamplingKernel.RowParams[] rows) {
        DeviceBuffer d = GpuTestSupport.gpu().allocate((long) SamplingKernel.PARAMS_BYTES * rows.length, "params");
        try (Arena a = Arena.ofConfined()) {
            MemorySegment h = a.allocate((long) SamplingKernel.PARAMS_BYTES * rows.length);
            for (int r = 0; r < rows.length; r++) SamplingKernel.writeParams(h, r, rows[r]);
            d.copyFromHost(h);
        }
        return d;
    }

    /** Generator states of {@code rows} rows, each seeded from {@code seedBase} and its row, at offset 0, uploaded. */
    static DeviceBuffer rng(int rows, long seedBase) {
        DeviceBuffer d = GpuTestSupport.gpu().allocate(16L * rows, "rng");
        try (Arena a = Arena.ofConfined()) {
            MemorySegment h = a.allocate(16L * rows);
            for (int r = 0; r < rows; r++) SamplingKernel.writeRng(h, r, seedBase * 7919 + r * 104729L + 1, 0);
            d.copyFromHost(h);
        }
        return d;
    }
}
