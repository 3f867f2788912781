package dev.jnext.cuda.kernels;

import dev.jnext.cuda.kernels.ChunkedDeltaRuleKernel.Config;
import dev.jnext.cuda.kernels.ChunkedDeltaRuleKernel.Path;
import dev.jnext.numeric.Bf16;
import dev.jnext.cpu.ops.GatedDeltaRule;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The launcher's path choice, scratch sizing and argument checks, and its CPU reference (no GPU needed). */
class ChunkedDeltaRuleKernelTest {
    private static final long P = 0x7f00_0000_0000L;   // a plausible aligned device address

    @Test
    void pathFollowsTheHeadDims() {
        assertEquals(Path.CHUNKED, new Config(16, 32, 128, 128, 4096, 8).defaultPath());
        assertEquals(Path.CHUNKED, new Config(1, 4, 128, 64, 4096, 8).defaultPath());
        assertEquals(Path.RECURRENT, new Config(2, 4, 16, 24, 4096, 8).defaultPath(), "tiny fixture dims");
        assertEquals(Path.RECURRENT, new Config(2, 4, 128, 48, 4096, 8).defaultPath(), "dv not a multiple of 32");
        assertEquals(Path.RECURRENT, new Config(2, 4, 64, 64, 4096, 8).defaultPath(), "dk != 128");
    }

    @Test
    void scratchCoversEveryChunkIdOfTheLargestBatch() {
        Config c = new Config(16, 32, 128, 128, 16384, 4);
        // 4 sequences add at most 4 partial chunks to the 256 full ones; a chunk block is Tβ and P (bf16, rows of 72)
        // and three fp32 factor vectors plus e^γ_last, padded to 16 bytes
        assertEquals(19216, ChunkedDeltaRuleKernel.CHUNK_BLOCK_BYTES);
        assertEquals((4 + 256) * 32L * 19216, c.scratchBytes());
        assertEquals(0, new Config(2, 4, 16, 24, 4096, 8).scratchBytes(), "the recurrent path needs no scratch");
        assertEquals(2 * 16 * 128 + 32 * 128, new Config(16, 32, 128, 128, 1, 1).qkvWidth());
    }

    @Test
    void badGeometryIsRejectedWithTheOffendingValues() {
        var e = assertThrows(IllegalArgumentException.class, () -> new Config(3, 4, 128, 128, 10, 1));
        assertTrue(e.getMessage().contains("value heads (4)") && e.getMessage().contains("key heads (3)"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Config(1, 1, 256, 128, 10, 1));
        assertTrue(e.getMessage().contains("1..128") && e.getMessage().contains("256"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Config(1, 1, 128, 0, 10, 1));
        assertThrows(IllegalArgumentException.class, () -> new Config(1, 1, 128, 128, 0, 1));
        assertThrows(IllegalArgumentException.class, () -> new Config(1, 1, 128, 128, 10, 0));
    }

    /** Tensors of a launch for {@code c} at the plausible address {@link #P}, rows as the config's capacities. */
    static ChunkedDeltaRuleKernel.Args args(Config c, long qkv, long cu) {
        int t = c.maxTokens(), hv = c.valueHeads();
        return new ChunkedDeltaRuleKernel.Args(c, DeviceTensor.of("qkv", qkv, DType.BF16, t, c.qkvWidth()),
                DeviceTensor.of("beta", P, DType.F32, t, hv), DeviceTensor.of("g", P, DType.F32, t, hv),
                DeviceTensor.of("cu", cu, DType.I32, c.maxSequences() + 1), DeviceTensor.of("slots", P, DType.I32, c.maxSequences()),
                DeviceTensor.of("pool", P, DType.F32, 4, hv, c.keyDim(), c.valueDim()),
                DeviceTensor.of("out", P, DType.BF16, t, hv * c.valueDim()));
    }

    @Test
    void launchChecksCountsPathAndPointers() {
        Config c = new Config(2, 4, 128, 128, 100, 3);
        ChunkedDeltaRuleKernel.checkLaunch(c, args(c, P, P), StepShape.prefill(100, 3), Path.CHUNKED);
        ChunkedDeltaRuleKernel.checkLaunch(c, args(c, P, P), StepShape.prefill(1, 1), Path.RECURRENT);
        var e = assertThrows(IllegalArgumentException.class, () -> ChunkedDeltaRuleKernel.checkLaunch(c, args(c, P, P), StepShape.prefill(101, 1), Path.CHUNKED));
        assertTrue(e.getMessage().contains("tokens must be in 1..100, got 101"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ChunkedDeltaRuleKernel.checkLaunch(c, args(c, P, P), StepShape.prefill(10, 4), Path.CHUNKED));
        assertTrue(e.getMessage().contains("sequences must be in 1..3, got 4"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> args(c, P, 0));
        assertTrue(e.getMessage().contains("'cuSeqlens' is a null device pointer"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> args(c, P + 8, P));
        assertTrue(e.getMessage().contains("'qkv' must be 16-byte aligned"), e.getMessage());
        Config tiny = new Config(2, 4, 16, 24, 100, 3);
        e = assertThrows(IllegalArgumentException.class, () -> ChunkedDeltaRuleKernel.checkLaunch(tiny, args(tiny, P, P), StepShape.prefill(10, 1), Path.CHUNKED));
        assertTrue(e.getMessage().contains("dk=16 dv=24"), e.getMessage());
    }

    @Test
    void referenceRunsEachSequenceFromItsSlotAndZeroesPaddingSequences() {
        GatedDeltaRule rule = new GatedDeltaRule(1, 2, 8, 4);
        int width = 2 * 8 + 2 * 4;
        int[] cu = {0, 3, 5, 9};
        int[] slots = {1, -1, 0};
        Random rnd = new Random(5);
        short[] qkv = new short[9 * width];
        for (int i = 0; i < qkv.length; i++) qkv[i] = Bf16.fromFloat((float) rnd.nextGaussian());
        float[] beta = new float[9 * 2], g = new float[9 * 2];
        for (int i = 0; i < beta.length; i++) {
            beta[i] = rnd.nextFloat();
            g[i] = -rnd.nextFloat();
        }
        float[] pool = new float[2 * rule.stateSize()];
        for (int i = 0; i < pool.length; i++) pool[i] = rnd.nextFloat() - 0.5f;
        float[] expectPool = pool.clone();
        float[] out = ChunkedDeltaRuleKernelReference.reference(rule, qkv, beta, g, cu, slots, pool);

        float[] wide = new float[qkv.length];
        for (int i = 0; i < wide.length; i++) wide[i] = Bf16.toFloat(qkv[i]);
        float[] expect = new float[9 * 2 * 4];
        rule.recurrent(wide, 0, 3, beta, g, expectPool, rule.stateSize(), expect);
        rule.recurrent(wide, 5, 4, beta, g, expectPool, 0, expect);
        for (int i = 0; i < expect.length; i++) {
            int t = i / 8;
            assertEquals(t >= 3 && t < 5 ? 0f : expect[i], out[i], "output " + i);
        }
        for (int i = 0; i < pool.length; i++) assertEquals(expectPool[i], pool[i], "state " + i);
        assertTrue(out[0] != 0f, "non-trivial outputs");
    }
}
