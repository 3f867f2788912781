package dev.jnext.kernels;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.GpuTestSupport;
import dev.jnext.numeric.Bf16;
import dev.jnext.ops.GdnGating;
import dev.jnext.ops.GdnProjections;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Random;

import static dev.jnext.gpu.GpuTestSupport.download;
import static dev.jnext.gpu.GpuTestSupport.poisoned;
import static dev.jnext.gpu.GpuTestSupport.randomBf16;
import static dev.jnext.gpu.GpuTestSupport.upload;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
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
            kernel.launch(GpuTestSupport.stream(), proj, dq.address(), dba.address(), dA.address(), dDt.address(),
                    dMixed.address(), dZ.address(), dBeta.address(), dG.address(), tokens);
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
}
