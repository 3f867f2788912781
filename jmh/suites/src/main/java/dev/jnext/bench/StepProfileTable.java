package dev.jnext.bench;

import dev.jnext.cuda.StepProfile.OpTime;
import dev.jnext.model.ModelConfig;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Issue 23's step profile as a table: the GPU time of every operation of an instrumented eager step ({@link OpTime})
 * summed per kind over the layers ("gdn core" × 36), with the bytes each kind must move and the FLOPs it must do — from
 * the checkpoint's geometry, as {@link ModelBench}'s roofline counts them — and what that makes of the copy and GEMM
 * ceilings measured in the same run. A decode step is judged by bytes, a prefill step by FLOPs.
 */
final class StepProfileTable {

    /** One kind: how many ops, their summed GPU time, bytes and FLOPs. */
    record KindRow(String kind, int count, double millis, double bytes, double flops) {}

    private StepProfileTable() {}

    /** "layer 7 residual + input norm 8" → "residual + input norm"; "embedding + input norm 0" → "embedding + input norm". */
    static String kind(String opName) {
        String k = opName.startsWith("layer ") ? opName.substring(opName.indexOf(' ', 6) + 1) : opName;
        return k.replaceFirst(" \\d+$", "");
    }

    /**
     * Rows per kind, in the order they first appear. {@code tokens}: the step's rows; {@code batch}: its sequences;
     * {@code context}: tokens each sequence holds after the step (what attention reads); {@code logitRows}: rows the
     * LM head computes; {@code expertsTouched}: distinct experts the step's tokens reach per MoE layer.
     */
    static List<KindRow> rows(List<OpTime> ops, ModelConfig c, int tokens, int batch, int context, int logitRows,
                              int expertsTouched) {
        Map<String, double[]> sums = new LinkedHashMap<>();
        for (OpTime op : ops) {
            String k = kind(op.name());
            double[] cost = cost(k, c, tokens, batch, context, logitRows, expertsTouched);
            double[] s = sums.computeIfAbsent(k, x -> new double[4]);
            s[0]++;
            s[1] += op.millis();
            s[2] += cost[0];
            s[3] += cost[1];
        }
        List<KindRow> out = new ArrayList<>();
        sums.forEach((k, s) -> out.add(new KindRow(k, (int) s[0], s[1], s[2], s[3])));
        return out;
    }

