package dev.jnext.bench;

import dev.jnext.cuda.kernels.DeviceTensor;
import dev.jnext.cuda.kernels.DType;
import dev.jnext.gpu.CudaGraph;
import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.Stream;
import dev.jnext.cuda.kernels.CausalConv1dKernel;
import dev.jnext.cuda.kernels.GatedDeltaRuleDecodeKernel;
import dev.jnext.cuda.kernels.GatedDeltaRuleDecodeKernel.Gates;
import dev.jnext.cuda.kernels.GdnSplitGatingKernel;
import dev.jnext.cuda.kernels.KernelLibrary;
import dev.jnext.cuda.kernels.StepShape;
import dev.jnext.numeric.Bf16;
import dev.jnext.cpu.ops.GatedDeltaRule;
import dev.jnext.model.GdnProjections;

import static dev.jnext.bench.BenchSuite.fmt;
import static dev.jnext.bench.BenchSuite.pct;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.function.IntConsumer;

/**
 * {@code jnext bench gdn-decode}: the Gated DeltaNet kernels around the chunked rule, at the 80B geometry
 * (Hk 16, Hv 32, dk = dv = 128, conv_dim 8192, K = 4), timed as captured graphs of back-to-back launches (GPU time per
 * launch, median of many replays), each launch on its own set of buffers so that the working set exceeds L2.
 *
 * <p>Bytes counted (the fewest a launch must move):
 * <ul>
 *   <li>recurrent rule: the fp32 state read and written, 2·B·Hv·dk·dv·4 (what the fla anchor counts); q/k/v, gates and
 *       the output add 1.3% at B = 64 and are left out;</li>
 *   <li>conv prefill/update: x read and out written (bf16), each sequence's K−1 state columns read and written, weights;</li>
 *   <li>split/gating: qkvz and ba read, mixed, z, beta (bf16) and g (fp32) written.</li>
 * </ul>
 * The copy ceiling is a 1 GiB device-to-device copy in the same run. fla anchors: H100, 2026-11-27 run (KERNELS handoff).
 */
public final class GdnBench extends GpuBenchSuite {
    private static final GatedDeltaRule RULE = new GatedDeltaRule(16, 32, 128, 128);
    private static final GdnProjections PROJ = new GdnProjections(16, 32, 128, 128);
    private static final int CONV = 8192, WIDTH = 4;
    /** Minimum bytes touched across the rotating sets of one timed graph (4× the 50 MB L2 of an H100). */
    private static final long ROTATE_BYTES = 200L << 20;
    private static final Map<Integer, Double> FLA_RECURRENT_US = Map.of(1, 19.6, 32, 66.6, 64, 120.4);

    public GdnBench(Gpu gpu) {
        super(gpu);
    }

    @Override
    public void runAll() {
        try (Stream s = gpu.createStream(); GpuTimer timer = new GpuTimer(gpu, s); KernelLibrary lib = new KernelLibrary(gpu)) {
            measureCopyCeiling(s, timer);
            GatedDeltaRuleDecodeKernel rule = new GatedDeltaRuleDecodeKernel(lib);
            for (int b : new int[] {1, 32, 64, 128}) recurrent(s, timer, rule, b, false);
            recurrent(s, timer, rule, 64, true);
            CausalConv1dKernel conv = new CausalConv1dKernel(lib);
            convPrefill(s, timer, conv, 4096, 4);
            convPrefill(s, timer, conv, 16384, 1);
            convUpdate(s, timer, conv, 1);
            convUpdate(s, timer, conv, 64);
            GdnSplitGatingKernel split = new GdnSplitGatingKernel(lib);
            split(s, timer, split, 64);
            split(s, timer, split, 4096);
        }
    }

