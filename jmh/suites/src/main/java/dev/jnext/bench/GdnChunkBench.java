package dev.jnext.bench;

import dev.jnext.cuda.kernels.DeviceTensor;
import dev.jnext.cuda.kernels.DType;
import dev.jnext.gpu.CudaGraph;
import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.Stream;
import dev.jnext.cuda.kernels.ChunkedDeltaRuleKernel;
import dev.jnext.cuda.kernels.ChunkedDeltaRuleKernel.Config;
import dev.jnext.cuda.kernels.ChunkedDeltaRuleKernel.Stage;
import dev.jnext.cuda.kernels.KernelLibrary;
import dev.jnext.cuda.kernels.StepShape;
import dev.jnext.numeric.Bf16;

import static dev.jnext.bench.BenchSuite.fmt;
import static dev.jnext.bench.BenchSuite.pct;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * {@code jnext bench gdn-chunk}: the prefill gated delta rule at the 80B geometry (16 key heads, 32 value heads,
 * dk = dv = 128), one sequence of T = 4096, 16384 and 65536 tokens, state in slot 0; CUDA graph replays timed with
 * events (median). Random inputs: q, k, v ~ N(0, 1) in bf16, β ∈ (0, 1), g ∈ (−0.3, 0).
 *
 * <p>FLOPs counted per token and value head, as the chunked algorithm's dense products with C = 64:
 * K·Kᵀ and Q·Kᵀ (2·C·dk each), T·X and P·V' (2·C·dv each), K·S, Q·S and the state update (2·dk·dv each):
 * 4·C·(dk + dv) + 6·dk·dv = 163,840 → 5.24 MFLOP per token for 32 heads. Bytes: q, k once per key head, v, o,
 * β and g once: 2·(2·Hk·dk + 2·Hv·dv) + 8·Hv = 24.8 KB per token (plus the 2 MiB state, read and written once).
 * fla anchors (chunk_gated_delta_rule, Triton, H100, measured by the lead on 2026-11-27): 0.295, 1.109, 4.45 ms.
 */
public final class GdnChunkBench extends GpuBenchSuite {
    static final int HK = 16, HV = 32, D = 128;
    static final int[] TOKENS = {4096, 16384, 65536};
    static final double[] FLA_MS = {0.295, 1.109, 4.45};

    public GdnChunkBench(Gpu gpu) {
        super(gpu);
    }

    @Override
    public void runAll() {
        int maxT = TOKENS[TOKENS.length - 1];
        int width = 2 * HK * D + HV * D;
        try (Stream s = gpu.createStream(); GpuTimer timer = new GpuTimer(gpu, s); KernelLibrary lib = new KernelLibrary(gpu);
             DeviceBuffer qkv = gpu.allocate(2L * maxT * width, "bench.qkv");
             DeviceBuffer beta = gpu.allocate(4L * maxT * HV, "bench.beta");
             DeviceBuffer g = gpu.allocate(4L * maxT * HV, "bench.g");
             DeviceBuffer meta = gpu.allocate(16, "bench.cu_slots");
             DeviceBuffer pool = gpu.allocate(4L * HV * D * D, "bench.state");
             DeviceBuffer out = gpu.allocate(2L * maxT * HV * D, "bench.out");
             ChunkedDeltaRuleKernel kernel = new ChunkedDeltaRuleKernel(lib, new Config(HK, HV, D, D, maxT, 1))) {
            fillRandom(qkv, beta, g, pool, maxT, width);
            for (int i = 0; i < TOKENS.length; i++) {
                int t = TOKENS[i];
                try (Arena a = Arena.ofConfined()) {   // cu_seqlens = {0, T}, slots = {0}
                    meta.copyFromHost(a.allocateFrom(ValueLayout.JAVA_INT, 0, t, 0, 0));
                }
                StepShape shape = StepShape.prefill(t, 1);
                ChunkedDeltaRuleKernel.Args args = new ChunkedDeltaRuleKernel.Args(kernel.config(),
                        DeviceTensor.of(qkv, DType.BF16, maxT, width), DeviceTensor.of(beta, DType.F32, maxT, HV),
                        DeviceTensor.of(g, DType.F32, maxT, HV), DeviceTensor.of(meta, 0, "cu_seqlens", DType.I32, 2),
                        DeviceTensor.of(meta, 8, "slots", DType.I32, 1), DeviceTensor.of(pool, DType.F32, 1, HV, D, D),
                        DeviceTensor.of(out, DType.BF16, maxT, HV * D));
                try (CudaGraph graph = CudaGraph.capture(s, st -> kernel.launch(st, shape, args))) {
                    graph.upload(s);
                    int reps = t >= 65536 ? 10 : 30;
                    double ms = timer.medianMillis(() -> graph.replay(s), 3, reps);
                    record(t, ms, FLA_MS[i]);
                    for (Stage stage : Stage.values()) {   // each pass alone, eager (diagnostics)
                        double sm = timer.medianMillis(() -> kernel.launchStage(stage, s, shape, args), 2, reps);
                        numbers.put("gdn_chunk_T" + t + "_" + stage.name().toLowerCase(Locale.ROOT) + "_ms", sm);
                        rows.add(new Row("  " + stage.name().toLowerCase(Locale.ROOT) + " pass alone (eager)",
                                "T=" + t, sm * 1e3, fmt("%.0f%% of the total", 100 * sm / ms), "", ""));
                    }
                }
            }
        }
    }

