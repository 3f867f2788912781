package dev.jnext.bench;

import dev.jnext.backend.PrefillMode;

import dev.jnext.cuda.CudaModel;
import dev.jnext.cuda.CudaOptions;
import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Gemm;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.Stream;
import dev.jnext.backend.SamplingParams;
import dev.jnext.model.LayerType;
import dev.jnext.model.ModelConfig;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * {@code jnext bench model}: whole-model prefill and decode throughput on a checkpoint, llama-bench style. Each row is
 * the median wall time of a full {@link CudaModel#step} (metadata upload, launches or graph replay, sampling, the
 * read-back of the sampled ids) and its share of a roofline computed from the checkpoint's geometry with the copy and
 * GEMM ceilings measured in the same run: decode steps are bound by the bytes they must read (the weights the batch
 * touches, the GDN state read and written, the KV cache), prefill steps by their FLOPs.
 */
public final class ModelBench implements BenchSuite {
    private final Gpu gpu;
    private final Path model;
    private final CudaOptions options;
    private final List<PrefillMode> modes;
    private final int[] prefill;
    private final int[] prefillSeqs;
    private final int[] decodeBatch;
    private final List<Row> rows = new ArrayList<>();
    private final Map<String, Double> numbers = new LinkedHashMap<>();

    /**
     * @param modes       prefill executors to compare (each loads the model once; decode runs with the first)
     * @param prefill     prefill token counts per step
     * @param prefillSeqs how many sequences share each step's tokens (1 = one sequence of all of them)
     */
    public ModelBench(Gpu gpu, Path model, CudaOptions options, List<PrefillMode> modes, int[] prefill, int[] prefillSeqs,
                      int[] decodeBatch) {
        this.gpu = gpu;
        this.model = model;
        this.options = options;
        this.modes = List.copyOf(modes);
        this.prefill = prefill.clone();
        this.prefillSeqs = prefillSeqs.clone();
        this.decodeBatch = decodeBatch.clone();
    }

    @Override
    public void runAll() {
        double copyTBps, gemmTflops;
        try (Stream s = gpu.createStream(); GpuTimer timer = new GpuTimer(gpu, s)) {
            copyTBps = BenchSuite.measureCopyCeiling(gpu, s, timer, rows, numbers);
            gemmTflops = measureGemmCeiling(s, timer);
        }
        int maxT = Arrays.stream(prefill).max().orElse(1);
        int maxB = Arrays.stream(decodeBatch).max().orElse(1);
        int maxS = Arrays.stream(prefillSeqs).max().orElse(1);
        for (int m = 0; m < modes.size(); m++) {
            PrefillMode mode = modes.get(m);
            CudaOptions o = options.withPrefill(mode).withMaxSequences(Math.max(options.maxSequences(), Math.max(maxB, maxS)))
                    .withMaxStepTokens(Math.max(options.maxStepTokens(), Math.max(maxT, maxB * 128)))
                    .withMaxContext(Math.max(maxT + 8, 1024));
            long t0 = System.nanoTime();
            try (CudaModel cm = CudaModel.load(model, o, b -> {})) {
                String tag = mode.name().toLowerCase(java.util.Locale.ROOT).replace('_', '-');
                numbers.put(tag + "_load_s", (System.nanoTime() - t0) / 1e9);
                numbers.put(tag + "_capture_s", cm.graphCaptureNanos() / 1e9);
                numbers.put(tag + "_prefill_graphs", (double) cm.prefillGraphCount());
                for (int seqs : prefillSeqs) {
                    for (int t : prefill) {
                        if (t >= seqs) prefillRow(cm, tag, t, seqs, gemmTflops);
                    }
                }
                if (m == 0) {
                    for (int b : decodeBatch) decodeRow(cm, b, copyTBps);
                }
            }
        }
    }