    /**
     * {bytes, FLOPs} of one op of {@code kind}: weights read once (bf16), activations read and written (bf16 rows of
     * the hidden size and the projections' widths), the GDN state (fp32, read and written), the KV cache read; FLOPs of
     * the products. Unknown kinds cost nothing (and show as such).
     */
    static double[] cost(String kind, ModelConfig c, int tokens, int batch, int context, int logitRows, int expertsTouched) {
        double h = c.hiddenSize(), t = tokens, act = 2.0 * t * h;
        double hk = c.linearNumKeyHeads(), hv = c.linearNumValueHeads(), dk = c.linearKeyHeadDim(), dv = c.linearValueHeadDim();
        double qkvzW = 2 * hk * dk + 2 * hv * dv, baW = 2 * hv;
        double nh = c.numAttentionHeads(), nkv = c.numKeyValueHeads(), hd = c.headDim();
        return switch (kind) {
            case "embedding + input norm" -> new double[] {3 * act, 0};
            case "post-attention norm", "residual + input norm", "residual + final norm" -> new double[] {4 * act + 2 * h, 0};
            case "gdn projections + split" -> new double[] {2 * h * (qkvzW + baW) + act + 2 * t * (qkvzW + baW) * 2,
                    2 * t * h * (qkvzW + baW)};
            case "gdn core" -> {
                double state = batch * (4.0 * hv * dk * dv * 2 + 2.0 * c.convDim() * (c.linearConvKernelDim() - 1) * 2);
                double io = 2 * t * (c.convDim() * 2.0 + hv * dv);
                // chunked prefill: 5.24 MFLOP per token at Hv 32, dk = dv = 128 (GdnChunkBench); a decode step ~6·dk·dv per head
                double flops = tokens > batch ? t * 5.24e6 * hv * dk * dv / (32.0 * 128 * 128) : t * hv * 6 * dk * dv;
                double conv = (double) c.convDim() * c.linearConvKernelDim();   // the depthwise conv1d's weights
                yield new double[] {state + io + 2 * conv, flops + 2 * t * conv};
            }
            case "gdn gated norm + out_proj" -> new double[] {2 * hv * dv * h + 2 * t * hv * dv * 2 + act, 2 * t * hv * dv * h};
            case "q/k/v projections" -> {
                double w = nh * 2 * hd + 2 * nkv * hd;
                yield new double[] {2 * h * w + act + 2 * t * w, 2 * t * h * w};
            }
            case "attention core" -> {
                double kv = 2.0 * batch * context * 2 * nkv * hd;
                double flops = tokens > batch ? 4 * nh * hd * (double) tokens * context / 2 : 4 * nh * hd * batch * context;
                yield new double[] {kv + 2 * t * (nh * 2 * hd + 2 * nkv * hd) + 2 * t * nh * hd, flops};
            }
            case "o_proj" -> new double[] {2 * nh * hd * h + 2 * t * nh * hd + act, 2 * t * nh * hd * h};
            case "moe" -> {
                double i = c.moeIntermediateSize(), is = c.sharedExpertIntermediateSize(), e = c.numExperts();
                double w = expertsTouched * 3 * h * i + 3 * h * is + h * (e + 1);
                double flops = 2 * t * (c.numExpertsPerTok() * 3 * h * i + 3 * h * is + h * (e + 1));
                yield new double[] {2 * w + 2 * act, flops};
            }
            case "mlp" -> new double[] {2 * 3 * h * c.intermediateSize() + 2 * act, 2 * t * 3 * h * c.intermediateSize()};
            case "lm_head" -> new double[] {2.0 * c.vocabSize() * h + 2.0 * logitRows * (h + c.vocabSize()),
                    2.0 * logitRows * c.vocabSize() * h};
            case "sampling" -> new double[] {2.0 * logitRows * c.vocabSize(), 0};
            default -> new double[] {0, 0};
        };
    }

    /** Bench rows: one per kind, then the step; {@code byBytes}: judged against the copy ceiling, else the GEMM one. */
    static List<BenchSuite.Row> benchRows(String label, List<KindRow> kinds, boolean byBytes, double copyTBps, double gemmTflops,
                                          Map<String, Double> numbers, String key) {
        double total = kinds.stream().mapToDouble(KindRow::millis).sum();
        List<BenchSuite.Row> out = new ArrayList<>();
        for (KindRow k : kinds) {
            double s = k.millis() * 1e-3;
            double gbps = k.bytes() / s / 1e9, tflops = k.flops() / s / 1e12;
            double of = byBytes ? gbps / (copyTBps * 1e3) : tflops / gemmTflops;
            String id = key + "_" + k.kind().replaceAll("[^a-z0-9]+", "_");
            numbers.put(id + "_ms", k.millis());
            numbers.put(id + "_share", k.millis() / total);
            numbers.put(id + (byBytes ? "_of_copy" : "_of_gemm"), of);
            out.add(new BenchSuite.Row(label, k.kind() + " ×" + k.count(), k.millis() * 1e3,
                    BenchSuite.fmt("%.0f GB/s, %.1f TFLOP/s", gbps, tflops), BenchSuite.pct(of),
                    BenchSuite.fmt("%.1f%% of the step; %.2f MB, %.3f GFLOP", 100 * k.millis() / total, k.bytes() / 1e6, k.flops() / 1e9)));
        }
        double bytes = kinds.stream().mapToDouble(KindRow::bytes).sum(), flops = kinds.stream().mapToDouble(KindRow::flops).sum();
        double of = byBytes ? bytes / (total * 1e-3) / (copyTBps * 1e12) : flops / (total * 1e-3) / (gemmTflops * 1e12);
        numbers.put(key + "_total_ms", total);
        numbers.put(key + (byBytes ? "_total_of_copy" : "_total_of_gemm"), of);
        out.add(new BenchSuite.Row(label, "whole step (sum)", total * 1e3, BenchSuite.fmt("%.2f MB, %.2f GFLOP", bytes / 1e6, flops / 1e9),
                BenchSuite.pct(of), byBytes ? "bytes vs the copy ceiling" : "FLOPs vs the GEMM ceiling"));
        return out;
    }
}
