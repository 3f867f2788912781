package dev.jnext.gpu;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@Tag("gpu")
class MemoryGpuTest {
    @Test
    void deviceReportsHopperProperties() {
        Device d = GpuTestSupport.gpu().device();
        assertTrue(d.smCount() > 0 && d.totalMemory() > (1L << 30), d.toString());
        assertTrue(Cuda.driverVersion() >= 13000, "driver CUDA version " + Cuda.driverVersion());
        System.out.println("[gpu] " + d + ", driver " + Cuda.driverVersion() + ", cublasLt " + Gemm.libraryVersion());
    }

    @Test
    void memcpyRoundTripSyncAsyncPinnedAndDeviceToDevice() {
        Gpu gpu = GpuTestSupport.gpu();
        Stream s = GpuTestSupport.stream();
        long before = gpu.liveBuffers();
        int n = 1 << 20;
        long[] data = new Random(1).longs(n).toArray();
        try (Arena a = Arena.ofConfined();
             DeviceBuffer d1 = gpu.allocate(8L * n, "d1");
             DeviceBuffer d2 = gpu.allocate(8L * n, "d2");
             PinnedBuffer pin = gpu.allocatePinned(8L * n)) {
            MemorySegment host = a.allocateFrom(ValueLayout.JAVA_LONG, data);
            d1.copyFromHost(host);
            d2.fill((byte) 0x5a, s);
            d2.copyFrom(d1, 0, 0, 8L * n, s);
            d2.copyToHostAsync(pin.segment(), 0, s);
            s.synchronize();
            assertArrayEquals(data, pin.segment().toArray(ValueLayout.JAVA_LONG));
            // partial copy at an offset
            MemorySegment part = a.allocate(64);
            d1.copyToHost(part, 8 * 100);
            assertEquals(data[100], part.get(ValueLayout.JAVA_LONG, 0));
            assertThrows(IndexOutOfBoundsException.class, () -> d1.copyToHost(part, 8L * n - 8));
        }
        assertEquals(before, gpu.liveBuffers());
    }

    @Test
    void outOfMemoryNamesRequestedAndFreeBytes() {
        Gpu gpu = GpuTestSupport.gpu();
        long tooMuch = gpu.memoryInfo().total() * 2;
        DeviceOutOfMemoryException e = assertThrows(DeviceOutOfMemoryException.class, () -> gpu.allocate(tooMuch, "huge"));
        assertTrue(e.getMessage().contains("requested") && e.getMessage().contains("free of") && e.getMessage().contains("huge"),
                e.getMessage());
        assertEquals(tooMuch, e.requestedBytes());
    }

    @Test
    void ptxJitErrorsCarryTheLog() {
        dev.jnext.JnextException missing = assertThrows(dev.jnext.JnextException.class, () -> GpuTestSupport.gpu().loadModule("does_not_exist"));
        assertTrue(missing.getMessage().contains("does_not_exist"), missing.getMessage());
        String broken;
        try (var in = MemoryGpuTest.class.getResourceAsStream("/dev/jnext/kernels/broken_for_test.ptx")) {
            broken = new String(in.readAllBytes(), java.nio.charset.StandardCharsets.US_ASCII);
        } catch (java.io.IOException x) {
            throw new java.io.UncheckedIOException(x);
        }
        CudaException e = assertThrows(CudaException.class, () -> PtxModule.load(GpuTestSupport.gpu(), "broken_for_test", broken));
        assertTrue(e.getMessage().contains("cuModuleLoadDataEx(broken_for_test.ptx)") && e.getMessage().contains("JIT log:")
                && e.getMessage().contains("this_is_not_an_instruction"), e.getMessage());
    }

    @Test
    void launchErrorsNameTheKernelAndConfiguration() {
        var k = GpuTestSupport.kernels().kernel("bench", "empty_kernel");
        CudaException e = assertThrows(CudaException.class,
                () -> k.launch(GpuTestSupport.stream(), Dim3.of(1), Dim3.of(4096), 0, k.args().ptr(0).i32(1)));
        assertTrue(e.getMessage().contains("cuLaunchKernel") && e.getMessage().contains("empty_kernel")
                && e.getMessage().contains("block Dim3[x=4096"), e.getMessage());
    }
    @Test
    void rangedFillsTouchOnlyTheirRange() {
        Gpu gpu = GpuTestSupport.gpu();
        Stream s = GpuTestSupport.stream();
        try (Arena a = Arena.ofConfined(); DeviceBuffer b = gpu.allocate(4096, "ranged")) {
            b.fill((byte) 0x11, s);
            b.fill8(100, 37, (byte) 0x7e, s);
            b.fill32(1024, 10, 0xdeadbeef, s);
            b.fill32(4096, 0, 5, s);   // empty range at the end: nothing
            b.fill8(0, 0, (byte) 1, s);
            MemorySegment host = a.allocate(4096);
            s.synchronize();
            b.copyToHost(host);
            byte[] got = host.toArray(ValueLayout.JAVA_BYTE);
            for (int i = 0; i < 4096; i++) {
                byte want = i >= 100 && i < 137 ? (byte) 0x7e : 0x11;
                if (i >= 1024 && i < 1064) want = (byte) (0xdeadbeef >>> (8 * (i % 4)));
                assertEquals(want, got[i], "byte " + i);
            }
            assertThrows(IndexOutOfBoundsException.class, () -> b.fill8(4000, 100, (byte) 0, s));
            assertThrows(IndexOutOfBoundsException.class, () -> b.fill8(-1, 1, (byte) 0, s));
            assertThrows(IllegalArgumentException.class, () -> b.fill32(2, 1, 0, s), "offset not a multiple of 4");
            assertThrows(IndexOutOfBoundsException.class, () -> b.fill32(4092, 2, 0, s));
        }
    }
}
