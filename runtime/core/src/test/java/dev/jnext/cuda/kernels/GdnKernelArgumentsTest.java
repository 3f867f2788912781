package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.numeric.Bf16;
import dev.jnext.cpu.ops.CausalConv1d;
import dev.jnext.cpu.ops.GatedDeltaRule;
import dev.jnext.model.GdnProjections;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Launch shapes and argument checks of the GDN decode/conv/split kernels, and the conv's bf16-path reference (no GPU). */
class GdnKernelArgumentsTest {

    @Test
    void recurrentRulePicksTheRegisterKernelForDk128AndGridsOverColumnBlocks() {
        GatedDeltaRule qwen = new GatedDeltaRule(16, 32, 128, 128);
        assertTrue(GatedDeltaRuleDecodeKernel.fastPath(qwen));
        assertEquals(Dim3.of(4, 32, 64), GatedDeltaRuleDecodeKernel.grid(qwen, 64));
        assertEquals(0, GatedDeltaRuleDecodeKernel.sharedBytes(qwen));
        GatedDeltaRule tiny = new GatedDeltaRule(2, 4, 16, 24);
        assertFalse(GatedDeltaRuleDecodeKernel.fastPath(tiny));
        assertEquals(Dim3.of(5, 4), GatedDeltaRuleDecodeKernel.grid(tiny, 5));
        assertEquals(2 * 16 * 4, GatedDeltaRuleDecodeKernel.sharedBytes(tiny));
        assertFalse(GatedDeltaRuleDecodeKernel.fastPath(new GatedDeltaRule(2, 4, 128, 48)), "dv not a multiple of 32");
        assertEquals(2L * 64 * 32 * 128 * 128 * 4, GatedDeltaRuleDecodeKernel.stateBytes(qwen, 64));
    }

    @Test
    void recurrentRuleRejectsBadShapesWithTheValue() {
        GatedDeltaRule qwen = new GatedDeltaRule(16, 32, 128, 128);
        assertMessage(() -> GatedDeltaRuleDecodeKernel.validate(qwen, 0), "batch must be >= 1, got 0");
        assertMessage(() -> GatedDeltaRuleDecodeKernel.validate(qwen, 70000), "batch at most 65535, got 70000");
        assertMessage(() -> GatedDeltaRuleDecodeKernel.validate(new GatedDeltaRule(3, 32, 128, 128), 1), "multiple of key heads 3");
        assertMessage(() -> GatedDeltaRuleDecodeKernel.validate(new GatedDeltaRule(1, 1, 8192, 128), 1), "got 8192");
        assertMessage(() -> GatedDeltaRuleDecodeKernel.validate(new GatedDeltaRule(1, 1, 0, 128), 1), "must be >= 1");
        GatedDeltaRuleDecodeKernel.validate(qwen, 1024);
    }

    @Test
    void convGridCoversTheWorstSplitOfTheTokens() {
        // 8192 channels = 1024 vectors of 8 = 8 blocks of 128 threads; chunks: ceil(T / 8) + one partial chunk per sequence
        assertEquals(Dim3.of(8, 4096 / 8 + 4 + 1), CausalConv1dKernel.prefillGrid(8192, 4096, 4), "+1: the rows past the last entry");
        assertEquals(Dim3.of(2, 1 + 3 + 1), CausalConv1dKernel.prefillGrid(1032, 5, 3));
        assertEquals(Dim3.of(8, 64), CausalConv1dKernel.updateGrid(8192, 64));
        assertMessage(() -> CausalConv1dKernel.prefillGrid(8192, 2_000_000, 1), "at most 65535");
        assertMessage(() -> CausalConv1dKernel.validate(8192, 5), "width must be 2, 3 or 4, got 5");
        assertMessage(() -> CausalConv1dKernel.validate(8192, 1), "got 1");
        assertMessage(() -> CausalConv1dKernel.validate(12, 4), "multiple of 8, got 12");
        assertEquals(2L * 2 * 64 * 8192 + 2L * 2 * 64 * 8192 * 3 + 2L * 8192 * 4, CausalConv1dKernel.updateBytes(64, 8192, 4));
    }

    @Test
    void splitNeedsSixteenByteVectors() {
        GdnProjections qwen = new GdnProjections(16, 32, 128, 128);
        assertEquals(12288 / 8 + 32, GdnSplitGatingKernel.itemsPerToken(qwen));
        assertEquals(Dim3.of((int) ((4096L * (1536 + 32) + 255) / 256)), GdnSplitGatingKernel.grid(qwen, 4096));
        assertMessage(() -> GdnSplitGatingKernel.validate(new GdnProjections(2, 4, 12, 16), 3), "got 12 and 16");
        assertMessage(() -> GdnSplitGatingKernel.validate(new GdnProjections(3, 4, 16, 16), 3), "multiple of key heads 3");
        assertMessage(() -> GdnSplitGatingKernel.validate(qwen, 0), "tokens must be >= 1, got 0");
        GdnSplitGatingKernel.validate(new GdnProjections(2, 4, 16, 24), 5);
    }

    @Test
    void convReferenceIsTheCpuOpWithTorchRoundingsAndKeepsTheLastInputs() {
        Random rnd = new Random(3);
        int channels = 16, width = 4, k1 = 3;
        for (int len : new int[] {1, 2, 3, 9}) {
            short[] x = bf16(rnd, len * channels, 1), w = bf16(rnd, channels * width, 0.5), state = bf16(rnd, channels * k1, 1);
            short[] ref = state.clone();
            short[] out = new short[len * channels];
            float[] sums = new float[len * channels];
            CausalConv1dKernelReference.reference(x, 0, len, w, ref, 0, channels, width, out, sums);
            CausalConv1d op = new CausalConv1d(channels, width, DeviceArrays.toFloats(w));
            float[] opState = DeviceArrays.toFloats(state), opOut = new float[len * channels];
            op.forward(DeviceArrays.toFloats(x), 0, len, opState, 0, opOut);
            assertArrayEquals(opState, DeviceArrays.toFloats(ref), "state after " + len + " tokens: raw inputs, exact");
            for (int i = 0; i < out.length; i++) {
                float a = Bf16.round(sums[i]);
                assertEquals(Bf16.fromFloat((float) (a / (1 + Math.exp(-a)))), out[i], "output is bf16(silu(bf16(sum)))");
                // the two roundings (sum, output; unit roundoff 2^-8) against the unrounded op: 1.1 * 2^-8 |sum| + 2^-8 |out|
                assertTrue(Math.abs(Bf16.toFloat(out[i]) - opOut[i]) <= 1.1 * 0x1p-8 * Math.abs(sums[i]) + 0x1p-8 * Math.abs(opOut[i]) + 1e-7,
                        "len " + len + " element " + i);
            }
        }
    }

    private static short[] bf16(Random rnd, int n, double scale) {
        short[] a = new short[n];
        for (int i = 0; i < n; i++) a[i] = Bf16.fromFloat((float) (rnd.nextGaussian() * scale));
        return a;
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable e, String part) {
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, e);
        assertTrue(ex.getMessage().contains(part), ex.getMessage());
    }
}
