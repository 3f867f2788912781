package dev.jnext.cuda.kernels;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.GpuTestSupport;
import dev.jnext.gpu.Stream;
import dev.jnext.cuda.kernels.GatedDeltaRuleDecodeKernel.Gates;
import dev.jnext.numeric.Bf16;
import dev.jnext.cpu.ops.GatedDeltaRule;
import dev.jnext.cpu.ops.GdnGating;
import dev.jnext.model.GdnProjections;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Random;

import static dev.jnext.gpu.GpuTestSupport.download;
import static dev.jnext.gpu.GpuTestSupport.poisoned;
import static dev.jnext.gpu.GpuTestSupport.randomBf16;
import static dev.jnext.gpu.GpuTestSupport.upload;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The recurrent gated delta rule kernel against {@link GatedDeltaRule#recurrent} (fp32, CPU): two decode steps on a
 * slot pool with random non-zero states, rows in shuffled slots, some rows padding (slot −1), outputs poisoned first.
 *
 * <p>Tolerances. Output: the kernel and the reference both work in fp32 but sum over dk in another order (the kernel
 * also factors the decay and the l2 norms out of its sums), so the fp32 values differ by a few ulps of the summed terms;
 * after the bf16 rounding that is at most one bf16 ulp (2⁻⁷ relative) plus 1e-4 of the head's largest output.
 * State: fp32 with the same reordering: 1e-5 relative plus 1e-5 of the head's largest element. Slots no row names, and
 * padding rows' outputs, must be exact.
 */
@Tag("gpu")
class GatedDeltaRuleDecodeGpuTest {
    enum Mode { F32_BETA, BF16_BETA, FUSED }

    record Case(int hk, int hv, int dk, int dv, int batch, int poolSlots, Mode mode) {
        @Override
        public String toString() {
            return "Hk=" + hk + " Hv=" + hv + " dk=" + dk + " dv=" + dv + " B=" + batch + " " + mode;
        }
    }

    static java.util.stream.Stream<Case> cases() {
        return java.util.stream.Stream.of(
                new Case(16, 32, 128, 128, 64, 72, Mode.F32_BETA),   // Qwen3-Next 80B geometry, fast path
                new Case(16, 32, 128, 128, 64, 72, Mode.BF16_BETA),
                new Case(16, 32, 128, 128, 64, 72, Mode.FUSED),
                new Case(16, 32, 128, 128, 1, 3, Mode.FUSED),
                new Case(4, 4, 128, 64, 9, 12, Mode.BF16_BETA),       // r = 1, dv = 64: fast path, two column blocks
                new Case(2, 4, 16, 24, 5, 7, Mode.FUSED),             // the tiny test model: plain path
                new Case(2, 4, 64, 128, 7, 9, Mode.F32_BETA),         // plain path, dk != 128
                new Case(1, 2, 256, 96, 3, 4, Mode.BF16_BETA));       // plain path, dk > 128
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void twoStepsMatchTheCpuRecurrentRule(Case c) {
        GatedDeltaRule rule = new GatedDeltaRule(c.hk, c.hv, c.dk, c.dv);
        GdnProjections proj = new GdnProjections(c.hk, c.hv, c.dk, c.dv);
        assertEquals(c.dk == 128 && c.dv % 32 == 0, GatedDeltaRuleDecodeKernel.fastPath(rule));
        Random rnd = new Random(31L * c.batch + c.dk + c.mode.ordinal());
        int b = c.batch, hv = c.hv, conv = proj.convDim(), outW = hv * c.dv, ss = rule.stateSize();

        int[] slots = slotsFor(rnd, b, c.poolSlots);
        float[] pool = new float[c.poolSlots * ss];
        for (int i = 0; i < pool.length; i++) pool[i] = (float) (rnd.nextGaussian() * 0.5);
        float[] refPool = pool.clone();
        float[] aLog = new float[hv], dtBias = new float[hv];
        for (int h = 0; h < hv; h++) {
            aLog[h] = (float) (rnd.nextGaussian() * 0.5);
            dtBias[h] = (float) rnd.nextGaussian();
        }

        Stream s = GpuTestSupport.stream();
        GatedDeltaRuleDecodeKernel kernel = new GatedDeltaRuleDecodeKernel(GpuTestSupport.kernels());
        try (DeviceBuffer dPool = DeviceArrays.upload(pool, "state pool"); DeviceBuffer dSlots = DeviceArrays.upload(slots, "slots");
             DeviceBuffer dALog = DeviceArrays.upload(aLog, "A_log"); DeviceBuffer dDt = DeviceArrays.upload(dtBias, "dt_bias")) {
            for (int step = 0; step < 2; step++) {
                short[] qkv = randomBf16(rnd, b * conv, 1.0);
                float[] beta = new float[b * hv], g = new float[b * hv];
                short[] ba = randomBf16(rnd, b * 2 * hv, 2.0);
                if (c.mode == Mode.FUSED) {
                    // the reference gates: GdnProjections' split of ba, GdnGating, beta rounded to bf16 like torch
                    float[] bb = new float[b * hv], aa = new float[b * hv];
                    proj.split(new float[b * proj.qkvzWidth()], DeviceArrays.toFloats(ba), b, new float[b * conv], new float[b * outW], bb, aa);
                    new GdnGating(aLog, dtBias).forward(bb, aa, b, beta, g);
                    for (int i = 0; i < beta.length; i++) beta[i] = Bf16.round(beta[i]);
                } else {
                    for (int i = 0; i < beta.length; i++) {
                        beta[i] = 0.05f + 0.9f * rnd.nextFloat();
                        if (c.mode == Mode.BF16_BETA) beta[i] = Bf16.round(beta[i]);
                        g[i] = -(0.01f + 2f * rnd.nextFloat());
                    }
                }
                short[] betaBf16 = new short[beta.length];
                for (int i = 0; i < beta.length; i++) betaBf16[i] = Bf16.fromFloat(beta[i]);

                float[] refOut = new float[b * outW];
                float[] qkvF = DeviceArrays.toFloats(qkv);
                for (int row = 0; row < b; row++) {
                    if (slots[row] >= 0) rule.recurrent(qkvF, row, 1, beta, g, refPool, slots[row] * ss, refOut);
                }

                try (DeviceBuffer dQkv = upload(qkv, "qkv"); DeviceBuffer dOut = poisoned(b * outW, "out");
                     DeviceBuffer dBa = upload(ba, "ba"); DeviceBuffer dBeta32 = DeviceArrays.upload(beta, "beta");
                     DeviceBuffer dBeta16 = upload(betaBf16, "beta bf16"); DeviceBuffer dG = DeviceArrays.upload(g, "g")) {
                    Gates gates = switch (c.mode) {
                        case F32_BETA -> new Gates.Precomputed(Tensors.rows(dBeta32, DType.F32, hv), Tensors.rows(dG, DType.F32, hv));
                        case BF16_BETA -> new Gates.Precomputed(Tensors.rows(dBeta16, DType.BF16, hv), Tensors.rows(dG, DType.F32, hv));
                        case FUSED -> new Gates.Fused(Tensors.rows(dBa, DType.BF16, 2 * hv), Tensors.of(dALog, DType.F32, hv),
                                Tensors.of(dDt, DType.F32, hv));
                    };
                    kernel.launch(s, StepShape.decode(b), new GatedDeltaRuleDecodeKernel.Args(rule,
                            Tensors.rows(dQkv, DType.BF16, 2 * rule.keyHeads() * rule.keyDim() + hv * rule.valueDim()), gates,
                            Tensors.rows(dPool, DType.F32, hv, rule.keyDim(), rule.valueDim()), Tensors.rows(dSlots, DType.I32),
                            Tensors.rows(dOut, DType.BF16, hv * rule.valueDim())));
                    short[] out = download(dOut, b * outW);
                    checkOutput(refOut, out, slots, hv, c.dv, "step " + step);
                }
            }
            checkState(refPool, pool, DeviceArrays.downloadFloats(dPool, pool.length), slots, c.poolSlots, hv, c.dk * c.dv);
        }
    }

    /** Rows take distinct random slots of the pool; about one row in six is padding (−1), at least one is live. */
    static int[] slotsFor(Random rnd, int batch, int poolSlots) {
        List<Integer> free = new ArrayList<>();
        for (int i = 0; i < poolSlots; i++) free.add(i);
        Collections.shuffle(free, rnd);
        int[] slots = new int[batch];
        for (int i = 0; i < batch; i++) slots[i] = i > 0 && rnd.nextInt(6) == 0 ? -1 : free.get(i);
        return slots;
    }

    private static void checkOutput(float[] ref, short[] out, int[] slots, int hv, int dv, String what) {
        for (int row = 0; row < slots.length; row++) {
            for (int h = 0; h < hv; h++) {
                int base = (row * hv + h) * dv;
                float max = 0;
                for (int j = 0; j < dv; j++) max = Math.max(max, Math.abs(ref[base + j]));
                for (int j = 0; j < dv; j++) {
                    float got = Bf16.toFloat(out[base + j]);
                    String at = what + " row " + row + " (slot " + slots[row] + ") head " + h + " col " + j;
                    assertFalse(Float.isNaN(got), at + ": NaN (unwritten or broken)");
                    if (slots[row] < 0) {
                        assertEquals(0f, got, at + ": padding rows are zeroed");
                        continue;
                    }
                    float want = ref[base + j];
                    double tol = 0x1p-7 * Math.abs(want) + 1e-4 * max;
                    if (Math.abs(got - want) > tol) fail(at + ": got " + got + ", want " + want + " (tol " + tol + ")");
                }
            }
        }
    }

    private static void checkState(float[] ref, float[] initial, float[] got, int[] slots, int poolSlots, int hv, int headSize) {
        boolean[] live = new boolean[poolSlots];
        for (int sl : slots) if (sl >= 0) live[sl] = true;
        for (int sl = 0; sl < poolSlots; sl++) {
            for (int h = 0; h < hv; h++) {
                int base = (sl * hv + h) * headSize;
                if (!live[sl]) {
                    assertTrue(Arrays.equals(initial, base, base + headSize, got, base, base + headSize),
                            "slot " + sl + " head " + h + ": no row names this slot, so it must be untouched");
                    continue;
                }
                float max = 0;
                for (int i = 0; i < headSize; i++) max = Math.max(max, Math.abs(ref[base + i]));
                for (int i = 0; i < headSize; i++) {
                    float want = ref[base + i], g = got[base + i];
                    double tol = 1e-5 * Math.abs(want) + 1e-5 * max;
                    if (!(Math.abs(g - want) <= tol)) {
                        fail("state slot " + sl + " head " + h + " element " + i + ": got " + g + ", want " + want + " (tol " + tol + ")");
                    }
                }
            }
        }
    }
}
