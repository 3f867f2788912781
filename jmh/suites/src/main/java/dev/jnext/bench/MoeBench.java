package dev.jnext.bench;

import dev.jnext.cuda.kernels.DeviceTensor;
import dev.jnext.cuda.kernels.DType;
import dev.jnext.gpu.CudaGraph;
import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Gemm;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.Stream;
import dev.jnext.cuda.kernels.GpuSparseMoe;
import dev.jnext.cuda.kernels.KernelLibrary;
import dev.jnext.cuda.kernels.MoeDecodeKernel;
import dev.jnext.cuda.kernels.MoeExpertGemm;
import dev.jnext.cuda.kernels.SamplingKernel;
import dev.jnext.cuda.kernels.StepShape;
import dev.jnext.cuda.kernels.TokenHistory;
import dev.jnext.numeric.Bf16;

import static dev.jnext.bench.BenchSuite.fmt;
import static dev.jnext.bench.BenchSuite.pct;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashSet;
import java.util.Locale;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * {@code jnext bench moe}: the MoE block and on-device sampling, CUDA-event medians of graph replays, random bf16 data.
 * <ul>
 *   <li>Decode (batch 1 and 8, 512 experts, 80B geometry): bytes that must move = each distinct selected expert's
 *       gate_up + down (3·H·I·2 B) + the shared expert (3·H·I·2 B) + the router (routerRows·H·2 B); % of the device copy
 *       ceiling measured in the same run. Inputs rotate over 16 token sets, so the selected experts change every
 *       replay and nothing stays in L2.</li>
 *   <li>Prefill (4,096 tokens; 64 experts as in the 8-layer benchmark checkpoint, and 512): useful FLOPs =
 *       tokens·topK·6·H·I for the grouped GEMMs (gate_up 4·H·I, down 2·H·I per pair); the whole block adds the router
 *       and the shared expert (2·H·routerRows + 6·H·Is per token); % of 762 TFLOP/s (torch bf16 GEMM on the H100).</li>
 *   <li>Sampling over 151,936 logits: greedy (two-level argmax) and top-k 50 / top-p 0.9 / T 0.7, at 1 and 64 rows.</li>
 * </ul>
 */
public final class MoeBench extends GpuBenchSuite {
    static final double BF16_PEAK_TFLOPS = 762;
    private static final int HIDDEN = 2048, INTER = 512, TOP_K = 10, VOCAB = 151936;

    public MoeBench(Gpu gpu) {
        super(gpu);
    }

    @Override
    public void runAll() {
        try (Stream s = gpu.createStream(); GpuTimer timer = new GpuTimer(gpu, s); KernelLibrary lib = new KernelLibrary(gpu);
             Gemm gemm = new Gemm(gpu)) {
            measureCopyCeiling(s, timer);
            decode(s, timer, lib, gemm, 512, 1);
            decode(s, timer, lib, gemm, 512, 8);
            decode(s, timer, lib, gemm, 64, 1);
            for (MoeExpertGemm.Engine engine : MoeExpertGemm.Engine.values()) {
                prefill(s, timer, lib, gemm, 64, 4096, engine);
                prefill(s, timer, lib, gemm, 512, 4096, engine);
            }
            sampling(s, timer, lib, 1);
            sampling(s, timer, lib, 64);
        }
    }

