package dev.jnext.gpu;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Host-side argument checks of the ranged fills and of GEMM shapes and row strides (no GPU). */
class BufferAndGemmChecksTest {

    @Test
    void rangedFillChecksNameTheBufferAndTheRange() {
        DeviceBuffer.checkRange(4096, "b", 0, 4096);
        DeviceBuffer.checkRange(4096, "b", 4096, 0);
        DeviceBuffer.checkFill32(4096, "b", 1024, 768);
        IndexOutOfBoundsException e = assertThrows(IndexOutOfBoundsException.class, () -> DeviceBuffer.checkRange(4096, "state", 4000, 100));
        assertTrue(e.getMessage().contains("[4000, 4100)") && e.getMessage().contains("'state'"), e.getMessage());
        assertThrows(IndexOutOfBoundsException.class, () -> DeviceBuffer.checkRange(4096, "b", -4, 4));
        assertThrows(IndexOutOfBoundsException.class, () -> DeviceBuffer.checkRange(4096, "b", 8, Long.MAX_VALUE), "no overflow");
        IllegalArgumentException a = assertThrows(IllegalArgumentException.class, () -> DeviceBuffer.checkFill32(4096, "b", 6, 1));
        assertTrue(a.getMessage().contains("offset 6 is not a multiple of 4"), a.getMessage());
        assertThrows(IllegalArgumentException.class, () -> DeviceBuffer.checkFill32(4096, "b", 0, -1));
        assertThrows(IllegalArgumentException.class, () -> DeviceBuffer.checkFill32(4096, "b", 0, Long.MAX_VALUE / 2));
        assertThrows(IndexOutOfBoundsException.class, () -> DeviceBuffer.checkFill32(4096, "b", 4092, 2));
    }

    @Test
    void gemmChecksStridesAndAlignment() {
        Gemm.checkShape(0, 2048, 0, 0, 4096, 7, 4096, 2048);
        Gemm.checkShape(0, 3 * 2048, 0, 64, 12288, 7, 4096, 2048);  // x a slice of a wider buffer, y a column slice
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Gemm.checkShape(0, 2000, 0, 0, 4096, 1, 4096, 2048));
        assertTrue(e.getMessage().contains("ldx 2000") && e.getMessage().contains("K 2048"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Gemm.checkShape(0, 2048, 0, 0, 4100, 1, 4096, 2048));
        assertTrue(e.getMessage().contains("ldy 4100"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Gemm.checkShape(0, 2048, 0, 0, 4088, 1, 4096, 2048), "ldy < N");
        assertThrows(IllegalArgumentException.class, () -> Gemm.checkShape(8, 2048, 0, 0, 4096, 1, 4096, 2048), "x not 16-byte aligned");
        assertThrows(IllegalArgumentException.class, () -> Gemm.checkShape(0, 2048, 0, 0, 4096, 0, 4096, 2048));
        assertThrows(IllegalArgumentException.class, () -> Gemm.checkShape(0, 1 << 20, 0, 0, 4096, 1, 4096, 1 << 20));
    }
}