    /** Decode step at batch b over a pool of sets·b slots; set i uses slots [i·b, (i+1)·b). */
    private void recurrent(Stream s, GpuTimer timer, GatedDeltaRuleDecodeKernel k, int b, boolean fused) {
        long stateBytes = GatedDeltaRuleDecodeKernel.stateBytes(RULE, b);
        int sets = sets(stateBytes);
        int conv = PROJ.convDim(), hv = RULE.valueHeads();
        Random rnd = new Random(b);
        try (DeviceBuffer pool = randomFloats(rnd, (long) sets * b * RULE.stateSize(), 0.1, "state pool");
             DeviceBuffer qkv = randomBf16(rnd, (long) b * conv, 1, "qkv");
             DeviceBuffer beta = randomFloats(rnd, (long) b * hv, 0.3, "beta");
             DeviceBuffer g = randomFloats(rnd, (long) b * hv, 0.1, "g");
             DeviceBuffer ba = randomBf16(rnd, 2L * b * hv, 1, "ba");
             DeviceBuffer aLog = randomFloats(rnd, hv, 0.5, "A_log");
             DeviceBuffer dt = randomFloats(rnd, hv, 0.5, "dt_bias");
             DeviceBuffer out = gpu.allocate(2L * b * RULE.valueHeads() * RULE.valueDim(), "out");
             DeviceBuffer slots = ints(sets * b, "slots")) {
            Gates gates = fused ? new Gates.Fused(DeviceTensor.of(ba, DType.BF16, b, 2 * hv), DeviceTensor.of(aLog, DType.F32, hv),
                    DeviceTensor.of(dt, DType.F32, hv))
                    : new Gates.Precomputed(DeviceTensor.of(beta, DType.F32, b, hv), DeviceTensor.of(g, DType.F32, b, hv));
            StepShape step = StepShape.decode(b);
            DeviceTensor poolT = DeviceTensor.of(pool, DType.F32, sets * b, hv, RULE.keyDim(), RULE.valueDim());
            DeviceTensor qkvT = DeviceTensor.of(qkv, DType.BF16, b, conv), outT = DeviceTensor.of(out, DType.BF16, b, hv * RULE.valueDim());
            double us = perLaunchMicros(s, timer, sets, i -> k.launch(s, step, new GatedDeltaRuleDecodeKernel.Args(RULE, qkvT, gates, poolT,
                    DeviceTensor.of(slots, 4L * i * b, "slots" + i, DType.I32, b), outT)));
            double tbps = stateBytes / us / 1e6;
            String key = "gdn_recurrent_B" + b + (fused ? "_fused" : "");
            numbers.put(key + "_us", us);
            numbers.put(key + "_state_TBps", tbps);
            Double fla = FLA_RECURRENT_US.get(b);
            String note = fused ? "gating fused (raw in_proj_ba)" : "";
            if (fla != null && !fused) {
                numbers.put(key + "_vs_fla", fla / us);
                note = fmt("fla %.1f us (H100 anchor run): %.2fx", fla, fla / us);
            }
            if (b == 64) note += (note.isEmpty() ? "" : "; ") + "target >= 2.6 TB/s";
            rows.add(new Row("recurrent delta rule" + (fused ? " +gating" : ""), "B=" + b + " Hv=32 128x128", us,
                    fmt("%.2f TB/s state", tbps), pct(tbps / copyTBps), note));
        }
    }

    private void convPrefill(Stream s, GpuTimer timer, CausalConv1dKernel k, int tokens, int seqs) {
        long bytes = CausalConv1dKernel.prefillBytes(tokens, seqs, CONV, WIDTH);
        int sets = sets(bytes);
        Random rnd = new Random(tokens);
        int[] cu = new int[seqs + 1];
        for (int i = 0; i <= seqs; i++) cu[i] = (int) ((long) tokens * i / seqs);
        try (DeviceBuffer x = randomBf16(rnd, (long) sets * tokens * CONV, 1, "x");
             DeviceBuffer out = gpu.allocate(2L * sets * tokens * CONV, "out");
             DeviceBuffer w = randomBf16(rnd, (long) CONV * WIDTH, 0.5, "w");
             DeviceBuffer pool = randomBf16(rnd, (long) sets * seqs * CONV * (WIDTH - 1), 1, "conv state");
             DeviceBuffer dCu = upload(cu, "cu_seqlens"); DeviceBuffer slots = ints(sets * seqs, "slots")) {
            StepShape shape = StepShape.prefill(tokens, seqs);
            DeviceTensor wT = DeviceTensor.of(w, DType.BF16, CONV, WIDTH);
            DeviceTensor poolT = DeviceTensor.of(pool, DType.BF16, sets * seqs, CONV, WIDTH - 1);
            double us = perLaunchMicros(s, timer, sets, i -> k.launchPrefill(s, shape, new CausalConv1dKernel.PrefillArgs(
                    DeviceTensor.of(x, 2L * i * tokens * CONV, "x" + i, DType.BF16, tokens, CONV), wT, poolT,
                    DeviceTensor.of(dCu, DType.I32, seqs + 1), DeviceTensor.of(slots, 4L * i * seqs, "slots" + i, DType.I32, seqs),
                    DeviceTensor.of(out, 2L * i * tokens * CONV, "out" + i, DType.BF16, tokens, CONV))));
            report("conv1d+SiLU prefill", "T=" + tokens + " (" + seqs + " seq) C=8192 K=4", "conv_prefill_T" + tokens, us, bytes, "target >= 80% of copy");
        }
    }