    /** Median wall time of a prefill step of {@code t} tokens over {@code seqs} fresh sequences, sampling their first tokens. */
    private void prefillRow(CudaModel m, String tag, int t, int seqs, double gemmTflops) {
        ModelConfig c = m.config();
        SplittableRandom rnd = new SplittableRandom(t * 31L + seqs);
        double[] ms = new double[5];
        for (int rep = 0; rep < ms.length + 1; rep++) {
            List<CudaModel.Input> in = new ArrayList<>();
            for (int i = 0; i < seqs; i++) {
                int len = t / seqs + (i < t % seqs ? 1 : 0);
                int slot = m.open(SamplingParams.greedy(), c.vocabSize());
                in.add(new CudaModel.Input(slot, rnd.ints(len, 0, c.vocabSize()).toArray(), true, CudaModel.Logits.NONE));
            }
            long a = System.nanoTime();
            m.step(in);
            if (rep > 0) ms[rep - 1] = (System.nanoTime() - a) / 1e6;  // the first run warms up this shape (or captures it)
            for (CudaModel.Input i : in) m.close(i.slot());
        }
        Arrays.sort(ms);
        double med = ms[ms.length / 2];
        double flops = 0;
        for (int i = 0; i < seqs; i++) flops += prefillFlops(c, t / seqs + (i < t % seqs ? 1 : 0));
        double roof = flops / (gemmTflops * 1e12) * 1e3;
        String key = tag + "_prefill_" + t + (seqs > 1 ? "x" + seqs : "");
        numbers.put(key + "_ms", med);
        numbers.put(key + "_tok_per_s", t / med * 1e3);
        numbers.put(key + "_of_roofline", roof / med);
        rows.add(new Row("prefill " + tag, t + " tokens" + (seqs > 1 ? " in " + seqs + " seqs" : ""), med * 1e3,
                BenchSuite.fmt("%.0f tok/s", t / med * 1e3), BenchSuite.pct(roof / med),
                BenchSuite.fmt("TTFT %.2f ms; %.3f TFLOP, roofline %.3f ms at %.0f TFLOP/s", med, flops / 1e12, roof, gemmTflops)));
    }

    /** Median wall time of a decode step of {@code b} sequences of about 170 tokens, greedy sampling included. */
    private void decodeRow(CudaModel m, int b, double copyTBps) {
        ModelConfig c = m.config();
        SplittableRandom rnd = new SplittableRandom(b);
        int[] slots = new int[b];
        List<CudaModel.Input> in = new ArrayList<>();
        for (int i = 0; i < b; i++) {
            slots[i] = m.open(SamplingParams.greedy(), c.vocabSize());
            in.add(new CudaModel.Input(slots[i], rnd.ints(128, 0, c.vocabSize()).toArray(), true, CudaModel.Logits.NONE));
        }
        List<CudaModel.Output> out = m.step(in);
        int steps = 64;
        double[] ms = new double[steps];
        for (int k = 0; k < steps + 8; k++) {
            in.clear();
            for (int i = 0; i < b; i++) {
                in.add(new CudaModel.Input(slots[i], new int[]{Math.max(0, out.get(i).token())}, true, CudaModel.Logits.NONE));
            }
            long a = System.nanoTime();
            out = m.step(in);
            if (k >= 8) ms[k - 8] = (System.nanoTime() - a) / 1e6;
        }
        double gpuMs = m.options().decodeGraphs() ? m.decodeGraphMillis(b, 20) : Double.NaN;
        for (int sl : slots) m.close(sl);
        Arrays.sort(ms);
        double med = ms[steps / 2];
        numbers.put("decode_b" + b + "_graph_gpu_ms", gpuMs);
        double bytes = decodeBytes(c, b, 128 + 40);
        double roof = bytes / (copyTBps * 1e12) * 1e3;
        numbers.put("decode_b" + b + "_ms", med);
        numbers.put("decode_b" + b + "_tok_per_s", b / med * 1e3);
        numbers.put("decode_b" + b + "_of_roofline", roof / med);
        rows.add(new Row("decode " + (m.options().decodeGraphs() ? "graphs" : "eager"), "batch " + b, med * 1e3,
                BenchSuite.fmt("%.0f tok/s", b / med * 1e3), BenchSuite.pct(roof / med),
                BenchSuite.fmt("%.3f GB/step, roofline %.3f ms at %.2f TB/s; graph alone %.3f ms on the GPU", bytes / 1e9, roof,
                        copyTBps, gpuMs)));
    }

