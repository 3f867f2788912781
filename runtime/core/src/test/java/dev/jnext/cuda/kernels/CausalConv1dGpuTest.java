package dev.jnext.cuda.kernels;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.GpuTestSupport;
import dev.jnext.gpu.Stream;
import dev.jnext.numeric.Bf16;
import dev.jnext.cpu.ops.CausalConv1d;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Arrays;
import java.util.Random;

import static dev.jnext.gpu.GpuTestSupport.download;
import static dev.jnext.gpu.GpuTestSupport.poisoned;
import static dev.jnext.gpu.GpuTestSupport.randomBf16;
import static dev.jnext.gpu.GpuTestSupport.upload;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The causal conv1d kernels (varlen prefill, decode update) against {@link CausalConv1d} (fp32, CPU) and against
 * {@link CausalConv1dKernel#reference} (the same sums with torch's bf16 roundings), from random non-zero conv states,
 * with padding sequences (slot −1) and outputs poisoned first.
 *
 * <p>Tolerances. The conv state holds raw inputs: exact. Output against the bf16-path reference: the fp32 sums differ
 * only in order (and FMA), so bf16(sum) may land on a neighbouring bf16 value; the output must be within one bf16 ulp
 * of bf16(silu(a)) for a the rounded sum or one of its two bf16 neighbours. Against the fp32 op, which skips the
 * pre-SiLU rounding: |silu'| ≤ 1.1, so the rounding of the sum (unit roundoff 2⁻⁸, doubled for the GPU's order) and of
 * the output (2⁻⁸, doubled) bound the difference by 1.1·2⁻⁷·|sum| + 2⁻⁷·|out|.
 */
@Tag("gpu")
class CausalConv1dGpuTest {

    @ParameterizedTest(name = "C={0} K={1} lengths={2}")
    @CsvSource(delimiter = ';', value = {
            "8192; 4; 1 2 3 17 40 100 5 16 32",   // the 80B conv: short sequences, chunk-sized ones, a multi-chunk one
            "8192; 4; 300",
            "64; 3; 16 15 33 1 2 64",
            "24; 2; 1 5 19",
            "1032; 4; 7 0 50"})                    // a channel count that leaves a partial block, an empty sequence
    void prefillMatchesTheCpuConv(int channels, int width, String lengthList) {
        int[] lengths = Arrays.stream(lengthList.trim().split(" +")).mapToInt(Integer::parseInt).toArray();
        int batch = lengths.length, k1 = width - 1;
        int[] cu = new int[batch + 1];
        for (int i = 0; i < batch; i++) cu[i + 1] = cu[i] + lengths[i];
        int tokens = cu[batch];
        Random rnd = new Random(channels * 31L + width + tokens);
        int poolSlots = batch + 2;
        int[] slots = GatedDeltaRuleDecodeGpuTest.slotsFor(rnd, batch, poolSlots);
        short[] x = randomBf16(rnd, tokens * channels, 1.0);
        short[] w = randomBf16(rnd, channels * width, 0.5);
        short[] pool = randomBf16(rnd, poolSlots * channels * k1, 1.0);

        short[] refPool = pool.clone();
        short[] refOut = new short[tokens * channels];
        float[] preSilu = new float[tokens * channels];
        for (int b = 0; b < batch; b++) {
            if (slots[b] >= 0) CausalConv1dKernelReference.reference(x, cu[b], lengths[b], w, refPool, slots[b] * channels * k1, channels, width, refOut, preSilu);
        }
        float[] opOut = runOp(x, cu, slots, w, pool, channels, width);

        Stream s = GpuTestSupport.stream();
        CausalConv1dKernel kernel = new CausalConv1dKernel(GpuTestSupport.kernels());
        try (DeviceBuffer dx = upload(x, "x"); DeviceBuffer dw = upload(w, "w"); DeviceBuffer dPool = upload(pool, "conv state");
             DeviceBuffer dCu = DeviceArrays.upload(cu, "cu_seqlens"); DeviceBuffer dSlots = DeviceArrays.upload(slots, "slots");
             DeviceBuffer dOut = poisoned(tokens * channels, "out")) {
            kernel.launchPrefill(s, StepShape.prefill(tokens, batch), new CausalConv1dKernel.PrefillArgs(
                    Tensors.rows(dx, DType.BF16, channels), Tensors.of(dw, DType.BF16, channels, width),
                    Tensors.rows(dPool, DType.BF16, channels, width - 1), Tensors.rows(dCu, DType.I32), Tensors.rows(dSlots, DType.I32),
                    Tensors.rows(dOut, DType.BF16, channels)));
            short[] out = download(dOut, tokens * channels);
            short[] gotPool = download(dPool, pool.length);
            assertArrayEquals(refPool, gotPool, "conv state: the last K-1 raw inputs of every live sequence, others untouched");
            for (int b = 0; b < batch; b++) {
                for (int t = cu[b]; t < cu[b + 1]; t++) {
                    for (int c = 0; c < channels; c++) {
                        int i = t * channels + c;
                        String at = "sequence " + b + " (slot " + slots[b] + ") token " + (t - cu[b]) + " channel " + c;
                        checkOne(out[i], slots[b] < 0, refOut[i], preSilu[i], opOut[i], at);
                    }
                }
            }
        }
    }

