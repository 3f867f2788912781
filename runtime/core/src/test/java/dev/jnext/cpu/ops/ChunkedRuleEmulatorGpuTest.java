package dev.jnext.cpu.ops;

import dev.jnext.cuda.kernels.Tensors;
import dev.jnext.cuda.kernels.DType;
import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.GpuTestSupport;
import dev.jnext.gpu.Stream;
import dev.jnext.cuda.kernels.ChunkedDeltaRuleKernel;
import dev.jnext.cuda.kernels.DeviceArrays;
import dev.jnext.cuda.kernels.StepShape;
import dev.jnext.numeric.Bf16;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static dev.jnext.cpu.ops.ChunkedRuleEmulator.*;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 16 on the GPU: the chunked kernel against its CPU emulation ({@link ChunkedRuleEmulator}) and against fla's
 * emulated roundings, on the emulator's inputs (one key and one value head, dk = dv = 128, state from zero). If the
 * kernel does what its source says, it sits on its emulation (up to the order of fp32 accumulation inside the tensor
 * cores), far closer than either sits to the fp64 truth; and its error to the truth is then below fla's. A kernel
 * that is further from its emulation than that is not computing what the .cu is read to compute — the first thing to
 * look at if the model-level gap of issue 16 persists.
 */
@Tag("gpu")
class ChunkedRuleEmulatorGpuTest {
    /** The rounding sites of the kernel in this tree: X and V' split into bf16 hi + lo (issue 16's fix). */
    static final Mode[] KERNEL = fixed();

    @ParameterizedTest(name = "{0} T={1}")
    @CsvSource({"SLOW, 17", "SLOW, 130", "SLOW, 520", "MEDIUM, 520", "FAST, 520", "REPEAT, 520", "LONG, 520", "SMALLBETA, 520",
            "SLOW, 4096"})
    void theKernelIsItsEmulation(String profile, int len) throws Exception {
        Profile p = (Profile) ChunkedRuleEmulator.class.getDeclaredField(profile).get(null);
        Input in = synth(p, len, 1);
        Chunk[] truth = truth(in);
        double[] to = outputs(truth, len), ts = truth[truth.length - 1].sAfter;
        double[][] emu = run(in, jnextVariant(KERNEL)), fla = run(in, flaVariant(Fla.SHIPPED));
        double[][] gpu = gpu(in);
        double eo = rel(emu[0], to), es = rel(emu[1], ts), fo = rel(fla[0], to), fs = rel(fla[1], ts);
        double go = rel(gpu[0], to), gs = rel(gpu[1], ts), geo = rel(gpu[0], emu[0]), ges = rel(gpu[1], emu[1]);
        System.out.printf("%s T=%d: output vs truth gpu %.2e emulated %.2e fla-emulated %.2e, gpu vs emulated %.2e; "
                + "final state vs truth gpu %.2e emulated %.2e fla-emulated %.2e, gpu vs emulated %.2e%n",
                p.name(), len, go, eo, fo, geo, gs, es, fs, ges);
        assertTrue(geo < 0.3 * eo, p.name() + ": the kernel's output is " + geo + " from its emulation, which is " + eo + " from the truth");
        assertTrue(ges < 0.3 * es, p.name() + ": the kernel's final state is " + ges + " from its emulation (" + es + " from the truth)");
        assertTrue(go < 0.9 * fo, p.name() + ": output error " + go + " vs fla's emulated " + fo);
        assertTrue(gs < 0.8 * fs, p.name() + ": final-state error " + gs + " vs fla's emulated " + fs);
    }

    static double[] outputs(Chunk[] cs, int len) {
        double[] o = new double[len * D];
        for (int c = 0; c < cs.length; c++) System.arraycopy(cs[c].oOut, 0, o, c * C * D, cs[c].n * D);
        return o;
    }

    /** {outputs as stored, final state} of a variant over the whole input from state 0. */
    static double[][] run(Input in, Variant v) {
        float[] s = new float[D * D];
        double[] o = new double[in.len() * D];
        for (int t0 = 0; t0 < in.len(); t0 += C) {
            Chunk c = v.chunk(in, t0, Math.min(C, in.len() - t0), s);
            System.arraycopy(c.oOut, 0, o, t0 * D, c.n * D);
        }
        return new double[][] {o, d(s)};
    }

    /** {outputs, final state} of ChunkedDeltaRuleKernel (Hk = Hv = 1) on the same inputs. */
    static double[][] gpu(Input in) {
        int len = in.len(), w = 3 * D;
        short[] qkv = new short[len * w];
        for (int t = 0; t < len; t++)
            for (int x = 0; x < D; x++) {
                qkv[t * w + x] = Bf16.fromFloat(in.q()[t * D + x]);
                qkv[t * w + D + x] = Bf16.fromFloat(in.k()[t * D + x]);
                qkv[t * w + 2 * D + x] = Bf16.fromFloat(in.v()[t * D + x]);
            }
        Stream s = GpuTestSupport.stream();
        ChunkedDeltaRuleKernel.Config cfg = new ChunkedDeltaRuleKernel.Config(1, 1, D, D, len, 1);
        try (ChunkedDeltaRuleKernel k = new ChunkedDeltaRuleKernel(GpuTestSupport.kernels(), cfg);
             DeviceBuffer dq = GpuTestSupport.upload(qkv, "qkv"); DeviceBuffer db = DeviceArrays.upload(in.beta(), "beta");
             DeviceBuffer dg = DeviceArrays.upload(in.g(), "g"); DeviceBuffer cu = DeviceArrays.upload(new int[] {0, len}, "cu");
             DeviceBuffer sl = DeviceArrays.upload(new int[] {0}, "slots"); DeviceBuffer pool = DeviceArrays.upload(new float[D * D], "pool");
             DeviceBuffer out = GpuTestSupport.poisoned(len * D, "out")) {
            k.launch(s, StepShape.prefill(len, 1), new ChunkedDeltaRuleKernel.Args(cfg, Tensors.rows(dq, DType.BF16, cfg.qkvWidth()),
                    Tensors.rows(db, DType.F32, 1), Tensors.rows(dg, DType.F32, 1), Tensors.rows(cu, DType.I32),
                    Tensors.rows(sl, DType.I32), Tensors.rows(pool, DType.F32, 1, D, D), Tensors.rows(out, DType.BF16, D)),
                    ChunkedDeltaRuleKernel.Path.CHUNKED);
            short[] o = GpuTestSupport.download(out, len * D);
            double[] od = new double[o.length];
            for (int i = 0; i < o.length; i++) od[i] = Bf16.toFloat(o[i]);
            s.synchronize();
            try (Arena a = Arena.ofConfined()) {
                MemorySegment host = a.allocate(4L * D * D);
                pool.copyToHost(host);
                return new double[][] {od, d(host.toArray(ValueLayout.JAVA_FLOAT))};
            }
        }
    }

    static double rel(double[] x, double[] t) {
        double n = 0, dd = 0;
        for (int i = 0; i < t.length; i++) {
            n += (x[i] - t[i]) * (x[i] - t[i]);
            dd += t[i] * t[i];
        }
        return Math.sqrt(n / dd);
    }
}