    private double measureGemmCeiling(Stream s, GpuTimer timer) {
        int n = 8192;
        try (Gemm gemm = new Gemm(gpu); DeviceBuffer x = gpu.allocate(2L * n * n, "gemm.x"); DeviceBuffer w = gpu.allocate(2L * n * n, "gemm.w");
             DeviceBuffer y = gpu.allocate(2L * n * n, "gemm.y")) {
            x.fill16((short) 0x3c00, s);
            w.fill16((short) 0x3c00, s);
            double ms = timer.medianMillis(() -> gemm.matmul(s, x.address(), w.address(), y.address(), n, n, n), 3, 10);
            double tflops = 2.0 * n * n * n / (ms * 1e-3) / 1e12;
            numbers.put("gemm_TFLOPs", tflops);
            rows.add(new Row("bf16 GEMM (ceiling)", n + "^3", ms * 1e3, BenchSuite.fmt("%.0f TFLOP/s", tflops), "100%", "cuBLASLt"));
            return tflops;
        }
    }

    /** Parameters one token multiplies through (attention/GDN projections, router, top-k + shared experts or the dense MLP). */
    static double activeParamsPerToken(ModelConfig c, int expertsTouched) {
        double h = c.hiddenSize(), p = 0;
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            if (c.layerType(l) == LayerType.LINEAR_ATTENTION) {
                p += h * (2.0 * c.linearKeyDim() + 2.0 * c.linearValueDim()) + h * 2 * c.linearNumValueHeads()
                        + (double) c.linearValueDim() * h + c.convDim() * (double) c.linearConvKernelDim();
            } else {
                double hd = c.headDim();
                p += h * c.numAttentionHeads() * 2 * hd + h * 2 * c.numKeyValueHeads() * hd + c.numAttentionHeads() * hd * h;
            }
            if (c.isMoeLayer(l)) {
                p += h * c.numExperts() + h + expertsTouched * 3.0 * h * c.moeIntermediateSize()
                        + 3.0 * h * c.sharedExpertIntermediateSize();
            } else {
                p += 3.0 * h * c.intermediateSize();
            }
        }
        return p + h * c.vocabSize();
    }

    /** Prefill FLOPs of one sequence of t tokens: 2·active params per token, causal attention, the chunked delta rule. */
    static double prefillFlops(ModelConfig c, int t) {
        double flops = 2.0 * t * activeParamsPerToken(c, c.numExpertsPerTok());
        int attn = c.countLayers(LayerType.FULL_ATTENTION), gdn = c.countLayers(LayerType.LINEAR_ATTENTION);
        flops += attn * 4.0 * c.numAttentionHeads() * c.headDim() * (double) t * t / 2;
        // the chunked delta rule's dense products: 5.24 MFLOP per token at Hv 32, dk = dv = 128 (GdnChunkBench), scaled
        flops += gdn * (double) t * 5.24e6 * c.linearNumValueHeads() * c.linearKeyHeadDim() * c.linearValueHeadDim() / (32.0 * 128 * 128);
        return flops;
    }

    /**
     * Bytes one decode step must read or write for a batch of b sequences of about {@code context} tokens: every weight
     * the batch touches once (experts: the expected number of distinct ones), the GDN state read and written, the KV
     * cache read, the lm_head.
     */
    static double decodeBytes(ModelConfig c, int b, int context) {
        double e = c.numExperts(), k = c.numExpertsPerTok();
        int touched = (int) Math.round(e * (1 - Math.pow(1 - k / e, b)));
        double bytes = 2 * activeParamsPerToken(c, touched);
        int gdn = c.countLayers(LayerType.LINEAR_ATTENTION), attn = c.countLayers(LayerType.FULL_ATTENTION);
        bytes += b * gdn * 2.0 * (4.0 * c.linearNumValueHeads() * c.linearKeyHeadDim() * c.linearValueHeadDim()
                + 2.0 * c.convDim() * (c.linearConvKernelDim() - 1));
        bytes += b * attn * 2.0 * 2 * c.numKeyValueHeads() * c.headDim() * (double) context;
        return bytes;
    }

    @Override
    public List<Row> rows() {
        return rows;
    }

    @Override
    public Map<String, Double> numbers() {
        return numbers;
    }
}