    @ParameterizedTest(name = "C={0} K={1} B={2}")
    @CsvSource({"8192, 4, 64", "8192, 4, 1", "64, 3, 9", "24, 2, 5"})
    void threeDecodeUpdatesMatchTheCpuConv(int channels, int width, int batch) {
        int k1 = width - 1;
        Random rnd = new Random(channels + 7L * width + batch);
        int poolSlots = batch + 3;
        int[] slots = GatedDeltaRuleDecodeGpuTest.slotsFor(rnd, batch, poolSlots);
        short[] w = randomBf16(rnd, channels * width, 0.5);
        short[] pool = randomBf16(rnd, poolSlots * channels * k1, 1.0);
        short[] refPool = pool.clone();
        int[] cu = new int[batch + 1];
        for (int i = 0; i < batch; i++) cu[i + 1] = i + 1;

        Stream s = GpuTestSupport.stream();
        CausalConv1dKernel kernel = new CausalConv1dKernel(GpuTestSupport.kernels());
        try (DeviceBuffer dw = upload(w, "w"); DeviceBuffer dPool = upload(pool, "conv state");
             DeviceBuffer dSlots = DeviceArrays.upload(slots, "slots")) {
            for (int step = 0; step < 3; step++) {
                short[] x = randomBf16(rnd, batch * channels, 1.0);
                short[] refOut = new short[batch * channels];
                float[] preSilu = new float[batch * channels];
                short[] opPool = refPool.clone();
                float[] opOut = runOpOn(x, cu, slots, w, opPool, channels, width);
                for (int b = 0; b < batch; b++) {
                    if (slots[b] >= 0) CausalConv1dKernelReference.reference(x, b, 1, w, refPool, slots[b] * channels * k1, channels, width, refOut, preSilu);
                }
                try (DeviceBuffer dx = upload(x, "x"); DeviceBuffer dOut = poisoned(batch * channels, "out")) {
                    kernel.launchUpdate(s, StepShape.decode(batch), new CausalConv1dKernel.UpdateArgs(
                            Tensors.rows(dx, DType.BF16, channels), Tensors.of(dw, DType.BF16, channels, width),
                            Tensors.rows(dPool, DType.BF16, channels, width - 1), Tensors.rows(dSlots, DType.I32),
                            Tensors.rows(dOut, DType.BF16, channels)));
                    short[] out = download(dOut, batch * channels);
                    for (int b = 0; b < batch; b++) {
                        for (int c = 0; c < channels; c++) {
                            int i = b * channels + c;
                            checkOne(out[i], slots[b] < 0, refOut[i], preSilu[i], opOut[i], "step " + step + " row " + b + " channel " + c);
                        }
                    }
                }
                assertArrayEquals(refPool, download(dPool, pool.length), "conv state after step " + step);
            }
        }
    }

    private static void checkOne(short got, boolean padding, short ref, float sum, float op, String at) {
        float g = Bf16.toFloat(got);
        assertFalse(Float.isNaN(g), at + ": NaN (unwritten or broken)");
        if (padding) {
            assertEquals(0f, g, at + ": padding rows are zeroed");
            return;
        }
        short a = Bf16.fromFloat(sum);
        boolean near = false;
        for (int d = -1; d <= 1 && !near; d++) {
            short n = (short) (a + d);
            float nf = Bf16.toFloat(n);
            short cand = Bf16.fromFloat((float) (nf / (1.0 + Math.exp(-nf))));
            near = Bf16.ulpDistance(cand, got) <= 1;
        }
        if (!near) fail(at + ": got " + g + ", bf16-path reference " + Bf16.toFloat(ref) + " (sum " + sum + ")");
        double tol = 1.1 * 0x1p-7 * Math.abs(sum) + 0x1p-7 * Math.abs(op) + 1e-6;
        if (Math.abs(g - op) > tol) fail(at + ": got " + g + ", fp32 op " + op + " (tol " + tol + ")");
    }

    /** The fp32 op on a copy of the pool, sequence by sequence (padding sequences skipped). */
    private static float[] runOp(short[] x, int[] cu, int[] slots, short[] w, short[] pool, int channels, int width) {
        return runOpOn(x, cu, slots, w, pool.clone(), channels, width);
    }

    private static float[] runOpOn(short[] x, int[] cu, int[] slots, short[] w, short[] pool, int channels, int width) {
        CausalConv1d op = new CausalConv1d(channels, width, DeviceArrays.toFloats(w));
        float[] state = DeviceArrays.toFloats(pool);
        float[] xf = DeviceArrays.toFloats(x);
        float[] out = new float[xf.length];
        for (int b = 0; b + 1 < cu.length; b++) {
            if (slots[b] >= 0 && cu[b + 1] > cu[b]) op.forward(xf, cu[b], cu[b + 1] - cu[b], state, slots[b] * op.stateSize(), out);
        }
        return out;
    }
}
