package dev.jnext.gpu;

import dev.jnext.cuda.kernels.KernelLibrary;
import dev.jnext.numeric.Bf16;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Shared device for the {@code gpu}-tagged tests: one primary context and one kernel library per JVM.
 * Opening fails (it never skips) when there is no driver: on a GPU host that is a broken host.
 */
public final class GpuTestSupport {
    private static Gpu gpu;
    private static KernelLibrary lib;
    private static Stream stream;

    private GpuTestSupport() {}

    public static synchronized Gpu gpu() {
        if (gpu == null) gpu = Gpu.open(0);
        gpu.bindThread();
        return gpu;
    }

    public static synchronized KernelLibrary kernels() {
        if (lib == null) lib = new KernelLibrary(gpu());
        return lib;
    }

    public static synchronized Stream stream() {
        if (stream == null) stream = gpu().createStream();
        return stream;
    }

    public static short[] randomBf16(Random rnd, int n, double scale) {
        short[] a = new short[n];
        for (int i = 0; i < n; i++) a[i] = Bf16.fromFloat((float) (rnd.nextGaussian() * scale));
        return a;
    }

    public static DeviceBuffer upload(short[] data, String label) {
        DeviceBuffer b = gpu().allocate(2L * data.length, label);
        try (Arena a = Arena.ofConfined()) {
            b.copyFromHost(a.allocateFrom(ValueLayout.JAVA_SHORT, data));
        }
        return b;
    }

    /** A device buffer of {@code n} bf16 filled with NaN, so unwritten outputs cannot pass. */
    public static DeviceBuffer poisoned(int n, String label) {
        DeviceBuffer b = gpu().allocate(2L * n + (n % 2 == 0 ? 0 : 2), label);
        b.fill16((short) 0xffff, stream());
        stream().synchronize();
        return b;
    }

    public static short[] download(DeviceBuffer b, int n) {
        stream().synchronize();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocate(2L * n);
            b.copyToHost(host);
            return host.toArray(ValueLayout.JAVA_SHORT);
        }
    }

    /** Fails on any NaN, and when an element is more than {@code maxUlp} bf16 ulps from the reference. */
    public static void assertBf16Close(short[] expected, short[] actual, int maxUlp, String what) {
        int worst = 0, worstAt = -1;
        for (int i = 0; i < expected.length; i++) {
            float a = Bf16.toFloat(actual[i]);
            assertFalse(Float.isNaN(a), what + ": NaN at " + i + " (unwritten or broken)");
            int d = Bf16.ulpDistance(expected[i], actual[i]);
            if (d > worst) {
                worst = d;
                worstAt = i;
            }
        }
        if (worst > maxUlp) {
            fail(what + ": " + worst + " ulp at " + worstAt + ": expected " + Bf16.toFloat(expected[worstAt]) + " got "
                    + Bf16.toFloat(actual[worstAt]) + " (max allowed " + maxUlp + ")");
        }
    }
}
