package dev.jnext.cuda.kernels;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.GpuTestSupport;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** fp32 and int32 uploads and downloads for the GDN kernel tests (bf16 ones are in {@link GpuTestSupport}). */
public final class DeviceArrays {
    private DeviceArrays() {}

    public static DeviceBuffer upload(float[] data, String label) {
        DeviceBuffer b = GpuTestSupport.gpu().allocate(4L * data.length, label);
        try (Arena a = Arena.ofConfined()) {
            b.copyFromHost(a.allocateFrom(ValueLayout.JAVA_FLOAT, data));
        }
        return b;
    }

    /** Raw bytes (FP8 codes), in a buffer padded to 16 bytes. */
    public static DeviceBuffer upload(byte[] data, String label) {
        DeviceBuffer b = GpuTestSupport.gpu().allocate((data.length + 15L) / 16 * 16, label);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocate(b.bytes());
            MemorySegment.copy(MemorySegment.ofArray(data), 0, host, 0, data.length);
            b.copyFromHost(host);
        }
        return b;
    }

    public static DeviceBuffer upload(int[] data, String label) {
        DeviceBuffer b = GpuTestSupport.gpu().allocate(4L * data.length, label);
        try (Arena a = Arena.ofConfined()) {
            b.copyFromHost(a.allocateFrom(ValueLayout.JAVA_INT, data));
        }
        return b;
    }

    /** {@code n} fp32 filled with NaN, so unwritten outputs cannot pass. */
    static DeviceBuffer poisonedFloats(int n, String label) {
        DeviceBuffer b = GpuTestSupport.gpu().allocate(4L * n, label);
        b.fill32(0x7fc00000, GpuTestSupport.stream());
        GpuTestSupport.stream().synchronize();
        return b;
    }

    static float[] downloadFloats(DeviceBuffer b, int n) {
        GpuTestSupport.stream().synchronize();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocate(4L * n);
            b.copyToHost(host);
            return host.toArray(ValueLayout.JAVA_FLOAT);
        }
    }

    static void copyIn(DeviceBuffer b, short[] data) {
        GpuTestSupport.stream().synchronize();
        try (Arena a = Arena.ofConfined()) {
            b.copyFromHost(a.allocateFrom(ValueLayout.JAVA_SHORT, data));
        }
    }

    static void copyIn(DeviceBuffer b, float[] data) {
        GpuTestSupport.stream().synchronize();
        try (Arena a = Arena.ofConfined()) {
            b.copyFromHost(a.allocateFrom(ValueLayout.JAVA_FLOAT, data));
        }
    }

    static float[] toFloats(short[] bf16) {
        float[] f = new float[bf16.length];
        for (int i = 0; i < f.length; i++) f[i] = dev.jnext.numeric.Bf16.toFloat(bf16[i]);
        return f;
    }
}
