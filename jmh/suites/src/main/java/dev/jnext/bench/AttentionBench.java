package dev.jnext.bench;

import dev.jnext.gpu.CudaGraph;
import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.Stream;
import dev.jnext.cuda.kernels.AttentionGeometry;
import dev.jnext.cuda.kernels.AttentionPrepKernel;
import dev.jnext.cuda.kernels.DType;
import dev.jnext.cuda.kernels.DeviceTensor;
import dev.jnext.cuda.kernels.DecodeAttentionKernel;
import dev.jnext.cuda.kernels.KernelLibrary;
import dev.jnext.cuda.kernels.PrefillAttentionKernel;
import dev.jnext.cuda.kernels.StepShape;
import dev.jnext.numeric.Bf16;
import dev.jnext.cuda.state.AttentionBatch;
import dev.jnext.cuda.state.KvPages;
import dev.jnext.cuda.state.PageTable;

import static dev.jnext.bench.BenchSuite.fmt;
import static dev.jnext.bench.BenchSuite.pct;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * {@code jnext bench attention}: the full-attention kernels at the Qwen3-Next-80B geometry (16 query heads, 2 KV heads,
 * head_dim 256, rotary 64), timed with CUDA events (median after warm-up), random bf16 data.
 * <ul>
 *   <li>Prefill, one sequence of T tokens, causal, output gate on: FLOPs counted as 4·hd·heads·Σ_t(keys of token t),
 *       i.e. 4·(T²/2)·hd·heads for a fresh prompt (Q·Kᵀ and P·V over the causal half; the diagonal tiles' extra work is not
 *       counted); also an extend of 512 tokens after 8192 cached. Rate over the card's bf16 dense peak, 762 TFLOP/s
 *       measured by torch on the host H100 (KERNELS.md). Last, the experimental 16-warp kernel, its output compared with
 *       the default's on the same inputs.</li>
 *   <li>Decode, B sequences of C cached tokens each (the new token's K/V included), split kernel + combine, 16 calls
 *       captured in one graph as a decode step runs them (one per layer), time per call = replay / 16; the note gives a
 *       graph of one call too, which carries the event-timed replay overhead (≈ 7 µs on the H100, KernelBench).
 *       Bytes = B·C·kvHeads·hd·2 (K and V)·2 B, i.e. 2 KB per token; the q, gate and output bytes are negligible and not
 *       counted. Rate over the device copy ceiling measured in the same run. Working sets smaller than 128 MB are rotated
 *       among several copies so L2 (50 MB) cannot hold them.</li>
 *   <li>The q/k prep (norm + RoPE + KV write) at T tokens: bytes = the q halves of q_proj's output, k and v read, q and the
 *       K/V rows written.</li>
 * </ul>
 */
public final class AttentionBench extends GpuBenchSuite {
    /** bf16 dense peak of the host H100, measured by torch (KERNELS.md, 2026-11-27). */
    public static final double PEAK_TFLOPS = 762;
    private static final AttentionGeometry GEOMETRY = new AttentionGeometry(16, 2, 256, 64);
    private static final long ROTATE_BYTES = 128L << 20;
    /** Decode calls per timed graph (a decode step's graph holds one per attention layer). */
    private static final int LAYER_CALLS = 16;

    public AttentionBench(Gpu gpu) {
        super(gpu);
    }

    @Override
    public void runAll() {
        try (Stream s = gpu.createStream(); GpuTimer timer = new GpuTimer(gpu, s); KernelLibrary lib = new KernelLibrary(gpu)) {
            measureCopyCeiling(s, timer);
            for (int t : new int[] {1024, 4096, 8192}) prefill(s, timer, lib, 0, t, PrefillAttentionKernel.DEFAULT_GROUP_WARPS);
            prefill(s, timer, lib, 8192, 512, PrefillAttentionKernel.DEFAULT_GROUP_WARPS);
            prep(s, timer, lib, 8192);
            for (int b : new int[] {1, 32}) {
                for (int c : new int[] {4096, 32768}) decode(s, timer, lib, b, c);
            }
            // experimental variants last: a failure there cannot cost the rows above
            for (int t : new int[] {4096, 8192}) prefill(s, timer, lib, 0, t, 4);
        }
    }

    /**
     * One sequence with {@code past} cached and {@code t} new tokens; FLOPs 4·hd·heads·Σ(keys per new token). With
     * {@code groupWarps} ≠ the default, the output is also compared with the default kernel's on the same inputs.
     */
    private void prefill(Stream s, GpuTimer timer, KernelLibrary lib, int past, int t, int groupWarps) {
        AttentionGeometry g = GEOMETRY;
        int w = g.heads() * g.headDim();
        int pagesNeeded = (past + t + KvPages.PAGE_TOKENS - 1) / KvPages.PAGE_TOKENS;
        try (KvPages pages = KvPages.allocate(gpu, new KvPages.Geometry(1, g.kvHeads(), g.headDim(), pagesNeeded));
             AttentionBatch batch = new AttentionBatch(gpu, 1, pagesNeeded);
             DeviceBuffer q = gpu.allocate(2L * t * w, "q"); DeviceBuffer qg = gpu.allocate(4L * t * w, "qg");
             DeviceBuffer out = gpu.allocate(2L * t * w, "out")) {
            randomFill(pages.buffer(), 1);
            randomFill(q, 2);
            randomFill(qg, 3);
            PageTable table = pages.newSequence();
            table.reserve(past + t);
            batch.stage(List.of(new AttentionBatch.Sequence(table, past, t)), s);
            PrefillAttentionKernel k = new PrefillAttentionKernel(lib, g, groupWarps);
            StepShape shape = StepShape.prefill(t, 1);
            PrefillAttentionKernel.Args args = new PrefillAttentionKernel.Args(g, DeviceTensor.of(q, DType.BF16, t, g.heads(), g.headDim()),
                    DeviceTensor.of(out, DType.BF16, t, w), DeviceTensor.of(qg, DType.BF16, t, g.heads(), 2 * g.headDim()), g.headDim());
            Runnable run = () -> k.launch(s, shape, args, batch, pages, 0);
            double ms = timer.medianMillis(run, 3, 20);
            double flops = 4.0 * g.headDim() * g.heads() * ((double) t * past + (double) t * (t + 1) / 2);
            double tflops = flops / ms / 1e9;
            String key = "prefill" + (past > 0 ? "_past" + past : "") + "_T" + t + (groupWarps != 2 ? "_w" + groupWarps : "");
            numbers.put(key + "_us", ms * 1e3);
            numbers.put(key + "_TFLOPs", tflops);
            String note = past == 0 && t == 8192 && groupWarps == 2 ? "target >= 300 TFLOP/s" : "";
            if (groupWarps != PrefillAttentionKernel.DEFAULT_GROUP_WARPS) {
                short[] got = download(out, (long) t * w);
                new PrefillAttentionKernel(lib, g).launch(s, shape, args, batch, pages, 0);
                short[] ref = download(out, (long) t * w);
                double[] cmp = compare(ref, got);
                numbers.put(key + "_maxUlpVsDefault", cmp[0]);
                numbers.put(key + "_relL2VsDefault", cmp[1]);
                note = fmt("experimental; vs default: max %.0f ulp, rel L2 %.1e%s", cmp[0], cmp[1],
                        cmp[2] > 0 ? fmt(", %.0f NaN", cmp[2]) : "");
            }
            rows.add(new Row("prefill attention (causal, gate" + (groupWarps != 2 ? ", " + 4 * groupWarps + " warps" : "") + ")",
                    (past > 0 ? past + "+" : "") + t + " tok, 16/2 x 256", ms * 1e3, fmt("%.0f TFLOP/s", tflops),
                    fmt("%.0f%% pk", 100 * tflops / PEAK_TFLOPS), note));
        }
    }

    private short[] download(DeviceBuffer b, long n) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocate(2 * n);
            b.copyToHost(host);
            return host.toArray(ValueLayout.JAVA_SHORT);
        }
    }

    /** Max bf16 ulp distance, relative L2 difference and NaN count of {@code got} against {@code ref}. */
    private static double[] compare(short[] ref, short[] got) {
        double maxUlp = 0, err = 0, norm = 0, nan = 0;
        for (int i = 0; i < ref.length; i++) {
            float r = Bf16.toFloat(ref[i]), v = Bf16.toFloat(got[i]);
            if (Float.isNaN(v)) {
                nan++;
                continue;
            }
            maxUlp = Math.max(maxUlp, Bf16.ulpDistance(ref[i], got[i]));
            err += (double) (v - r) * (v - r);
            norm += (double) r * r;
        }
        return new double[] {maxUlp, Math.sqrt(err / Math.max(norm, 1e-30)), nan};
    }

    private void prep(Stream s, GpuTimer timer, KernelLibrary lib, int t) {
        AttentionGeometry g = GEOMETRY;
        int w = g.heads() * g.headDim(), kvw = g.kvHeads() * g.headDim();
        int pagesNeeded = (t + KvPages.PAGE_TOKENS - 1) / KvPages.PAGE_TOKENS;
        try (KvPages pages = KvPages.allocate(gpu, new KvPages.Geometry(1, g.kvHeads(), g.headDim(), pagesNeeded));
             AttentionBatch batch = new AttentionBatch(gpu, 1, pagesNeeded);
             AttentionPrepKernel k = new AttentionPrepKernel(lib, g, 1e7, 1e-6f);
             DeviceBuffer qg = gpu.allocate(4L * t * w, "qg"); DeviceBuffer kv = gpu.allocate(4L * t * kvw, "kv");
             DeviceBuffer norms = gpu.allocate(4L * g.headDim(), "norm weights"); DeviceBuffer q = gpu.allocate(2L * t * w, "q")) {
            randomFill(qg, 4);
            randomFill(kv, 5);
            randomFill(norms, 6);
            PageTable table = pages.newSequence();
            table.reserve(t);
            batch.stage(List.of(new AttentionBatch.Sequence(table, 0, t)), s);
            StepShape shape = StepShape.prefill(t, 1);
            AttentionPrepKernel.Args args = new AttentionPrepKernel.Args(g, DeviceTensor.of(qg, DType.BF16, t, 2 * w),
                    DeviceTensor.of(kv, DType.BF16, t, 2 * kvw), DeviceTensor.of(norms, 0, "q_norm", DType.BF16, g.headDim()),
                    DeviceTensor.of(norms, 2L * g.headDim(), "k_norm", DType.BF16, g.headDim()),
                    DeviceTensor.of(q, DType.BF16, t, g.heads(), g.headDim()));
            double ms = timer.medianMillis(() -> k.launch(s, shape, args, batch, pages, 0), 3, 20);
            double bytes = 2.0 * t * (w + 2 * kvw) * 2;
            double tbps = bytes / ms / 1e9;
            numbers.put("prep_T" + t + "_us", ms * 1e3);
            numbers.put("prep_T" + t + "_TBps", tbps);
            rows.add(new Row("q/k norm + RoPE + KV write", t + " tok", ms * 1e3, fmt("%.2f TB/s", tbps),
                    pct(tbps / copyTBps), ""));
        }
    }

    private void decode(Stream s, GpuTimer timer, KernelLibrary lib, int batchSize, int context) {
        AttentionGeometry g = GEOMETRY;
        int w = g.heads() * g.headDim();
        long bytes = (long) batchSize * context * g.kvHeads() * g.headDim() * 2 * 2;
        int sets = (int) Math.max(1, Math.min(16, (ROTATE_BYTES + bytes - 1) / bytes));
        int pagesPerSeq = (context + KvPages.PAGE_TOKENS - 1) / KvPages.PAGE_TOKENS;
        int totalPages = sets * batchSize * pagesPerSeq;
        List<AttentionBatch> batches = new ArrayList<>();
        List<CudaGraph> graphs = new ArrayList<>();
        StepShape shape = StepShape.decode(batchSize);
        try (KvPages pages = KvPages.allocate(gpu, new KvPages.Geometry(1, g.kvHeads(), g.headDim(), totalPages));
             DecodeAttentionKernel k = new DecodeAttentionKernel(lib, g, batchSize);
             DeviceBuffer q = gpu.allocate(2L * batchSize * w, "q"); DeviceBuffer gate = gpu.allocate(2L * batchSize * w, "gate");
             DeviceBuffer out = gpu.allocate(2L * batchSize * w, "out")) {
            randomFill(pages.buffer(), 7);
            randomFill(q, 8);
            randomFill(gate, 9);
            DecodeAttentionKernel.Args args = new DecodeAttentionKernel.Args(g, DeviceTensor.of(q, DType.BF16, batchSize, g.heads(), g.headDim()),
                    DeviceTensor.of(out, DType.BF16, batchSize, w), DeviceTensor.of(gate, DType.BF16, batchSize, g.heads(), g.headDim()), 0);
            for (int set = 0; set < sets; set++) {
                List<AttentionBatch.Sequence> seqs = new ArrayList<>();
                for (int b = 0; b < batchSize; b++) {
                    PageTable table = pages.newSequence();
                    table.reserve(context);
                    seqs.add(new AttentionBatch.Sequence(table, context - 1, 1));
                }
                AttentionBatch batch = new AttentionBatch(gpu, batchSize, pagesPerSeq);
                batches.add(batch);
                batch.stage(seqs, s);
                graphs.add(CudaGraph.capture(s, st -> k.launch(st, shape, args, batch, pages, 0)));
            }
            // as a decode step runs it: many layers' calls in one graph (each a different rotated set); per call = replay / n
            try (CudaGraph layers = CudaGraph.capture(s, st -> {
                for (int i = 0; i < LAYER_CALLS; i++) {
                    AttentionBatch batch = batches.get(i % sets);
                    k.launch(st, shape, args, batch, pages, 0);
                }
            })) {
                layers.upload(s);
                for (CudaGraph graph : graphs) graph.upload(s);
                double ms = timer.medianMillis(() -> layers.replay(s), 3, 30) / LAYER_CALLS;
                int[] turn = {0};
                double single = timer.medianMillis(() -> graphs.get(turn[0]++ % sets).replay(s), 10, 100);
                double tbps = bytes / ms / 1e9;
                String key = "decode_B" + batchSize + "_C" + context;
                numbers.put(key + "_us", ms * 1e3);
                numbers.put(key + "_TBps", tbps);
                numbers.put(key + "_single_replay_us", single * 1e3);
                numbers.put(key + "_splits", (double) k.splitsFor(batchSize));
                rows.add(new Row("decode attention (in graph, gate)", "B" + batchSize + " x " + context + " ctx", ms * 1e3,
                        fmt("%.2f TB/s", tbps), pct(tbps / copyTBps),
                        fmt("%d splits%s; one-call graph %.1f us; target >= 80%%", k.splitsFor(batchSize),
                                sets > 1 ? ", " + sets + " rotated sets" : "", single * 1e3)));
            }
        } finally {
            for (CudaGraph graph : graphs) graph.close();
            for (AttentionBatch b : batches) b.close();
        }
    }

    /** Fills a buffer with pseudo-random bf16 values in about [−2, 2] (a fixed 16 MB pattern per seed, repeated). */
    private void randomFill(DeviceBuffer buf, int seed) {
        long chunk = Math.min(buf.bytes(), 16L << 20) & ~1L;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocate(chunk);
            long x = 0x9E3779B97F4A7C15L * (seed + 1);
            for (long i = 0; i < chunk / 2; i++) {
                x ^= x << 13;
                x ^= x >>> 7;
                x ^= x << 17;
                float v = (float) ((x >>> 40) / (double) (1L << 24) * 4 - 2);
                host.setAtIndex(ValueLayout.JAVA_SHORT, i, Bf16.fromFloat(v));
            }
            for (long off = 0; off < buf.bytes(); off += chunk) {
                long n = Math.min(chunk, buf.bytes() - off) & ~1L;
                if (n > 0) buf.copyFromHost(host.asSlice(0, n), off);
            }
        }
    }

}
