package dev.jnext.bench;

import dev.jnext.backend.PrefillMode;

import dev.jnext.cuda.CudaModel;
import dev.jnext.cuda.CudaOptions;
import dev.jnext.cuda.StepProfile;
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
import java.util.List;
import java.util.SplittableRandom;

/**
 * {@code jnext bench model}: whole-model prefill and decode throughput on a checkpoint, llama-bench style. Each row is
 * the median wall time of a full {@link CudaModel#step} (metadata upload, launches or graph replay, sampling, the
 * read-back of the sampled ids) and its share of a roofline computed from the checkpoint's geometry with the copy and
 * GEMM ceilings measured in the same run: decode steps are bound by the bytes they must read (the weights the batch
 * touches, the GDN state read and written, the KV cache), prefill steps by their FLOPs.
 */
public final class ModelBench extends GpuBenchSuite {
    private final Path model;
    private final CudaOptions options;
    private final List<PrefillMode> modes;
    private final int[] prefill;
    private final int[] prefillSeqs;
    private final int[] decodeBatch;
    private final boolean profile;

    /**
     * @param modes       prefill executors to compare (each loads the model once; decode runs with the first)
     * @param prefill     prefill token counts per step
     * @param prefillSeqs how many sequences share each step's tokens (1 = one sequence of all of them)
     */
    public ModelBench(Gpu gpu, Path model, CudaOptions options, List<PrefillMode> modes, int[] prefill, int[] prefillSeqs,
                      int[] decodeBatch) {
        this(gpu, model, options, modes, prefill, prefillSeqs, decodeBatch, false);
    }

    /** As above; {@code profile}: also the step profile (issue 23) of each decode batch and prefill size. */
    public ModelBench(Gpu gpu, Path model, CudaOptions options, List<PrefillMode> modes, int[] prefill, int[] prefillSeqs,
                      int[] decodeBatch, boolean profile) {
        super(gpu);
        this.profile = profile;
        this.model = model;
        this.options = options;
        this.modes = List.copyOf(modes);
        this.prefill = prefill.clone();
        this.prefillSeqs = prefillSeqs.clone();
        this.decodeBatch = decodeBatch.clone();
    }

    @Override
    public void runAll() {
        double gemmTflops;
        try (Stream s = gpu.createStream(); GpuTimer timer = new GpuTimer(gpu, s)) {
            measureCopyCeiling(s, timer);
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
                    if (profile) {
                        for (int b : decodeBatch) decodeProfile(cm, b, copyTBps, gemmTflops);
                        for (int t : prefill) prefillProfile(cm, t, copyTBps, gemmTflops);
                    }
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
        int[] slots = new int[b];
        List<CudaModel.Output> out = openPrefilled(m, slots, b);
        int steps = 64;
        double[] ms = new double[steps];
        for (int k = 0; k < steps + 8; k++) {
            List<CudaModel.Input> in = nextInputs(slots, out);
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

    /** Opens {@code slots.length} greedy sequences, prefills 128 random tokens into each; returns the step's outputs. */
    private static List<CudaModel.Output> openPrefilled(CudaModel m, int[] slots, long seed) {
        int vocab = m.config().vocabSize();
        SplittableRandom rnd = new SplittableRandom(seed);
        List<CudaModel.Input> in = new ArrayList<>();
        for (int i = 0; i < slots.length; i++) {
            slots[i] = m.open(SamplingParams.greedy(), vocab);
            in.add(new CudaModel.Input(slots[i], rnd.ints(128, 0, vocab).toArray(), true, CudaModel.Logits.NONE));
        }
        return m.step(in);
    }

    /** One decode step's inputs: each slot's last sampled token. */
    private static List<CudaModel.Input> nextInputs(int[] slots, List<CudaModel.Output> out) {
        List<CudaModel.Input> in = new ArrayList<>(slots.length);
        for (int i = 0; i < slots.length; i++) {
            in.add(new CudaModel.Input(slots[i], new int[]{Math.max(0, out.get(i).token())}, true, CudaModel.Logits.NONE));
        }
        return in;
    }

    /** Step profile of a decode step of {@code b} sequences of about 136 tokens: per-op medians of 5 instrumented steps. */
    private void decodeProfile(CudaModel m, int b, double copyTBps, double gemmTflops) {
        ModelConfig c = m.config();
        int[] slots = new int[b];
        List<CudaModel.Output> out = openPrefilled(m, slots, b + 7L);
        List<List<StepProfile.OpTime>> runs = new ArrayList<>();
        for (int k = 0; k < 8; k++) {
            List<CudaModel.Input> in = nextInputs(slots, out);
            if (k < 3) {
                out = m.step(in);
            } else {
                runs.add(m.profile(in));  // it samples too, but returns times only: the next step gets a fixed token
                out = java.util.Collections.nCopies(b, new CudaModel.Output(1, null));
            }
        }
        for (int sl : slots) m.close(sl);
        double e = c.numExperts(), k = c.numExpertsPerTok();
        int touched = e == 0 ? 0 : (int) Math.round(e * (1 - Math.pow(1 - k / e, b)));
        List<StepProfileTable.KindRow> kinds = StepProfileTable.rows(median(runs), c, b, b, 128 + 8, b, touched);
        rows.addAll(StepProfileTable.benchRows("profile decode b" + b, kinds, true, copyTBps, gemmTflops, numbers, "profile_decode_b" + b));
    }

    /** Step profile of a prefill step of {@code t} tokens of one fresh sequence: per-op medians of 3 instrumented steps. */
    private void prefillProfile(CudaModel m, int t, double copyTBps, double gemmTflops) {
        ModelConfig c = m.config();
        SplittableRandom rnd = new SplittableRandom(t * 17L);
        List<List<StepProfile.OpTime>> runs = new ArrayList<>();
        for (int rep = 0; rep < 4; rep++) {
            int slot = m.open(SamplingParams.greedy(), c.vocabSize());
            List<CudaModel.Input> in = List.of(new CudaModel.Input(slot, rnd.ints(t, 0, c.vocabSize()).toArray(), true, CudaModel.Logits.NONE));
            if (rep == 0) m.step(in);  // warm-up at this shape
            else runs.add(m.profile(in));
            m.close(slot);
        }
        double e = c.numExperts(), k = c.numExpertsPerTok();
        int touched = e == 0 ? 0 : (int) Math.round(e * (1 - Math.pow(1 - k / e, t)));
        List<StepProfileTable.KindRow> kinds = StepProfileTable.rows(median(runs), c, t, 1, t, 1, touched);
        rows.addAll(StepProfileTable.benchRows("profile prefill " + t, kinds, false, copyTBps, gemmTflops, numbers, "profile_prefill_" + t));
    }

    /** Per-op median over runs of the same plan. */
    static List<StepProfile.OpTime> median(List<List<StepProfile.OpTime>> runs) {
        List<StepProfile.OpTime> out = new ArrayList<>();
        List<StepProfile.OpTime> first = runs.getFirst();
        for (int i = 0; i < first.size(); i++) {
            double[] t = new double[runs.size()];
            for (int r = 0; r < runs.size(); r++) t[r] = runs.get(r).get(i).millis();
            Arrays.sort(t);
            out.add(new StepProfile.OpTime(first.get(i).name(), first.get(i).layer(), t[t.length / 2]));
        }
        return out;
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
}
