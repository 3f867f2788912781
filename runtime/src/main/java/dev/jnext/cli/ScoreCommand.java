package dev.jnext.cli;

import dev.jnext.JnextException;
import dev.jnext.exec.Backends;
import dev.jnext.exec.CpuSession;
import dev.jnext.exec.CudaModel;
import dev.jnext.exec.CudaOptions;
import dev.jnext.exec.CudaSession;
import dev.jnext.exec.LogitsSession;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.Npy;
import dev.jnext.model.Qwen3NextModel;
import dev.jnext.tokenizer.QwenTokenizer;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;

/** {@code jnext score}: per-token log-probabilities and perplexity of a token sequence under a model. */
@Command(name = "score", mixinStandardHelpOptions = true,
        description = "Per-token log-probabilities and the perplexity of a text or of token ids.")
public final class ScoreCommand implements Callable<Integer> {

    enum Device { cpu, cuda, auto }

    static final class Input {
        @Option(names = "--text", description = "text to score (tokenized with the model directory's tokenizer.json)")
        String text;

        @Option(names = "--ids", split = ",", description = "token ids to score, comma-separated")
        String[] ids;
    }

    @Option(names = "--model", required = true, description = "Hugging Face model directory (config.json + safetensors)")
    Path model;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    @Option(names = "--logits-out", description = "write the logits [T, vocab] as float32 .npy")
    Path logitsOut;

    @Option(names = "--device", defaultValue = "auto",
            description = "cpu, cuda or auto (default: ${DEFAULT-VALUE}: the GPU when a CUDA driver is present and the kernels support the checkpoint's geometry)")
    Device device;

    @Option(names = "--decode-from", description = "prefill the first N tokens, then feed the rest one decode step at a time (default: all in prefill)")
    Integer decodeFrom;

    @Override
    public Integer call() {
        if (decodeFrom != null && decodeFrom < 1) throw new JnextException("--decode-from must be at least 1, got " + decodeFrom);
        QwenTokenizer tokenizer = null;
        int[] ids;
        if (input.text != null) {
            if (!Files.isRegularFile(model.resolve("tokenizer.json"))) {
                throw new JnextException(model + ": no tokenizer.json, which --text needs (or pass --ids)");
            }
            tokenizer = QwenTokenizer.load(model);
            ids = tokenizer.encode(input.text);
        } else {
            ids = parseIds(input.ids);
        }
        if (ids.length == 0) throw new JnextException("nothing to score: the input has no tokens");
        long t0 = System.nanoTime();
        ModelConfig config = ModelConfig.load(model);
        Backends.Choice choice = Backends.resolve(device.name(), config,
                why -> System.err.println("jnext: --device auto: using the CPU (" + why + ")"));
        try (Backend b = open(choice)) {
            LogitsSession session = b.session();
            int vocab = config.vocabSize();
            long t1 = System.nanoTime();
            double[] logProbs = new double[ids.length];
            int prefill = decodeFrom == null ? ids.length : Math.min(decodeFrom, ids.length);
            Npy.FloatWriter writer = logitsOut == null ? null : new Npy.FloatWriter(logitsOut, ids.length, vocab);
            try {
                int chunk = session.maxTokensPerCall();
                for (int start = 0; start < ids.length; ) {
                    int end = start < prefill ? Math.min(prefill, start + chunk) : start + 1;
                    float[] logits = session.extendAll(Arrays.copyOfRange(ids, start, end));
                    if (writer != null) writer.write(logits, 0, logits.length);
                    for (int t = start; t < end; t++) {
                        if (t + 1 < ids.length) logProbs[t + 1] = logSoftmaxAt(logits, (t - start) * vocab, vocab, ids[t + 1]);
                    }
                    start = end;
                }
            } finally {
                if (writer != null) writer.close();
            }
            long t2 = System.nanoTime();
            System.out.println("pos\ttoken_id\tlog_prob" + (tokenizer != null ? "\ttoken" : ""));
            double sum = 0;
            for (int t = 0; t < ids.length; t++) {
                String lp = t == 0 ? "-" : String.format("%.6f", logProbs[t]);
                String tok = tokenizer != null ? "\t" + printable(tokenizer.decode(new int[]{ids[t]})) : "";
                System.out.println(t + "\t" + ids[t] + "\t" + lp + tok);
                if (t > 0) sum += logProbs[t];
            }
            if (ids.length > 1) {
                double mean = sum / (ids.length - 1);
                System.out.printf("tokens: %d, scored: %d, mean log-prob: %.6f, perplexity: %.6f%n", ids.length,
                        ids.length - 1, mean, Math.exp(-mean));
            } else {
                System.out.println("tokens: 1 (perplexity needs at least 2 tokens)");
            }
            System.err.printf("device: %s; load %.2f s, forward %.2f s (%d tokens%s)%n", b.name(), (t1 - t0) / 1e9,
                    (t2 - t1) / 1e9, ids.length, prefill < ids.length ? ", " + (ids.length - prefill) + " of them decode steps" : "");
        }
        return 0;
    }

    /** The loaded model and one session on it, closed together. */
    private record Backend(String name, LogitsSession session, AutoCloseable model) implements AutoCloseable {
        @Override
        public void close() {
            try (AutoCloseable m = model) {
                session.close();
            } catch (Exception e) {
                throw e instanceof RuntimeException r ? r : new JnextException("closing the model: " + e.getMessage(), e);
            }
        }
    }

    private Backend open(Backends.Choice choice) {
        if (choice == Backends.Choice.CPU) {
            Qwen3NextModel m = Qwen3NextModel.load(model);
            return new Backend("cpu", new CpuSession(m), m);
        }
        CudaModel m = CudaModel.load(model, CudaOptions.defaults().withMaxSequences(1).withMaxStepTokens(4096), bytes -> {});
        try {
            return new Backend(m.deviceName(), new CudaSession(m), m);
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    static int[] parseIds(String[] parts) {
        int[] ids = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                ids[i] = Integer.parseInt(parts[i].trim());
            } catch (NumberFormatException e) {
                throw new JnextException("--ids: \"" + parts[i] + "\" is not a token id");
            }
        }
        return ids;
    }

    /** log softmax(logits[offset .. offset+n))[target], in double. */
    static double logSoftmaxAt(float[] logits, int offset, int n, int target) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, logits[offset + i]);
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Math.exp(logits[offset + i] - max);
        return logits[offset + target] - max - Math.log(sum);
    }

    private static String printable(String s) {
        return s.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r");
    }
}