    private void convUpdate(Stream s, GpuTimer timer, CausalConv1dKernel k, int b) {
        long bytes = CausalConv1dKernel.updateBytes(b, CONV, WIDTH);
        int sets = sets(bytes);
        Random rnd = new Random(b);
        try (DeviceBuffer x = randomBf16(rnd, (long) sets * b * CONV, 1, "x");
             DeviceBuffer out = gpu.allocate(2L * sets * b * CONV, "out");
             DeviceBuffer w = randomBf16(rnd, (long) CONV * WIDTH, 0.5, "w");
             DeviceBuffer pool = randomBf16(rnd, (long) sets * b * CONV * (WIDTH - 1), 1, "conv state");
             DeviceBuffer slots = ints(sets * b, "slots")) {
            StepShape shape = StepShape.decode(b);
            DeviceTensor wT = DeviceTensor.of(w, DType.BF16, CONV, WIDTH);
            DeviceTensor poolT = DeviceTensor.of(pool, DType.BF16, sets * b, CONV, WIDTH - 1);
            double us = perLaunchMicros(s, timer, sets, i -> k.launchUpdate(s, shape, new CausalConv1dKernel.UpdateArgs(
                    DeviceTensor.of(x, 2L * i * b * CONV, "x" + i, DType.BF16, b, CONV), wT, poolT,
                    DeviceTensor.of(slots, 4L * i * b, "slots" + i, DType.I32, b),
                    DeviceTensor.of(out, 2L * i * b * CONV, "out" + i, DType.BF16, b, CONV))));
            report("conv1d+SiLU decode update", "B=" + b + " C=8192 K=4", "conv_update_B" + b, us, bytes, "target >= 80% of copy");
        }
    }

    private void split(Stream s, GpuTimer timer, GdnSplitGatingKernel k, int tokens) {
        long bytes = GdnSplitGatingKernel.bytes(PROJ, tokens);
        int sets = sets(bytes);
        Random rnd = new Random(tokens);
        long q = (long) tokens * PROJ.qkvzWidth(), m = (long) tokens * PROJ.convDim(), z = (long) tokens * 4096, h = (long) tokens * 32;
        try (DeviceBuffer qkvz = randomBf16(rnd, sets * q, 1, "qkvz"); DeviceBuffer ba = randomBf16(rnd, sets * 2 * h, 1, "ba");
             DeviceBuffer aLog = randomFloats(rnd, 32, 0.5, "A_log"); DeviceBuffer dt = randomFloats(rnd, 32, 0.5, "dt_bias");
             DeviceBuffer mixed = gpu.allocate(2 * sets * m, "mixed"); DeviceBuffer zb = gpu.allocate(2 * sets * z, "z");
             DeviceBuffer beta = gpu.allocate(4 * sets * h, "beta"); DeviceBuffer g = gpu.allocate(4 * sets * h, "g")) {
            int hv = PROJ.valueHeads();
            double us = perLaunchMicros(s, timer, sets, i -> k.launch(s, new GdnSplitGatingKernel.Args(PROJ,
                    DeviceTensor.of(qkvz, 2 * i * q, "qkvz" + i, DType.BF16, tokens, PROJ.qkvzWidth()),
                    DeviceTensor.of(ba, 4 * i * h, "ba" + i, DType.BF16, tokens, PROJ.baWidth()), DeviceTensor.of(aLog, DType.F32, hv),
                    DeviceTensor.of(dt, DType.F32, hv), DeviceTensor.of(mixed, 2 * i * m, "mixed" + i, DType.BF16, tokens, PROJ.convDim()),
                    DeviceTensor.of(zb, 2 * i * z, "z" + i, DType.BF16, tokens, 4096),
                    DeviceTensor.of(beta, 4 * i * h, "beta" + i, DType.F32, tokens, hv),
                    DeviceTensor.of(g, 4 * i * h, "g" + i, DType.F32, tokens, hv)), tokens));
            report("GDN split + gating", "T=" + tokens + " (qkvz 12288, ba 64)", "gdn_split_T" + tokens, us, bytes, "");
        }
    }

