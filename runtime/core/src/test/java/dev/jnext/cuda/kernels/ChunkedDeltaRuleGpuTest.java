package dev.jnext.cuda.kernels;

import dev.jnext.gpu.CudaGraph;
import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.GpuTestSupport;
import dev.jnext.gpu.Stream;
import dev.jnext.cuda.kernels.ChunkedDeltaRuleKernel.Config;
import dev.jnext.cuda.kernels.ChunkedDeltaRuleKernel.Path;
import dev.jnext.numeric.Bf16;
import dev.jnext.cpu.ops.GatedDeltaRule;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The prefill gated delta rule on the GPU against {@link GatedDeltaRule#recurrent} (fp32 CPU) on the same bf16
 * inputs: a batch of sequences of lengths 1, 63, 64, 65, 200 and 1000 around chunk boundaries plus a padding
 * sequence (slot −1) in the middle, random non-zero initial states in shuffled slots, outputs poisoned with NaN,
 * trailing rows past the last sequence that must come out zero.
 *
 * <p>Tolerances, as relative L2 error per (sequence, value head):
 * <ul>
 *   <li>chunked path, 1e-2 on outputs and final states: the tensor-core operands are bf16 (relative rounding
 *       2⁻⁹ ≈ 2e-3 on the state in K·S and Q·S, on V'·decay in the update and on the chunk matrices T and P, as in
 *       fla; X and V' enter their products as bf16 hi + lo), errors
 *       of independent roundings add in quadrature to a few 1e-3; the output adds its own bf16 rounding (≈ 1e-3).
 *   <li>recurrent path, 4e-3 on outputs (fp32 arithmetic in another order, then one bf16 rounding: at most 2⁻⁹
 *       relative per element) and 1e-4 on states (fp32 only).
 * </ul>
 */
@Tag("gpu")
class ChunkedDeltaRuleGpuTest {
    private static final int[] LENGTHS = {1, 63, 64, 65, 37, 200, 1000};
    private static final int[] SLOTS = {3, 0, 5, 2, -1, 1, 4};
    private static final int POOL_SLOTS = 7;   // slot 6 belongs to nobody and must stay bit-identical
    private static final int TRAILING_ROWS = 5;

    /** Random inputs of one batch. */
    record Batch(GatedDeltaRule rule, int tokens, int[] cu, short[] qkv, float[] beta, float[] g, float[] pool) {
        static Batch random(GatedDeltaRule rule, long seed) {
            Random rnd = new Random(seed);
            int[] cu = new int[LENGTHS.length + 1];
            for (int b = 0; b < LENGTHS.length; b++) cu[b + 1] = cu[b] + LENGTHS[b];
            int tokens = cu[LENGTHS.length] + TRAILING_ROWS;
            int width = 2 * rule.keyHeads() * rule.keyDim() + rule.valueHeads() * rule.valueDim();
            short[] qkv = GpuTestSupport.randomBf16(rnd, tokens * width, 1.0);
            float[] beta = new float[tokens * rule.valueHeads()];
            float[] g = new float[beta.length];
            for (int i = 0; i < beta.length; i++) {
                beta[i] = 0.05f + 0.95f * rnd.nextFloat();
                g[i] = i % 97 == 0 ? -8f * rnd.nextFloat() : -0.3f * rnd.nextFloat();   // mostly mild decay, some strong
            }
            float[] pool = new float[POOL_SLOTS * rule.stateSize()];
            for (int i = 0; i < pool.length; i++) pool[i] = (float) (rnd.nextGaussian() * 0.3);
            return new Batch(rule, tokens, cu, qkv, beta, g, pool);
        }
    }

    /** The device side of a batch; out is poisoned with NaN, the pool holds the initial states. */
    static final class DeviceBatch implements AutoCloseable {
        final Batch batch;
        final DeviceBuffer qkv, beta, g, cu, slots, pool, out;

        DeviceBatch(Batch b) {
            this.batch = b;
            qkv = GpuTestSupport.upload(b.qkv, "qkv");
            beta = uploadFloats(b.beta, "beta");
            g = uploadFloats(b.g, "g");
            cu = uploadInts(b.cu, "cu_seqlens");
            slots = uploadInts(SLOTS, "slots");
            pool = uploadFloats(b.pool, "state pool");
            out = GpuTestSupport.poisoned(outSize(), "out");
        }

        int outSize() {
            return batch.tokens * batch.rule.valueHeads() * batch.rule.valueDim();
        }

        void reset() {
            copyFloats(batch.pool, pool);
            out.fill16((short) 0xffff, GpuTestSupport.stream());
        }

        void launch(ChunkedDeltaRuleKernel k, Stream s, Path path) {
            k.launch(s, StepShape.prefill(batch.tokens, LENGTHS.length), args(k.config()), path);
        }

        ChunkedDeltaRuleKernel.Args args(ChunkedDeltaRuleKernel.Config c) {
            int hv = c.valueHeads();
            return new ChunkedDeltaRuleKernel.Args(c, Tensors.rows(qkv, DType.BF16, c.qkvWidth()), Tensors.rows(beta, DType.F32, hv),
                    Tensors.rows(g, DType.F32, hv), Tensors.rows(cu, DType.I32), Tensors.rows(slots, DType.I32),
                    Tensors.rows(pool, DType.F32, hv, c.keyDim(), c.valueDim()), Tensors.rows(out, DType.BF16, hv * c.valueDim()));
        }

        short[] out() {
            return GpuTestSupport.download(out, outSize());
        }

        float[] pool() {
            GpuTestSupport.stream().synchronize();
            try (Arena a = Arena.ofConfined()) {
                MemorySegment host = a.allocate(4L * batch.pool.length);
                pool.copyToHost(host);
                return host.toArray(ValueLayout.JAVA_FLOAT);
            }
        }

        @Override
        public void close() {
            for (DeviceBuffer d : new DeviceBuffer[] {qkv, beta, g, cu, slots, pool, out}) d.close();
        }
    }

    @ParameterizedTest(name = "Hk={0} Hv={1} dk={2} dv={3}")
    @CsvSource({"2, 4, 128, 128", "1, 4, 128, 64", "3, 3, 128, 32"})
    void chunkedMatchesTheRecurrentReference(int hk, int hv, int dk, int dv) {
        check(new GatedDeltaRule(hk, hv, dk, dv), Path.CHUNKED, 1e-2, 1e-2);
    }

    @ParameterizedTest(name = "Hk={0} Hv={1} dk={2} dv={3}")
    @CsvSource({"2, 4, 16, 24", "1, 2, 48, 40", "2, 4, 128, 128"})
    void recurrentMatchesTheReference(int hk, int hv, int dk, int dv) {
        check(new GatedDeltaRule(hk, hv, dk, dv), Path.RECURRENT, 4e-3, 1e-4);
    }

    private void check(GatedDeltaRule rule, Path path, double outTol, double stateTol) {
        Batch b = Batch.random(rule, 31L * rule.valueDim() + rule.keyDim() + path.ordinal());
        Stream s = GpuTestSupport.stream();
        Config cfg = Config.of(rule, b.tokens + 100, LENGTHS.length + 2);
        try (ChunkedDeltaRuleKernel k = new ChunkedDeltaRuleKernel(GpuTestSupport.kernels(), cfg); DeviceBatch d = new DeviceBatch(b)) {
            d.launch(k, s, path);
            short[] out = d.out();
            float[] pool = d.pool();
            float[] refPool = b.pool.clone();
            float[] ref = ChunkedDeltaRuleKernelReference.reference(rule, b.qkv, b.beta, b.g, b.cu, SLOTS, refPool);
            int hv = rule.valueHeads(), dv = rule.valueDim();
            for (int seq = 0; seq < LENGTHS.length; seq++) {
                for (int h = 0; h < hv; h++) {
                    String what = path + " sequence " + seq + " (length " + LENGTHS[seq] + ") head " + h;
                    double[] num = new double[2];
                    for (int t = b.cu[seq]; t < b.cu[seq + 1]; t++) {
                        for (int j = 0; j < dv; j++) {
                            int i = (t * hv + h) * dv + j;
                            float got = Bf16.toFloat(out[i]);
                            assertFalse(Float.isNaN(got), what + ": NaN at token " + t + " column " + j);
                            if (SLOTS[seq] < 0) {
                                assertEquals(0f, got, what + ": padding sequence output must be zero");
                            } else {
                                num[0] += (got - ref[i]) * (double) (got - ref[i]);
                                num[1] += ref[i] * (double) ref[i];
                            }
                        }
                    }
                    if (SLOTS[seq] >= 0) assertRelL2(num, outTol, what + " output");
                }
            }
            for (int i = b.cu[LENGTHS.length] * hv * dv; i < out.length; i++) {
                assertEquals((short) 0, out[i], path + ": rows past the last sequence must be zero");
            }
            int ss = rule.stateSize();
            for (int slot = 0; slot < POOL_SLOTS; slot++) {
                int sl = slot;
                boolean used = Arrays.stream(SLOTS).anyMatch(x -> x == sl);
                for (int h = 0; h < hv; h++) {
                    int from = slot * ss + h * rule.keyDim() * dv, to = from + rule.keyDim() * dv;
                    if (!used) {
                        assertArrayEquals(Arrays.copyOfRange(b.pool, from, to), Arrays.copyOfRange(pool, from, to),
                                path + ": slot " + slot + " belongs to no sequence and must stay untouched");
                        continue;
                    }
                    double[] num = new double[2];
                    for (int i = from; i < to; i++) {
                        assertFalse(Float.isNaN(pool[i]), path + ": NaN in the final state of slot " + slot);
                        num[0] += (pool[i] - refPool[i]) * (double) (pool[i] - refPool[i]);
                        num[1] += refPool[i] * (double) refPool[i];
                    }
                    assertRelL2(num, stateTol, path + " final state of slot " + slot + " head " + h);
                }
            }
            System.out.printf("%s %s: worst relative L2 error %.2e%n", path, rule, worst);
        }
    }

    /** Same inputs, same bits: eager twice and a captured graph replayed agree exactly (no timing-dependent order). */
    @Test
    void chunkedIsDeterministicAndGraphReplayEqualsEager() {
        GatedDeltaRule rule = new GatedDeltaRule(2, 4, 128, 64);
        Batch b = Batch.random(rule, 99);
        Stream s = GpuTestSupport.stream();
        try (ChunkedDeltaRuleKernel k = new ChunkedDeltaRuleKernel(GpuTestSupport.kernels(), Config.of(rule, b.tokens, LENGTHS.length));
             DeviceBatch d = new DeviceBatch(b)) {
            d.launch(k, s, Path.CHUNKED);
            short[] out1 = d.out();
            float[] pool1 = d.pool();
            d.reset();
            d.launch(k, s, Path.CHUNKED);
            assertArrayEquals(out1, d.out(), "eager run 2 output");
            assertArrayEquals(pool1, d.pool(), "eager run 2 state");
            try (CudaGraph graph = CudaGraph.capture(s, st -> d.launch(k, st, Path.CHUNKED))) {
                for (int rep = 0; rep < 3; rep++) {
                    d.reset();
                    graph.replay(s);
                    assertArrayEquals(out1, d.out(), "graph replay " + rep + " output");
                    assertArrayEquals(pool1, d.pool(), "graph replay " + rep + " state");
                }
            }
        }
    }

    private double worst;

    private void assertRelL2(double[] num, double tol, String what) {
        assertTrue(num[1] > 0, what + ": reference is all zeros");
        double rel = Math.sqrt(num[0] / num[1]);
        worst = Math.max(worst, rel);
        assertTrue(rel <= tol, what + ": relative L2 error " + rel + " > " + tol);
    }

    static DeviceBuffer uploadFloats(float[] data, String label) {
        DeviceBuffer d = GpuTestSupport.gpu().allocate(4L * data.length, label);
        copyFloats(data, d);
        return d;
    }

    static void copyFloats(float[] data, DeviceBuffer d) {
        try (Arena a = Arena.ofConfined()) {
            d.copyFromHost(a.allocateFrom(ValueLayout.JAVA_FLOAT, data));
        }
    }

    static DeviceBuffer uploadInts(int[] data, String label) {
        DeviceBuffer d = GpuTestSupport.gpu().allocate(4L * data.length, label);
        try (Arena a = Arena.ofConfined()) {
            d.copyFromHost(a.allocateFrom(ValueLayout.JAVA_INT, data));
        }
        return d;
    }
}