    /** Random bf16 in ±1·scale: a 16 MiB random pool tiled over the buffer at shifting offsets (never zeros). */
    private static void fillRandom(DeviceBuffer b, double scale, long seed) {
        int pool = 8 << 20;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocate(2L * pool);
            SplittableRandom r = new SplittableRandom(seed);
            for (int i = 0; i < pool; i++) {
                short v;
                do v = Bf16.fromFloat((float) ((r.nextDouble() * 2 - 1) * scale)); while (v == 0);
                host.setAtIndex(ValueLayout.JAVA_SHORT, i, v);
            }
            long elems = b.bytes() / 2;
            for (long at = 0, k = 0; at < elems; k++) {
                long shift = (k * 7919) % (pool / 2);
                long n = Math.min(pool - shift, elems - at);
                b.copyFromHost(host.asSlice(2 * shift, 2 * n), 2 * at);
                at += n;
            }
        }
    }

    private record Layer(GpuSparseMoe.Shape shape, DeviceBuffer router, DeviceBuffer gateUp, DeviceBuffer down,
                         DeviceBuffer sharedGateUp, DeviceBuffer sharedDown) implements AutoCloseable {
        static Layer random(Gpu gpu, int experts) {
            GpuSparseMoe.Shape shape = new GpuSparseMoe.Shape(HIDDEN, experts, TOP_K, INTER, INTER, true);
            DeviceBuffer r = gpu.allocate(2L * GpuSparseMoe.routerRows(shape) * HIDDEN, "router");
            DeviceBuffer gu = gpu.allocate(2L * experts * 2 * INTER * HIDDEN, "gate_up");
            DeviceBuffer d = gpu.allocate(2L * experts * HIDDEN * INTER, "down");
            DeviceBuffer sgu = gpu.allocate(2L * 2 * INTER * HIDDEN, "shared_gate_up");
            DeviceBuffer sd = gpu.allocate(2L * HIDDEN * INTER, "shared_down");
            fillRandom(r, 2.0 / Math.sqrt(HIDDEN) * Math.sqrt(3), 1);
            fillRandom(gu, 1.7 / Math.sqrt(HIDDEN) * Math.sqrt(3), 2);
            fillRandom(d, 1.7 / Math.sqrt(INTER) * Math.sqrt(3), 3);
            fillRandom(sgu, 1.7 / Math.sqrt(HIDDEN) * Math.sqrt(3), 4);
            fillRandom(sd, 1.7 / Math.sqrt(INTER) * Math.sqrt(3), 5);
            return new Layer(shape, r, gu, d, sgu, sd);
        }

        GpuSparseMoe.Weights weights() {
            return new GpuSparseMoe.Weights(router.address(), gateUp.address(), down.address(), sharedGateUp.address(), sharedDown.address());
        }

        @Override
        public void close() {
            for (DeviceBuffer b : new DeviceBuffer[]{router, gateUp, down, sharedGateUp, sharedDown}) b.close();
        }
    }

    private void decode(Stream s, GpuTimer timer, KernelLibrary lib, Gemm gemm, int experts, int batch) {
        int sets = 16;
        try (Layer layer = Layer.random(gpu, experts); GpuSparseMoe moe = new GpuSparseMoe(lib, gemm, layer.shape(), batch, batch);
             DeviceBuffer x = gpu.allocate(2L * sets * batch * HIDDEN, "x"); DeviceBuffer out = gpu.allocate(2L * batch * HIDDEN, "out")) {
            fillRandom(x, 1.7, 10 + batch);
            long distinctSum = 0;
            GpuSparseMoe.Layer[] bound = new GpuSparseMoe.Layer[sets];
            for (int i = 0; i < sets; i++) {
                bound[i] = moe.bind(layer.weights(), DeviceTensor.of(x, 2L * i * batch * HIDDEN, "x" + i, DType.BF16, batch, HIDDEN),
                        DeviceTensor.of(out, DType.BF16, batch, HIDDEN));
            }
            for (int i = 0; i < sets; i++) {  // eager: plans the GEMMs outside capture, and counts the experts each set selects
                moe.forward(s, StepShape.decode(batch), bound[i]);
                distinctSum += distinctExperts(moe, batch);
            }
            // one graph runs the 16 token sets back to back (as consecutive layers would): per-set time, no launch gaps
            try (CudaGraph g = CudaGraph.capture(s, st -> {
                for (int i = 0; i < sets; i++) {
                    moe.forward(st, StepShape.decode(batch), bound[i]);
                }
            })) {
                g.upload(s);
                double ms = timer.medianMillis(() -> g.replay(s), 10, 100) / sets;
                double expertBytes = 3.0 * HIDDEN * INTER * 2;
                double bytes = (distinctSum / (double) sets + 1) * expertBytes + 2.0 * GpuSparseMoe.routerRows(layer.shape()) * HIDDEN;
                double tbps = bytes / ms / 1e9;
                String key = "moe_decode_E" + experts + "_B" + batch;
                numbers.put(key + "_us", ms * 1e3);
                numbers.put(key + "_TBps", tbps);
                rows.add(new Row("MoE decode block (graph)", "B=" + batch + " E=" + experts + " k=10", ms * 1e3,
                        fmt("%.2f TB/s (%.1f MB)", tbps, bytes / 1e6), pct(tbps / copyTBps), "router GEMM + top-k + 2 expert kernels"));
                decodeExperts(s, timer, lib, layer, batch, x, out, key);
            }
        }
    }

    /** The two decode expert kernels alone, each replay with another token set and another random routing. */
    private void decodeExperts(Stream s, GpuTimer timer, KernelLibrary lib, Layer layer, int batch, DeviceBuffer x, DeviceBuffer out,
                               String key) {
        int sets = 16, experts = layer.shape().experts();
        MoeDecodeKernel k = new MoeDecodeKernel(lib);
        SplittableRandom r = new SplittableRandom(99 + batch);
        int[] ids = new int[sets * batch * TOP_K];
        long distinct = 0;
        for (int set = 0; set < sets; set++) {
            Set<Integer> seen = new HashSet<>();
            for (int t = 0; t < batch; t++) {
                Set<Integer> mine = new HashSet<>();
                for (int j = 0; j < TOP_K; j++) {
                    int e;
                    do e = r.nextInt(experts); while (!mine.add(e));
                    ids[(set * batch + t) * TOP_K + j] = e;
                    seen.add(e);
                }
            }
            distinct += seen.size();
        }
        int rr = GpuSparseMoe.routerRows(layer.shape());
        try (DeviceBuffer dIds = gpu.allocate(4L * ids.length, "ids"); DeviceBuffer dW = gpu.allocate(2L * ids.length, "w");
             DeviceBuffer gates = gpu.allocate(2L * batch * rr, "gate_logits");
             DeviceBuffer act = gpu.allocate(2L * MoeDecodeKernel.actRows(batch, TOP_K, true) * INTER, "act");
             DeviceBuffer contrib = gpu.allocate(2L * MoeDecodeKernel.actRows(batch, TOP_K, true) * HIDDEN, "contrib");
             DeviceBuffer counters = gpu.allocate(MoeDecodeKernel.counterBytes(batch, HIDDEN), "counters")) {
            counters.fill32(0, s);
            try (Arena a = Arena.ofConfined()) {
                dIds.copyFromHost(a.allocateFrom(ValueLayout.JAVA_INT, ids));
            }
            fillRandom(dW, 0.1, 7);
            fillRandom(gates, 1, 8);
            double bytes = (distinct / (double) sets + 1) * 3.0 * HIDDEN * INTER * 2;
            String[] parts = {"both", "gate_up", "down"};  // down includes the combine
            MoeDecodeKernel.GateUpArgs[] gateUpArgs = new MoeDecodeKernel.GateUpArgs[sets];
            MoeDecodeKernel.DownArgs[] downArgs = new MoeDecodeKernel.DownArgs[sets];
            DeviceTensor actT = DeviceTensor.of(act, DType.BF16, MoeDecodeKernel.actRows(batch, TOP_K, true), INTER);
            for (int i = 0; i < sets; i++) {
                DeviceTensor idi = DeviceTensor.of(dIds, 4L * i * batch * TOP_K, "ids" + i, DType.I32, batch, TOP_K);
                gateUpArgs[i] = new MoeDecodeKernel.GateUpArgs(DeviceTensor.of(x, 2L * i * batch * HIDDEN, "x" + i, DType.BF16, batch, HIDDEN),
                        idi, DeviceTensor.of(layer.gateUp(), DType.BF16, experts, 2 * INTER, HIDDEN),
                        DeviceTensor.of(layer.sharedGateUp(), DType.BF16, 2 * INTER, HIDDEN), actT);
                downArgs[i] = new MoeDecodeKernel.DownArgs(actT, idi,
                        DeviceTensor.of(dW, 2L * i * batch * TOP_K, "w" + i, DType.BF16, batch, TOP_K),
                        DeviceTensor.of(layer.down(), DType.BF16, experts, HIDDEN, INTER), DeviceTensor.of(layer.sharedDown(), DType.BF16, HIDDEN, INTER),
                        DeviceTensor.of(gates, DType.BF16, batch, rr), 0,
                        DeviceTensor.of(contrib, DType.BF16, MoeDecodeKernel.actRows(batch, TOP_K, true), HIDDEN),
                        DeviceTensor.of(counters, DType.U32, batch, HIDDEN / 64), DeviceTensor.of(out, DType.BF16, batch, HIDDEN));
            }
            for (String part : parts) {
                try (CudaGraph g = CudaGraph.capture(s, st -> {
                    for (int i = 0; i < sets; i++) {
                        if (!part.equals("down")) k.launchGateUp(st, gateUpArgs[i], batch);
                        if (!part.equals("gate_up")) k.launchDown(st, downArgs[i], batch);
                    }
                })) {
                    g.upload(s);
                    double ms = timer.medianMillis(() -> g.replay(s), 10, 100) / sets;
                    double share = part.equals("both") ? 1 : part.equals("gate_up") ? 2.0 / 3 : 1.0 / 3;
                    double tbps = bytes * share / ms / 1e9;
                    numbers.put(key + "_experts_" + part + "_us", ms * 1e3);
                    numbers.put(key + "_experts_" + part + "_TBps", tbps);
                    rows.add(new Row("MoE decode experts: " + part, "B=" + batch + " E=" + experts + " k=10", ms * 1e3,
                            fmt("%.2f TB/s (%.1f MB)", tbps, bytes * share / 1e6), pct(tbps / copyTBps),
                            part.equals("both") ? "target >= 80% of copy" : ""));
                }
            }
        }
    }

    private int distinctExperts(GpuSparseMoe moe, int batch) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocate(4L * batch * TOP_K);
            gpu.synchronize();
            moe.topkIds().copyToHost(host.asSlice(0, host.byteSize()));
            Set<Integer> set = new HashSet<>();
            for (int i = 0; i < batch * TOP_K; i++) set.add(host.getAtIndex(ValueLayout.JAVA_INT, i));
            return set.size();
        }
    }

    private void prefill(Stream s, GpuTimer timer, KernelLibrary lib, Gemm gemm, int experts, int tokens, MoeExpertGemm.Engine engine) {
        try (Layer layer = Layer.random(gpu, experts); GpuSparseMoe moe = new GpuSparseMoe(lib, gemm, layer.shape(), tokens, 8, engine);
             DeviceBuffer x = gpu.allocate(2L * tokens * HIDDEN, "x"); DeviceBuffer out = gpu.allocate(2L * tokens * HIDDEN, "out")) {
            fillRandom(x, 1.7, 20 + experts);
            double pairFlops = (double) tokens * TOP_K * 6.0 * HIDDEN * INTER;
            double blockFlops = pairFlops + (double) tokens * (2.0 * HIDDEN * GpuSparseMoe.routerRows(layer.shape()) + 6.0 * HIDDEN * INTER);
            StepShape shape = StepShape.prefill(tokens, 1);
            GpuSparseMoe.Layer bound = moe.bind(layer.weights(), DeviceTensor.of(x, DType.BF16, tokens, HIDDEN),
                    DeviceTensor.of(out, DType.BF16, tokens, HIDDEN));
            moe.forward(s, shape, bound);  // plans the GEMMs outside capture
            try (CudaGraph g = CudaGraph.capture(s, st -> moe.forward(st, shape, bound))) {
                g.upload(s);
                double ms = timer.medianMillis(() -> g.replay(s), 5, 30);
                double tf = blockFlops / ms / 1e9;
                String key = "moe_prefill_E" + experts + "_T" + tokens + "_" + engine;
                numbers.put(key + "_block_us", ms * 1e3);
                numbers.put(key + "_block_TFLOPs", tf);
                rows.add(new Row("MoE prefill block (graph)", "T=" + tokens + " E=" + experts + " " + engine, ms * 1e3,
                        fmt("%.0f TFLOP/s", tf), pct(tf / BF16_PEAK_TFLOPS) + " pk", "router+grouping+experts+shared+combine"));
            }
            // the grouped GEMMs alone, on the grouping of the last forward
            double msGateUp = timer.medianMillis(() -> moe.expertGateUp(s, bound, tokens), 5, 30);
            double msDown = timer.medianMillis(() -> moe.expertDown(s, bound, tokens), 5, 30);
            String key0 = "moe_prefill_E" + experts + "_T" + tokens + "_" + engine;
            numbers.put(key0 + "_gate_up_us", msGateUp * 1e3);
            numbers.put(key0 + "_down_us", msDown * 1e3);
            rows.add(new Row("  grouped GEMM gate_up+SiLU", "T=" + tokens + " E=" + experts + " " + engine, msGateUp * 1e3,
                    fmt("%.0f TFLOP/s", pairFlops * 2 / 3 / msGateUp / 1e9), pct(pairFlops * 2 / 3 / msGateUp / 1e9 / BF16_PEAK_TFLOPS) + " pk", ""));
            rows.add(new Row("  grouped GEMM down (weighted)", "T=" + tokens + " E=" + experts + " " + engine, msDown * 1e3,
                    fmt("%.0f TFLOP/s", pairFlops / 3 / msDown / 1e9), pct(pairFlops / 3 / msDown / 1e9 / BF16_PEAK_TFLOPS) + " pk", ""));
            double ms = timer.medianMillis(() -> moe.expertGemms(s, bound, tokens), 5, 30);
            double tf = pairFlops / ms / 1e9;
            double weightBytes = 3.0 * HIDDEN * INTER * 2 * experts;
            String key = "moe_prefill_E" + experts + "_T" + tokens + "_" + engine;
            numbers.put(key + "_gemms_us", ms * 1e3);
            numbers.put(key + "_gemms_TFLOPs", tf);
            rows.add(new Row("MoE grouped GEMMs (gate_up+down)", "T=" + tokens + " E=" + experts + " " + engine, ms * 1e3,
                    fmt("%.0f TFLOP/s", tf), pct(tf / BF16_PEAK_TFLOPS) + " pk",
                    fmt("target >= 50%% of peak; weight-read floor %.0f us", weightBytes / copyTBps / 1e6)));
        }
    }

    private void sampling(Stream s, GpuTimer timer, KernelLibrary lib, int batch) {
        try (SamplingKernel k = new SamplingKernel(lib, batch); DeviceBuffer logits = gpu.allocate(2L * batch * VOCAB, "logits");
             DeviceBuffer ids = gpu.allocate(4L * batch, "ids");
             DeviceBuffer params = gpu.allocate((long) SamplingKernel.PARAMS_BYTES * batch, "params");
             DeviceBuffer penalized = gpu.allocate((long) SamplingKernel.PARAMS_BYTES * batch, "params with penalties");
             DeviceBuffer rng = gpu.allocate(16L * batch, "rng"); DeviceBuffer rowSlot = gpu.allocate(4L * batch, "row slots");
             TokenHistory history = new TokenHistory(lib, batch, VOCAB)) {
            fillRandom(logits, 8, 30 + batch);
            try (Arena a = Arena.ofConfined()) {
                MemorySegment hp = a.allocate((long) SamplingKernel.PARAMS_BYTES * batch), hq = a.allocate(hp.byteSize());
                MemorySegment hr = a.allocate(16L * batch), hs = a.allocate(4L * batch);
                MemorySegment seenIds = a.allocate(4L * batch * 512), seenSlots = a.allocate(4L * batch * 512);
                for (int r = 0; r < batch; r++) {
                    SamplingKernel.writeParams(hp, r, new SamplingKernel.RowParams(0.7f, 50, 0.9f, 0f));
                    SamplingKernel.writeParams(hq, r, new SamplingKernel.RowParams(0.7f, 50, 0.9f, 0f, 1.1f, 0.5f));
                    SamplingKernel.writeRng(hr, r, 1234 + r, 0);
                    hs.setAtIndex(ValueLayout.JAVA_INT, r, r);
                    for (int j = 0; j < 512; j++) {  // a 512-token prompt per row
                        seenIds.setAtIndex(ValueLayout.JAVA_INT, r * 512L + j, (int) ((r * 7919L + j * 104729L) % VOCAB));
                        seenSlots.setAtIndex(ValueLayout.JAVA_INT, r * 512L + j, r);
                    }
                }
                params.copyFromHost(hp);
                penalized.copyFromHost(hq);
                rng.copyFromHost(hr);
                rowSlot.copyFromHost(hs);
                try (DeviceBuffer dIds = gpu.allocate(seenIds.byteSize(), "prompt ids");
                     DeviceBuffer dSlots = gpu.allocate(seenSlots.byteSize(), "prompt slots")) {
                    dIds.copyFromHost(seenIds);
                    dSlots.copyFromHost(seenSlots);
                    history.observe(s, new TokenHistory.ObserveArgs(DeviceTensor.of(dIds, DType.I32, batch * 512),
                            DeviceTensor.of(dSlots, DType.I32, batch * 512)), batch * 512);
                    s.synchronize();
                }
            }
            double bytes = 2.0 * batch * VOCAB;
            DeviceTensor logitsT = DeviceTensor.of(logits, DType.BF16, batch, VOCAB), idsT = DeviceTensor.of(ids, DType.I32, batch);
            DeviceTensor rngT = DeviceTensor.of(rng, DType.U64, batch, 2);
            SamplingKernel.Args greedy = new SamplingKernel.Args(logitsT, null, null, null, null, idsT);
            SamplingKernel.Args plain = new SamplingKernel.Args(logitsT, DeviceTensor.of(params, DType.F32, batch, 8), rngT, null, null, idsT);
            SamplingKernel.Args penalties = new SamplingKernel.Args(logitsT, DeviceTensor.of(penalized, DType.F32, batch, 8), rngT,
                    DeviceTensor.of(rowSlot, DType.I32, batch), history, idsT);
            try (CudaGraph g = CudaGraph.capture(s, st -> k.greedy(st, greedy, VOCAB, batch))) {
                double ms = timer.medianMillis(() -> g.replay(s), 20, 200);
                numbers.put("sample_greedy_rows" + batch + "_us", ms * 1e3);
                rows.add(new Row("sampling greedy (graph)", batch + " x " + VOCAB, ms * 1e3,
                        fmt("%.2f TB/s", bytes / ms / 1e9), pct(bytes / ms / 1e9 / copyTBps), "two-level argmax"));
            }
            try (CudaGraph g = CudaGraph.capture(s, st -> k.sample(st, plain, VOCAB, batch))) {
                double ms = timer.medianMillis(() -> g.replay(s), 20, 200);
                numbers.put("sample_topk_topp_rows" + batch + "_us", ms * 1e3);
                rows.add(new Row("sampling T/top-k/top-p (graph)", batch + " x " + VOCAB, ms * 1e3,
                        fmt("%.2f TB/s", bytes / ms / 1e9), "", "T 0.7, k 50, p 0.9; Philox in graph"));
            }
            try (CudaGraph g = CudaGraph.capture(s, st -> k.sample(st, penalties, VOCAB, batch))) {
                double ms = timer.medianMillis(() -> g.replay(s), 20, 200);
                numbers.put("sample_penalties_rows" + batch + "_us", ms * 1e3);
                rows.add(new Row("sampling + penalties (graph)", batch + " x " + VOCAB, ms * 1e3,
                        fmt("%.2f TB/s", bytes / ms / 1e9), "", "as above, rep 1.1, presence 0.5, 512-token history"));
            }
        }
    }

}
