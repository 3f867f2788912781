package dev.jnext.cuda;

import dev.jnext.backend.KvBudget;
import dev.jnext.backend.PrefillMode;

import dev.jnext.cpu.CpuSession;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jnext.model.Npy;
import dev.jnext.cpu.Qwen3NextModel;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.TestFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The whole CUDA forward against transformers (issue 8, §5a–c), on cases made on the GPU host in the same call:
 * `jnext synth` checkpoints and `src/reference/cuda_parity.py` logits in {@code $JNEXT_PARITY_DIR/<case>/}. The truth is
 * transformers in fp32 on the checkpoint's bf16 weights; bf16 moves random MoE models a lot, so the bar is relative to
 * transformers' own bf16 run: jnext's mean KL to the truth at most 1.25× transformers-bf16's, top-1 agreement at most
 * 2 points lower — for a full prefill, and for a prefill of N tokens followed by single-token decode steps (decode
 * graphs). Decode vs re-prefill (sglang's accuracy test): mean KL ≤ 0.0025, or ≤ 1.25× transformers' own figure where
 * that is larger. Figures go to {@code $JNEXT_RESULTS_DIR/cuda-parity.json}.
 */
@Tag("gpu")
class CudaForwardParityGpuTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final ArrayNode RESULTS = JSON.createArrayNode();
    static final double KL_FLOOR = 1e-6;

    @TestFactory
    Stream<DynamicTest> everyCase() throws IOException {
        String dirEnv = System.getenv("JNEXT_PARITY_DIR");
        if (dirEnv == null) fail("JNEXT_PARITY_DIR is not set: run src/reference/cuda_parity.py first (src/device/pack-and-run.sh --parity)");
        List<Path> cases;
        try (Stream<Path> s = Files.list(Path.of(dirEnv))) {
            cases = s.filter(p -> Files.isRegularFile(p.resolve("meta.json"))).sorted().toList();
        }
        if (cases.isEmpty()) fail("no parity cases under " + dirEnv);
        return cases.stream().map(c -> DynamicTest.dynamicTest(c.getFileName().toString(), () -> runCase(c)));
    }

    static void runCase(Path dir) throws IOException {
        JsonNode meta = JSON.readTree(dir.resolve("meta.json").toFile());
        Path ckpt = Path.of(meta.get("checkpoint").asText());
        int b = meta.get("B").asInt(), p = meta.get("P").asInt(), n = meta.get("N").asInt();
        int[] ids = Npy.read(dir.resolve("ids.npy")).ints();
        float[] truth = Npy.read(dir.resolve("truth.npy")).floats();
        float[] hfPrefill = Npy.read(dir.resolve("hf_bf16_prefill.npy")).floats();
        float[] hfDecode = Npy.read(dir.resolve("hf_bf16_decode.npy")).floats();
        int vocab = truth.length / (b * p);

        ObjectNode r = RESULTS.addObject();
        r.put("case", dir.getFileName().toString());
        List<String> failures = new ArrayList<>();
        float[] eagerPrefill = null;
        // the default chunked delta rule (bf16 tensor-core operands), piecewise graphs, and the fp32 token-by-token delta rule
        // for prefill, which is what decode steps use: sglang's decode-vs-prefill bar (§5c) is judged on the last one, the
        // figures of the others are recorded (the chunked rule's bf16 operands make prefill and decode differ more)
        record Variant(String name, PrefillMode mode, boolean fp32Gdn) {}
        for (Variant v : List.of(new Variant("eager", PrefillMode.EAGER, false),
                new Variant("piecewise", PrefillMode.PIECEWISE, false),
                new Variant("eager-fp32-gdn-prefill", PrefillMode.EAGER, true))) {
            float[][] got = runJnext(dir, ckpt, ids, b, p, n, vocab, v.mode(), v.fp32Gdn());
            if (eagerPrefill == null) eagerPrefill = got[0];
            failures.addAll(judge(r.putObject(v.name()), dir.getFileName() + " " + v.name(), meta, truth, hfPrefill, hfDecode, got[0], got[1], b, p, n, vocab, v.fp32Gdn()));
        }
        float[] prefill = eagerPrefill;
        if (vocab * (long) b * p < 400_000_000L && smallModel(ckpt)) {
            // the fp32 CPU reference on the same ids: its distance to the truth checks the truth itself
            float[] cpu = new float[b * p * vocab];
            try (Qwen3NextModel m = Qwen3NextModel.load(ckpt)) {
                for (int i = 0; i < b; i++) {
                    try (CpuSession s = new CpuSession(m)) {
                        int[] seq = Arrays.copyOfRange(ids, i * p, (i + 1) * p);
                        for (int start = 0; start < p; start += 256) {
                            int end = Math.min(p, start + 256);
                            float[] l = s.extendAll(Arrays.copyOfRange(seq, start, end));
                            System.arraycopy(l, 0, cpu, (i * p + start) * vocab, l.length);
                        }
                    }
                }
            }
            put(r, "jnext_cpu_vs_truth", LogitStats.compare(truth, 0, cpu, 0, b * p, vocab));
            put(r, "jnext_cuda_vs_cpu", LogitStats.compare(cpu, 0, prefill, 0, b * p, vocab));
            System.out.println(dir.getFileName() + ": jnext CPU (fp32) vs truth " + LogitStats.compare(truth, 0, cpu, 0, b * p, vocab)
                    + "; jnext CUDA vs jnext CPU " + LogitStats.compare(cpu, 0, prefill, 0, b * p, vocab));
        }
        writeResults();
        assertTrue(failures.isEmpty(), String.join("\n", failures));
    }

    /** jnext's logits for the case in one prefill mode: {full prefill [b·p·vocab], decode rows [b·(p−n)·vocab]}. */
    private static float[][] runJnext(Path dir, Path ckpt, int[] ids, int b, int p, int n, int vocab, PrefillMode mode,
                                      boolean fp32Gdn) {
        int d = p - n;
        float[] prefill = new float[b * p * vocab];
        float[] decode = new float[b * d * vocab];
        long t0 = System.nanoTime();
        int tokens = Math.max(1024, b * p);  // the fixtures' cases: 1,024 (the sweep's longer prompts: all of them)
        try (CudaModel model = CudaModel.load(ckpt, CudaOptions.defaults().withMaxSequences(4).withMaxStepTokens(tokens)
                .withMaxContext(Math.max(1024, p)).withMaxLogitRows(tokens).withKvBudget(new KvBudget.Tokens(Math.max(8192, 2L * b * p)))
                .withPrefill(mode).withMaxPrefillBucket(Math.min(8192, tokens)).withLazyCapture(true).withFp32GdnPrefill(fp32Gdn), x -> {})) {
            long t1 = System.nanoTime();
            // full prefill: both sequences in one step
            int[] s0 = new int[b];
            for (int i = 0; i < b; i++) s0[i] = model.open(dev.jnext.cuda.kernels.SamplingKernel.RowParams.greedy(), vocab, 0);
            List<CudaModel.Input> in = new ArrayList<>();
            for (int i = 0; i < b; i++) in.add(new CudaModel.Input(s0[i], Arrays.copyOfRange(ids, i * p, (i + 1) * p), false, CudaModel.Logits.ALL));
            List<CudaModel.Output> out = model.step(in);
            for (int i = 0; i < b; i++) System.arraycopy(out.get(i).logits(), 0, prefill, i * p * vocab, p * vocab);
            for (int s : s0) model.close(s);
            // prefill N, then single-token steps (decode graphs)
            int[] s1 = new int[b];
            for (int i = 0; i < b; i++) s1[i] = model.open(dev.jnext.cuda.kernels.SamplingKernel.RowParams.greedy(), vocab, 0);
            in.clear();
            for (int i = 0; i < b; i++) in.add(new CudaModel.Input(s1[i], Arrays.copyOfRange(ids, i * p, i * p + n), false, CudaModel.Logits.NONE));
            model.step(in);
            for (int t = n; t < p; t++) {
                in.clear();
                for (int i = 0; i < b; i++) in.add(new CudaModel.Input(s1[i], new int[]{ids[i * p + t]}, false, CudaModel.Logits.LAST));
                out = model.step(in);
                for (int i = 0; i < b; i++) System.arraycopy(out.get(i).logits(), 0, decode, (i * d + t - n) * vocab, vocab);
            }
            for (int s : s1) model.close(s);
            System.out.printf("%s %s%s: load %.1f s (%s), forward %.1f s%n", dir.getFileName(), mode, fp32Gdn ? " fp32-gdn" : "", (t1 - t0) / 1e9, model.deviceName(),
                    (System.nanoTime() - t1) / 1e9);
        }
        return new float[][]{prefill, decode};
    }

    /** Figures of one mode into {@code r}; returns the bars it misses. */
    private static List<String> judge(ObjectNode r, String label, JsonNode meta, float[] truth, float[] hfPrefill, float[] hfDecode,
                                      float[] prefill, float[] decode, int b, int p, int n, int vocab, boolean checkDecodeVsPrefill) {
        int d = p - n;
        LogitStats.Figures jPre = LogitStats.compare(truth, 0, prefill, 0, b * p, vocab);
        LogitStats.Figures hPre = LogitStats.compare(truth, 0, hfPrefill, 0, b * p, vocab);
        float[] truthDecodeRows = new float[b * d * vocab], prefillDecodeRows = new float[b * d * vocab];
        for (int i = 0; i < b; i++) {
            System.arraycopy(truth, (i * p + n) * vocab, truthDecodeRows, i * d * vocab, d * vocab);
            System.arraycopy(prefill, (i * p + n) * vocab, prefillDecodeRows, i * d * vocab, d * vocab);
        }
        LogitStats.Figures jDec = LogitStats.compare(truthDecodeRows, 0, decode, 0, b * d, vocab);
        LogitStats.Figures hDec = LogitStats.compare(truthDecodeRows, 0, hfDecode, 0, b * d, vocab);
        LogitStats.Figures jDvP = LogitStats.compare(prefillDecodeRows, 0, decode, 0, b * d, vocab);
        double hfDvP = meta.get("hf_bf16_decode_vs_prefill_kl").asDouble();
        double entropy = LogitStats.entropy(truth, b * p, vocab);

        r.put("truth_entropy_nats", entropy);
        put(r, "jnext_prefill", jPre);
        put(r, "hf_bf16_prefill", hPre);
        put(r, "jnext_decode", jDec);
        put(r, "hf_bf16_decode", hDec);
        r.put("jnext_decode_vs_prefill_kl", jDvP.meanKl());
        r.put("hf_bf16_decode_vs_prefill_kl", hfDvP);
        String summary = String.format("%s (entropy %.2f nats): prefill jnext %s vs transformers-bf16 %s; decode jnext %s vs "
                        + "transformers-bf16 %s; decode vs re-prefill KL jnext %.5f, transformers-bf16 %.5f",
                label, entropy, jPre, hPre, jDec, hDec, jDvP.meanKl(), hfDvP);
        System.out.println(summary);
        List<String> failures = new ArrayList<>();
        // KL figures of a near-deterministic case sit at ±1e-12 (summation noise): a floor keeps them comparable
        if (!(jPre.meanKl() <= Math.max(1.25 * hPre.meanKl(), KL_FLOOR))) failures.add("prefill KL over the bar: " + summary);
        if (!(jPre.top1() >= hPre.top1() - 0.02)) failures.add("prefill top-1 over the bar: " + summary);
        if (!(jDec.meanKl() <= Math.max(1.25 * hDec.meanKl(), KL_FLOOR))) failures.add("decode KL over the bar: " + summary);
        if (!(jDec.top1() >= hDec.top1() - 0.02)) failures.add("decode top-1 over the bar: " + summary);
        if (checkDecodeVsPrefill && !(jDvP.meanKl() <= Math.max(0.0025, 1.25 * hfDvP))) {
            failures.add("decode vs re-prefill KL over the bar: " + summary);
        }
        return failures;
    }

    private static boolean smallModel(Path ckpt) throws IOException {
        return JSON.readTree(ckpt.resolve("config.json").toFile()).get("hidden_size").asInt() <= 1024;
    }

    private static void put(ObjectNode r, String key, LogitStats.Figures f) {
        ObjectNode o = r.putObject(key);
        o.put("mean_kl", f.meanKl());
        o.put("top1", f.top1());
        o.put("positions", f.rows());
    }

    private static synchronized void writeResults() throws IOException {
        String out = System.getenv("JNEXT_RESULTS_DIR");
        if (out != null) JSON.writerWithDefaultPrettyPrinter().writeValue(Path.of(out, "cuda-parity.json").toFile(), RESULTS);
    }
}
