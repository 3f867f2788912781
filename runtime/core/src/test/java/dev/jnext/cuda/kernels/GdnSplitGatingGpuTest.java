package dev.jnext.cuda.kernels;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.GpuTestSupport;
import dev.jnext.numeric.Bf16;
import dev.jnext.cpu.ops.GatedDeltaRule;
import dev.jnext.cpu.ops.GdnGating;
import dev.jnext.model.GdnProjections;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
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
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The split/gating kernel against {@link GdnProjections#split} and {@link GdnGating} (CPU) on random projection
 * outputs, outputs poisoned first. mixed and z are a permutation: bit-exact. beta (fp32 in memory): the kernel rounds
 * sigmoid(b) once to bf16 as torch does and stores it widened, so every value is exactly a bf16; expf against Math.exp may
 * move the fp32 value across a rounding boundary: 1 ulp. g is fp32 from
 * expf/log1pf against double-precision Math: 1e-5 relative (plus 1e-6 absolute near zero).
 */
@Tag("gpu")
class GdnSplitGatingGpuTest {

    @ParameterizedTest(name = "Hk={0} Hv={1} dk={2} dv={3} T={4}")
    @CsvSource({"16, 32, 128, 128, 37", "16, 32, 128, 128, 1", "2, 4, 16, 24, 5", "4, 4, 64, 32, 300"})
    void matchesTheCpuSplitAndGates(int hk, int hv, int dk, int dv, int tokens) {
        GdnProjections proj = new GdnProjections(hk, hv, dk, dv);
        Random rnd = new Random(hk * 1000L + hv * 100L + dk + dv + tokens);
        short[] qkvz = randomBf16(rnd, tokens * proj.qkvzWidth(), 1.0);
        short[] ba = randomBf16(rnd, tokens * proj.baWidth(), 3.0);
        float[] aLog = new float[hv], dtBias = new float[hv];
        for (int h = 0; h < hv; h++) {
            aLog[h] = (float) (rnd.nextGaussian() * 1.0);
            dtBias[h] = (float) (rnd.nextGaussian() * 2.0);
        }
        int r = hv / hk;
        ba[r] = Bf16.fromFloat(40f);   // token 0, head 0: a + dt_bias above the softplus threshold (20)
        ba[0] = Bf16.fromFloat(-30f);  // and a b far in sigmoid's tail

        int conv = proj.convDim(), zW = hv * dv;
        float[] mixed = new float[tokens * conv], z = new float[tokens * zW], b = new float[tokens * hv], a = new float[tokens * hv];
        proj.split(DeviceArrays.toFloats(qkvz), DeviceArrays.toFloats(ba), tokens, mixed, z, b, a);
        float[] beta = new float[tokens * hv], g = new float[tokens * hv];
        new GdnGating(aLog, dtBias).forward(b, a, tokens, beta, g);

        GdnSplitGatingKernel kernel = new GdnSplitGatingKernel(GpuTestSupport.kernels());
        try (DeviceBuffer dq = upload(qkvz, "qkvz"); DeviceBuffer dba = upload(ba, "ba");
             DeviceBuffer dA = DeviceArrays.upload(aLog, "A_log"); DeviceBuffer dDt = DeviceArrays.upload(dtBias, "dt_bias");
             DeviceBuffer dMixed = poisoned(tokens * conv, "mixed"); DeviceBuffer dZ = poisoned(tokens * zW, "z");
             DeviceBuffer dBeta = DeviceArrays.poisonedFloats(tokens * hv, "beta"); DeviceBuffer dG = DeviceArrays.poisonedFloats(tokens * hv, "g")) {
            kernel.launch(GpuTestSupport.stream(), splitArgs(proj, dq, dba, dA, dDt, dMixed, dZ, dBeta, dG), tokens);
            assertArrayEquals(mixed, DeviceArrays.toFloats(download(dMixed, tokens * conv)), "mixed = [q | k | v]: bit-exact permutation");
            assertArrayEquals(z, DeviceArrays.toFloats(download(dZ, tokens * zW)), "z: bit-exact permutation");
            float[] gotBeta = DeviceArrays.downloadFloats(dBeta, tokens * hv);
            float[] gotG = DeviceArrays.downloadFloats(dG, tokens * hv);
            for (int i = 0; i < tokens * hv; i++) {
                String at = "token " + i / hv + " head " + i % hv;
                assertFalse(Float.isNaN(gotBeta[i]) || Float.isNaN(gotG[i]), at + ": NaN (unwritten or broken)");
                if (Bf16.round(gotBeta[i]) != gotBeta[i]) fail(at + ": beta " + gotBeta[i] + " is not a bf16 value widened");
                if (Bf16.ulpDistance(Bf16.fromFloat(beta[i]), Bf16.fromFloat(gotBeta[i])) > 1) {
                    fail(at + ": beta " + gotBeta[i] + ", want " + beta[i]);
                }
                if (Math.abs(gotG[i] - g[i]) > 1e-5 * Math.abs(g[i]) + 1e-6) fail(at + ": g " + gotG[i] + ", want " + g[i]);
            }
        }
    }
    /**
     * The prefill GDN chain's connection: split/gating's outputs — mixed [q | k | v] bf16, β and g fp32 — go straight into
     * the chunked delta rule, which reads fp32 β. Against the CPU split, gates (β rounded to bf16 as torch holds it) and
     * {@link ChunkedDeltaRuleKernel#reference}, at the chunked path's tolerance (relative L2 1e-2).
     */
    @Test
    void splitGatingFeedsTheChunkedDeltaRuleWithFp32Beta() {
        int hk = 2, hv = 4, dk = 128, dv = 64;
        GdnProjections proj = new GdnProjections(hk, hv, dk, dv);
        GatedDeltaRule rule = new GatedDeltaRule(hk, hv, dk, dv);
        int[] cu = {0, 100, 100, 150};  // an empty entry in the middle
        int[] slots = {1, 2, 0};
        int tokens = cu[cu.length - 1], entries = slots.length;
        Random rnd = new Random(41);
        short[] qkvz = randomBf16(rnd, tokens * proj.qkvzWidth(), 1.0);
        short[] ba = randomBf16(rnd, tokens * proj.baWidth(), 2.0);
        float[] aLog = new float[hv], dtBias = new float[hv];
        for (int h = 0; h < hv; h++) {
            aLog[h] = (float) (rnd.nextGaussian() * 0.5 - 1);
            dtBias[h] = (float) (rnd.nextGaussian() * 0.5);
        }
        int conv = proj.convDim();
        float[] mixed = new float[tokens * conv], z = new float[tokens * hv * dv], b = new float[tokens * hv], a = new float[tokens * hv];
        proj.split(DeviceArrays.toFloats(qkvz), DeviceArrays.toFloats(ba), tokens, mixed, z, b, a);
        float[] beta = new float[tokens * hv], g = new float[tokens * hv];
        new GdnGating(aLog, dtBias).forward(b, a, tokens, beta, g);
        for (int i = 0; i < beta.length; i++) beta[i] = Bf16.round(beta[i]);
        short[] mixedBf16 = new short[mixed.length];
        for (int i = 0; i < mixed.length; i++) mixedBf16[i] = Bf16.fromFloat(mixed[i]);  // exact: a permutation of bf16 values
        float[] pool = new float[3 * rule.stateSize()];
        for (int i = 0; i < pool.length; i++) pool[i] = (float) (rnd.nextGaussian() * 0.3);
        float[] refPool = pool.clone();
        float[] ref = ChunkedDeltaRuleKernelReference.reference(rule, mixedBf16, beta, g, cu, slots, refPool);

        GdnSplitGatingKernel split = new GdnSplitGatingKernel(GpuTestSupport.kernels());
        StepShape shape = StepShape.prefill(tokens, entries);
        try (ChunkedDeltaRuleKernel delta = new ChunkedDeltaRuleKernel(GpuTestSupport.kernels(), ChunkedDeltaRuleKernel.Config.of(rule, tokens, entries));
             DeviceBuffer dq = upload(qkvz, "qkvz"); DeviceBuffer dba = upload(ba, "ba");
             DeviceBuffer dA = DeviceArrays.upload(aLog, "A_log"); DeviceBuffer dDt = DeviceArrays.upload(dtBias, "dt_bias");
             DeviceBuffer dMixed = poisoned(tokens * conv, "mixed"); DeviceBuffer dZ = poisoned(tokens * hv * dv, "z");
             DeviceBuffer dBeta = DeviceArrays.poisonedFloats(tokens * hv, "beta"); DeviceBuffer dG = DeviceArrays.poisonedFloats(tokens * hv, "g");
             DeviceBuffer dCu = DeviceArrays.upload(cu, "cu_seqlens"); DeviceBuffer dSlots = DeviceArrays.upload(slots, "slots");
             DeviceBuffer dPool = DeviceArrays.upload(pool, "state pool"); DeviceBuffer dOut = poisoned(tokens * hv * dv, "out")) {
            split.launch(GpuTestSupport.stream(), splitArgs(proj, dq, dba, dA, dDt, dMixed, dZ, dBeta, dG), tokens);
            assertEquals(ChunkedDeltaRuleKernel.Path.CHUNKED, delta.config().defaultPath());
            delta.launch(GpuTestSupport.stream(), shape, new ChunkedDeltaRuleKernel.Args(delta.config(),
                    Tensors.rows(dMixed, DType.BF16, conv), Tensors.rows(dBeta, DType.F32, hv), Tensors.rows(dG, DType.F32, hv),
                    Tensors.rows(dCu, DType.I32), Tensors.rows(dSlots, DType.I32), Tensors.rows(dPool, DType.F32, hv, dk, dv),
                    Tensors.rows(dOut, DType.BF16, hv * dv)));
            short[] out = download(dOut, tokens * hv * dv);
            float[] gotPool = DeviceArrays.downloadFloats(dPool, pool.length);
            double num = 0, den = 0;
            for (int i = 0; i < out.length; i++) {
                float v = Bf16.toFloat(out[i]);
                assertFalse(Float.isNaN(v), "output " + i + " NaN (unwritten, or β read in the wrong dtype)");
                num += (v - ref[i]) * (double) (v - ref[i]);
                den += ref[i] * (double) ref[i];
            }
            assertTrue(Math.sqrt(num / den) < 1e-2, "output relative L2 error " + Math.sqrt(num / den));
            num = 0;
            den = 0;
            for (int i = 0; i < pool.length; i++) {
                num += (gotPool[i] - refPool[i]) * (double) (gotPool[i] - refPool[i]);
                den += refPool[i] * (double) refPool[i];
            }
            assertTrue(Math.sqrt(num / den) < 1e-2, "final states relative L2 error " + Math.sqrt(num / den));
            int ss = rule.stateSize();
            assertArrayEquals(Arrays.copyOfRange(pool, 2 * ss, 3 * ss), Arrays.copyOfRange(gotPool, 2 * ss, 3 * ss),
                    "the empty entry's slot is untouched");
        }
    }

    static GdnSplitGatingKernel.Args splitArgs(GdnProjections proj, DeviceBuffer qkvz, DeviceBuffer ba, DeviceBuffer aLog,
                                               DeviceBuffer dtBias, DeviceBuffer mixed, DeviceBuffer z, DeviceBuffer beta,
                                               DeviceBuffer g) {
        int hv = proj.valueHeads();
        return new GdnSplitGatingKernel.Args(proj, Tensors.rows(qkvz, DType.BF16, proj.qkvzWidth()),
                Tensors.rows(ba, DType.BF16, proj.baWidth()), Tensors.of(aLog, DType.F32, hv), Tensors.of(dtBias, DType.F32, hv),
                Tensors.rows(mixed, DType.BF16, proj.convDim()), Tensors.rows(z, DType.BF16, hv * proj.valueDim()),
                Tensors.rows(beta, DType.F32, hv), Tensors.rows(g, DType.F32, hv));
    }
}
