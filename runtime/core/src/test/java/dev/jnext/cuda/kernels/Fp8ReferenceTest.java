package dev.jnext.cuda.kernels;

import dev.jnext.model.DType;
import dev.jnext.model.weights.BlockScales;
import dev.jnext.model.weights.Matrix;
import dev.jnext.numeric.Bf16;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The FP8 kernels' oracle is the host loader: {@link Fp8Reference} gives, element for element, the bf16 rounding of what
 * {@link Matrix#loadRow} dequantizes for the checkpoint's own matrices — one matrix per projection, so a gate|up stack
 * blocked at I is two matrices (the hub's files) and one blocked at 2I is one (transformers' fused experts). And
 * {@link DeviceWeight} refuses FP8 values whose scales do not tile them.
 */
class Fp8ReferenceTest {

    @ParameterizedTest(name = "mats={0} rows={1} cols={2} split={3}")
    @CsvSource({"2, 200, 136, 200", "3, 144, 64, 72", "1, 1024, 256, 512", "2, 300, 8, 129"})
    void referenceIsTheLoadersDequantizationOfEachBlockedMatrix(int mats, int rows, int cols, int split) {
        Fp8Reference.Weights w = Fp8Reference.random(mats + rows + split, mats, rows, cols, split);
        short[] ref = w.dequantized();
        int sc = w.scaleCols();
        float[] row = new float[cols];
        for (int m = 0; m < mats; m++) {
            // the loader's matrices: rows [0, split) with their own grid, then [split, rows) with theirs
            int[][] parts = split == rows ? new int[][] {{0, rows}} : new int[][] {{0, split}, {split, rows}};
            int scaleRow0 = m * w.scaleRows();
            for (int[] part : parts) {
                int n = part[1] - part[0], grid = DeviceWeight.blocks(n);
                float[] scales = Arrays.copyOfRange(w.scales(), scaleRow0 * sc, (scaleRow0 + grid) * sc);
                scaleRow0 += grid;
                byte[] q = Arrays.copyOfRange(w.q(), (m * rows + part[0]) * cols, (m * rows + part[1]) * cols);
                Matrix mat = new Matrix("m", MemorySegment.ofArray(q), DType.F8_E4M3, n, cols,
                        new BlockScales("s", scales, grid, sc, 128, 128, 0));
                for (int r = 0; r < n; r++) {
                    mat.loadRow(r, row, null);
                    for (int c = 0; c < cols; c++) {
                        int i = (m * rows + part[0] + r) * cols + c;
                        assertEquals(Bf16.fromFloat(row[c]), ref[i], "element " + i);
                    }
                }
            }
        }
    }

    @Test
    void randomCodesCoverTheFiniteRangeWithoutNaN() {
        Fp8Reference.Weights w = Fp8Reference.random(5, 1, 256, 256, 256);
        boolean[] seen = new boolean[256];
        for (byte b : w.q()) seen[b & 0xff] = true;
        assertTrue(!seen[0x7f] && !seen[0xff] && seen[0x7e] && seen[0xfe] && seen[0] && seen[1], "codes drawn");
        for (short v : w.dequantized()) assertTrue(Float.isFinite(Bf16.toFloat(v)));
    }

    @Test
    void deviceWeightChecksTheScaleGrid() {
        DeviceTensor q = DeviceTensor.of("gate_up", 0x1000, dev.jnext.cuda.kernels.DType.F8_E4M3, 4, 144, 64);
        DeviceTensor ok = DeviceTensor.of("s", 0x9000, dev.jnext.cuda.kernels.DType.F32, 4, 2, 1);
        assertEquals(72, DeviceWeight.fp8(q, ok, 72).split());
        assertEquals(2, DeviceWeight.scaleRows(144, 72));
        assertEquals(2, DeviceWeight.scaleRows(144, 144));
        assertEquals(2, DeviceWeight.scaleRows(200, 72));
        assertEquals(3, DeviceWeight.scaleRows(201, 72));
        DeviceTensor fused = DeviceTensor.of("s", 0x9000, dev.jnext.cuda.kernels.DType.F32, 4, 2, 1);
        DeviceWeight.fp8(q, fused);
        Exception e = assertThrows(IllegalArgumentException.class,
                () -> DeviceWeight.fp8(q, DeviceTensor.of("s", 0x9000, dev.jnext.cuda.kernels.DType.F32, 4, 1, 1)));
        assertTrue(e.getMessage().contains("scales of gate_up") && e.getMessage().contains("f32[4, 2, 1]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> DeviceWeight.fp8(q, null));
        assertTrue(e.getMessage().contains("missing"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> DeviceWeight.fp8(q, ok, 0));
        assertTrue(e.getMessage().contains("split"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> new DeviceWeight(DeviceTensor.of("w", 0x1000, dev.jnext.cuda.kernels.DType.BF16, 8, 8), ok, 8));
        assertTrue(e.getMessage().contains("scales"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> DeviceWeight.bf16(DeviceTensor.of("w", 0x1000, dev.jnext.cuda.kernels.DType.F32, 8, 8)));
        assertTrue(e.getMessage().contains("bf16 or f8e4m3"), e.getMessage());
    }

    @Test
    void moeDecodeTakesFp8ExpertsOnlyWithAMatchingSharedExpertAndAlignedValues() {
        var F8 = dev.jnext.cuda.kernels.DType.F8_E4M3;
        var F32 = dev.jnext.cuda.kernels.DType.F32;
        var BF16 = dev.jnext.cuda.kernels.DType.BF16;
        int e = 8, h = 256, i = 128;
        DeviceTensor x = DeviceTensor.of("x", 0x100, BF16, 4, h), ids = DeviceTensor.of("ids", 0x200, dev.jnext.cuda.kernels.DType.I32, 4, 2);
        DeviceTensor act = DeviceTensor.of("act", 0x300, BF16, 12, i);
        DeviceWeight gateUp = DeviceWeight.fp8(DeviceTensor.of("gate_up", 0x1000, F8, e, 2 * i, h), DeviceTensor.of("s", 0x2000, F32, e, 2, 2), i);
        DeviceWeight shared = DeviceWeight.fp8(DeviceTensor.of("shared_gate_up", 0x3000, F8, 2 * i, h), DeviceTensor.of("ss", 0x4000, F32, 2, 2));
        new MoeDecodeKernel.GateUpArgs(x, ids, gateUp, shared, act);
        Exception ex = assertThrows(IllegalArgumentException.class, () -> new MoeDecodeKernel.GateUpArgs(x, ids, gateUp,
                DeviceWeight.bf16(DeviceTensor.of("shared_gate_up", 0x3000, BF16, 2 * i, h)), act));
        assertTrue(ex.getMessage().contains("moe decode gate_up") && ex.getMessage().contains("'sharedGateUp'")
                && ex.getMessage().contains("f8e4m3 like the routed experts"), ex.getMessage());
        DeviceWeight odd = DeviceWeight.fp8(DeviceTensor.of("gate_up", 0x1004, F8, e, 2 * i, h), DeviceTensor.of("s", 0x2000, F32, e, 2, 2));
        ex = assertThrows(IllegalArgumentException.class, () -> new MoeDecodeKernel.GateUpArgs(x, ids, odd, null, act));
        assertTrue(ex.getMessage().contains("8-byte aligned"), ex.getMessage());
        DeviceWeight downSplit = DeviceWeight.fp8(DeviceTensor.of("down", 0x1000, F8, e, h, i), DeviceTensor.of("s", 0x2000, F32, e, 2, 1), 128);
        ex = assertThrows(IllegalArgumentException.class, () -> new MoeDecodeKernel.DownArgs(act, ids, DeviceTensor.of("w", 0x500, BF16, 4, 2),
                downSplit, null, null, 0, DeviceTensor.of("contrib", 0x600, BF16, 12, h), DeviceTensor.of("c", 0x700,
                dev.jnext.cuda.kernels.DType.U32, 4, h / 64), DeviceTensor.of("out", 0x800, BF16, 4, h)));
        assertTrue(ex.getMessage().contains("moe decode down") && ex.getMessage().contains("one matrix"), ex.getMessage());
        ex = assertThrows(IllegalArgumentException.class, () -> new Fp8DequantKernel.Args(gateUp,
                DeviceTensor.of("out", 0x10000, BF16, e, 2 * i, h + 8)));
        assertTrue(ex.getMessage().contains("fp8 dequant") && ex.getMessage().contains("'out'"), ex.getMessage());
        new Fp8DequantKernel.Args(gateUp, DeviceTensor.of("out", 0x10000, BF16, e, 2 * i, h));
    }
}
