package dev.jnext.cuda.kernels;

import dev.jnext.numeric.Bf16;
import dev.jnext.cpu.ops.RmsNorm;
import dev.jnext.cpu.ops.RotaryEmbedding;
import dev.jnext.cuda.state.KvPages;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The attention launchers' rules and CPU reference, without a GPU. */
class AttentionLaunchRulesTest {

    @Test
    void geometryValidation() {
        AttentionGeometry g = new AttentionGeometry(16, 2, 256, 64);
        assertEquals(8, g.group());
        assertEquals(1 / 16.0 / Math.log(2), g.scaleLog2(), 1e-7);
        assertThrows(IllegalArgumentException.class, () -> new AttentionGeometry(16, 3, 256, 64));
        assertThrows(IllegalArgumentException.class, () -> new AttentionGeometry(64, 2, 128, 64), "group 32 > 16");
        assertThrows(IllegalArgumentException.class, () -> new AttentionGeometry(16, 2, 96, 64));
        assertThrows(IllegalArgumentException.class, () -> new AttentionGeometry(16, 2, 256, 65));
        assertThrows(IllegalArgumentException.class, () -> new AttentionGeometry(16, 2, 128, 256));
    }

    @Test
    void prefillBlocksPackTheGroupsHeads() {
        AttentionGeometry g = new AttentionGeometry(16, 2, 256, 64);
        assertEquals(16, PrefillAttentionKernel.tokensPerBlock(g));
        // (entries + token blocks of all rows, KV heads): from the step's shape, never from the staged batch
        assertEquals(new dev.jnext.gpu.Dim3(513, 2, 1), PrefillAttentionKernel.grid(g, StepShape.prefill(8192, 1)));
        assertEquals(new dev.jnext.gpu.Dim3(10, 2, 1), PrefillAttentionKernel.grid(g, StepShape.prefill(100, 3)));
        assertEquals(new dev.jnext.gpu.Dim3(64 + 512, 2, 1), PrefillAttentionKernel.grid(g, StepShape.prefill(8192, 64)));
        assertEquals(8, PrefillAttentionKernel.tokensPerBlock(new AttentionGeometry(32, 2, 128, 64)));
        assertEquals(192 * 1024 + 16 * 1024 + 2048, PrefillAttentionKernel.sharedBytes(256, 2),
                "Q 64 KB + 2 x (K 32 KB + V 32 KB) + P 16 KB + row max/sum exchange");
        assertTrue(PrefillAttentionKernel.sharedBytes(256, 4) <= 227 * 1024, "the 16-warp variant fits an H100 block");
        assertEquals(256, PrefillAttentionKernel.threads(2));
        assertEquals(512, PrefillAttentionKernel.threads(4));
    }

    @Test
    void decodeSplitsFillOneWaveAndNeverDependOnContext() {
        int slots = 132;  // H100: one 192 KB block per SM at head_dim 256
        assertEquals(1, DecodeAttentionKernel.blocksPerSm(DecodeAttentionKernel.sharedBytes(256), 227 * 1024));
        assertEquals(2, DecodeAttentionKernel.blocksPerSm(DecodeAttentionKernel.sharedBytes(128), 227 * 1024));
        assertEquals(66, DecodeAttentionKernel.splitsFor(1, 2, slots));
        assertEquals(2, DecodeAttentionKernel.splitsFor(32, 2, slots));
        assertEquals(1, DecodeAttentionKernel.splitsFor(100, 2, slots));
        for (int n = 1; n <= 256; n++) {
            long blocks = (long) n * 2 * DecodeAttentionKernel.splitsFor(n, 2, slots);
            assertTrue(blocks <= Math.max(slots, 2L * n), "batch " + n + ": " + blocks + " blocks");
        }
        AttentionGeometry g = new AttentionGeometry(16, 2, 256, 64);
        assertEquals(1L * 16 * 66, DecodeAttentionKernel.scratchEntries(g, 1, slots));
        assertEquals(256L * 16, DecodeAttentionKernel.scratchEntries(g, 256, slots), "batch 256: one split, 256 x 16 heads");
    }

    @Test
    void gateAndShapeChecksNameTheProblem() {
        AttentionGeometry g = new AttentionGeometry(16, 2, 256, 64);
        PrefillAttentionKernel.checkGate(0, 0, 0, g);
        PrefillAttentionKernel.checkGate(4096, 16 * 512, 512, g);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> PrefillAttentionKernel.checkGate(4096, 16 * 512, 100, g));
        assertTrue(e.getMessage().contains("headStride 100"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> PrefillAttentionKernel.checkGate(4098, 16 * 512, 512, g));
        KvPages.Geometry pool = new KvPages.Geometry(1, 2, 256, 4);
        AttentionPrepKernel.checkShapes(g, pool, 512);
        assertThrows(IllegalArgumentException.class, () -> AttentionPrepKernel.checkShapes(g, pool, 500));
        IllegalArgumentException heads = assertThrows(IllegalArgumentException.class,
                () -> AttentionPrepKernel.checkShapes(g, new KvPages.Geometry(1, 4, 256, 4), 1024));
        assertTrue(heads.getMessage().contains("KV pool is 4 x 256"), heads.getMessage());
    }

    @Test
    void prepReferenceIsTheFp32OpsWithTransformersBf16Roundings() {
        Random rnd = new Random(5);
        int hd = 256, rd = 64;
        short[] x = new short[hd], w = new short[hd];
        for (int i = 0; i < hd; i++) {
            x[i] = Bf16.fromFloat((float) rnd.nextGaussian() * 3);
            w[i] = Bf16.fromFloat((float) rnd.nextGaussian() * 0.3f);
        }
        RotaryEmbedding rope = new RotaryEmbedding(hd, rd, 1e7);
        for (int pos : new int[] {0, 1, 4095, 31999}) {
            short[] got = AttentionPrepKernelReference.referenceRow(x, 0, w, 1e-6f, rope.invFreq(), rd, pos);
            float[] wf = new float[hd], xf = new float[hd], y = new float[hd];
            for (int i = 0; i < hd; i++) {
                wf[i] = Bf16.toFloat(w[i]);
                xf[i] = Bf16.toFloat(x[i]);
            }
            new RmsNorm(wf, 1e-6f).forward(xf, 0, 1, y, 0);
            float[] n = y.clone();
            rope.apply(y, 0, 1, 1, pos);
            for (int i = 0; i < hd; i++) {
                float pair = i < rd ? n[i < rd / 2 ? i + rd / 2 : i - rd / 2] : 0;
                // four bf16 roundings (norm, two products, sum) and bf16 cos/sin: each <= 2^-9 of the terms
                assertEquals(y[i], Bf16.toFloat(got[i]), 0x1p-6 * (Math.abs(n[i]) + Math.abs(pair)), "pos " + pos + " dim " + i);
                if (i >= rd) assertEquals(Bf16.fromFloat(n[i]), got[i], "pass-through dims are the rounded norm");
            }
            if (pos == 0) {
                for (int i = 0; i < hd; i++) assertEquals(Bf16.fromFloat(n[i]), got[i], "position 0 is the identity");
            }
        }
    }
}