    private void report(String name, String shape, String key, double us, long bytes, String note) {
        double tbps = bytes / us / 1e6;
        numbers.put(key + "_us", us);
        numbers.put(key + "_TBps", tbps);
        rows.add(new Row(name, shape, us, fmt("%.2f TB/s", tbps), pct(tbps / copyTBps), note));
    }

    /** Sets of buffers so that one timed graph touches at least {@link #ROTATE_BYTES}; at most 64. */
    private static int sets(long bytesPerLaunch) {
        return (int) Math.max(1, Math.min(64, (ROTATE_BYTES + bytesPerLaunch - 1) / bytesPerLaunch));
    }

    /**
     * GPU microseconds per launch: one graph of max(sets, 20) back-to-back launches cycling through the sets, replayed
     * after warm-up; median replay time over the launch count.
     */
    private static double perLaunchMicros(Stream s, GpuTimer timer, int sets, IntConsumer launchSet) {
        int launches = Math.max(sets, 20);
        try (CudaGraph g = CudaGraph.capture(s, st -> {
            for (int i = 0; i < launches; i++) launchSet.accept(i % sets);
        })) {
            g.upload(s);
            double ms = timer.medianMillis(() -> g.replay(s), 5, 30);
            return ms * 1e3 / launches;
        }
    }

    private DeviceBuffer randomBf16(Random rnd, long n, double scale, String label) {
        DeviceBuffer b = gpu.allocate(2 * n, label);
        fillHost(b, n, 2, (seg, i) -> seg.setAtIndex(ValueLayout.JAVA_SHORT, i, Bf16.fromFloat((float) (rnd.nextGaussian() * scale))));
        return b;
    }

    private DeviceBuffer randomFloats(Random rnd, long n, double scale, String label) {
        DeviceBuffer b = gpu.allocate(4 * n, label);
        fillHost(b, n, 4, (seg, i) -> seg.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) (rnd.nextGaussian() * scale)));
        return b;
    }

    /** Slot ids 0 .. n−1 in order (each set of b rows owns its own b slots). */
    private DeviceBuffer ints(int n, String label) {
        int[] v = new int[n];
        for (int i = 0; i < n; i++) v[i] = i;
        return upload(v, label);
    }

    private DeviceBuffer upload(int[] v, String label) {
        DeviceBuffer b = gpu.allocate(4L * v.length, label);
        try (Arena a = Arena.ofConfined()) {
            b.copyFromHost(a.allocateFrom(ValueLayout.JAVA_INT, v));
        }
        return b;
    }

    private interface Filler {
        void set(MemorySegment seg, long index);
    }

    /** Random host data in 64 MiB pieces (large pools would not fit one Java array). */
    private static void fillHost(DeviceBuffer b, long n, int elementBytes, Filler f) {
        long piece = (64L << 20) / elementBytes;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocate(Math.min(n, piece) * elementBytes, 16);
            // one random piece, repeated: fresh values per element would cost seconds of host time at 1 GB
            long first = Math.min(n, piece);
            for (long i = 0; i < first; i++) f.set(host, i);
            for (long off = 0; off < n; off += piece) {
                long count = Math.min(piece, n - off);
                b.copyFromHost(host.asSlice(0, count * elementBytes), off * elementBytes);
            }
        }
    }

}