    private void record(int t, double ms, double flaMs) {
        double mtoks = t / ms / 1e3;
        double flops = (4.0 * 64 * (D + D) + 6.0 * D * D) * HV * t;
        double tflops = flops / ms / 1e9;
        double bytes = (2.0 * (2 * HK * D + 2 * HV * D) + 8.0 * HV) * t + 2.0 * 4 * HV * D * D;
        double tbps = bytes / ms / 1e9;
        String key = "gdn_chunk_T" + t;
        numbers.put(key + "_ms", ms);
        numbers.put(key + "_Mtok_s", mtoks);
        numbers.put(key + "_TFLOPs", tflops);
        numbers.put(key + "_TBps", tbps);
        numbers.put(key + "_vs_fla", flaMs / ms);
        rows.add(new Row("GDN chunked prefill (graph)", "T=" + t + " Hv=32 d=128", ms * 1e3,
                fmt("%.1f M tok/s, %.0f TFLOP/s, %.2f TB/s", mtoks, tflops, tbps), "",
                fmt("fla %.3f ms (%.1f M tok/s): %.2fx", flaMs, t / flaMs / 1e3, flaMs / ms)));
    }

    /** Random inputs; qkv repeats a 16 MiB random block (the values matter, not their period). */
    private void fillRandom(DeviceBuffer qkv, DeviceBuffer beta, DeviceBuffer g, DeviceBuffer pool, int tokens, int width) {
        SplittableRandom rnd = new SplittableRandom(2026);
        try (Arena a = Arena.ofConfined()) {
            long total = 2L * tokens * width, block = Math.min(total, 16L << 20);
            MemorySegment h = a.allocate(block);
            for (long i = 0; i < block / 2; i++) h.setAtIndex(ValueLayout.JAVA_SHORT, i, Bf16.fromFloat((float) gaussian(rnd)));
            for (long off = 0; off < total; off += block) qkv.copyFromHost(h.asSlice(0, Math.min(block, total - off)), off);
            long m = (long) tokens * HV;
            MemorySegment b = a.allocate(4L * m), gg = a.allocate(4L * m);
            for (long i = 0; i < m; i++) {
                b.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) (0.05 + 0.95 * rnd.nextDouble()));
                gg.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) (-0.3 * rnd.nextDouble()));
            }
            beta.copyFromHost(b);
            g.copyFromHost(gg);
            MemorySegment st = a.allocate(4L * HV * D * D);
            for (long i = 0; i < (long) HV * D * D; i++) st.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) (0.1 * gaussian(rnd)));
            pool.copyFromHost(st);
        }
    }

    private static double gaussian(SplittableRandom r) {   // Box–Muller, enough for benchmark inputs
        return Math.sqrt(-2 * Math.log(1 - r.nextDouble())) * Math.cos(2 * Math.PI * r.nextDouble());
    }

}
