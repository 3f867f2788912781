package dev.jnext.cli;

import dev.jnext.JnextException;
import dev.jnext.backend.BackendOptions;
import dev.jnext.backend.Backends;
import dev.jnext.backend.DeviceChoice;
import dev.jnext.engine.EngineOptions;
import dev.jnext.backend.LogitsSession;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.Npy;
import dev.jnext.model.weights.Checkpoint;
import dev.jnext.tokenizer.QwenTokenizer;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;

/** {@code jnext score}: per-token log-probabilities and perplexity of a token sequence under a model. */
@Command(name = "score", mixinStandardHelpOptions = true, sortOptions = false, sortSynopsis = false,
        description = "Print the per-token log-probabilities and the perplexity of a text or of token ids under a model.")
public final class ScoreCommand implements Callable<Integer> {

    static final class Input {
        @Option(names = "--text", paramLabel = "TEXT", order = 10,
                description = "Text to score, tokenized with the --tokenizer folder's tokenizer.json (default: the --model folder's).")
        String text;

        @Option(names = "--ids", paramLabel = "IDS", order = 11, description = "Token ids to score, comma-separated (such as 9707,1879).")
        String ids;
    }

    @Spec
    CommandSpec spec;

    @Mixin
    ModelOptions modelOptions;

    @ArgGroup(exclusive = true, multiplicity = "1", order = 10)
    Input input;

    @Option(names = "--logits-out", paramLabel = "FILE", order = 20,
            description = "Also write the logits [tokens, vocab] as a float32 NumPy file (.npy).")
    Path logitsOut;

    @Option(names = "--decode-from", paramLabel = "N", order = 21,
            description = "Prefill the first N tokens, then feed the rest one decode step at a time (default: everything in prefill steps).")
    Integer decodeFrom;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        // every option is checked before anything is read or loaded
        int[] ids = input.ids != null ? parseIds(input.ids.split(",", -1)) : null;
        if (input.text != null && input.text.isEmpty()) throw new JnextException("--text is empty: nothing to score");
        if (logitsOut != null) {
            if (Files.isDirectory(logitsOut)) throw new JnextException("--logits-out " + logitsOut + ": is a folder; name a .npy file");
            Path parent = logitsOut.toAbsolutePath().getParent();
            if (parent != null && !Files.isDirectory(parent)) throw new JnextException("--logits-out " + logitsOut + ": no such folder " + parent);
        }
        if (decodeFrom != null && decodeFrom < 1) throw new JnextException("--decode-from must be at least 1, got " + decodeFrom);
        Path model = modelOptions.modelDir();
        Path tokenizerDir = input.text != null || modelOptions.hasTokenizerOption() ? modelOptions.tokenizerDir() : null;

        QwenTokenizer tokenizer = tokenizerDir == null ? null : QwenTokenizer.load(tokenizerDir);
        if (ids == null) ids = tokenizer.encode(input.text);
        if (ids.length == 0) throw new JnextException("nothing to score: the input has no tokens");
        long t0 = System.nanoTime();
        ModelConfig config = ModelConfig.load(model);
        DeviceChoice device = Backends.resolve(modelOptions.device(), config, why -> {
            err.println("jnext: --device auto: running on the CPU (" + why + ")");
            err.flush();
        });
        BackendOptions options = modelOptions.deviceOptions().apply(EngineOptions.defaults().withMaxSequences(1))
                .withDevice(device).withMaxStepTokens(SCORE_STEP_TOKENS).backendOptions();
        try (LogitsSession session = Backends.openLogits(model, options, why -> { })) {
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
                    checkFinite(logits, start, vocab, model);
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
            out.println("pos\ttoken_id\tlog_prob" + (tokenizer != null ? "\ttoken" : ""));
            double sum = 0;
            for (int t = 0; t < ids.length; t++) {
                String lp = t == 0 ? "-" : String.format("%.6f", logProbs[t]);
                String tok = tokenizer != null ? "\t" + printable(tokenizer.decode(new int[]{ids[t]})) : "";
                out.println(t + "\t" + ids[t] + "\t" + lp + tok);
                if (t > 0) sum += logProbs[t];
            }
            if (ids.length > 1) {
                double mean = sum / (ids.length - 1);
                out.printf("tokens: %d, scored: %d, mean log-prob: %.6f, perplexity: %.6f%n", ids.length,
                        ids.length - 1, mean, Math.exp(-mean));
            } else {
                out.println("tokens: 1 (perplexity needs at least 2 tokens)");
            }
            out.flush();
            err.printf("jnext: device %s; load %.2f s, forward %.2f s (%s%s)%n", session.device(), (t1 - t0) / 1e9,
                    (t2 - t1) / 1e9, Plural.of(ids.length, "token"),
                    prefill < ids.length ? ", " + Plural.of(ids.length - prefill, "decode step") : "");
            err.flush();
        }
        return 0;
    }

    /** Tokens of one scoring step: longer inputs go in several. */
    static final int SCORE_STEP_TOKENS = 4096;

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

    /**
     * Refuses logits with a NaN or an infinity instead of printing them: the message names the first non-finite weight of
     * the checkpoint, or says that the activations overflowed.
     */
    static void checkFinite(float[] logits, int firstPosition, int vocab, Path model) {
        for (int i = 0; i < logits.length; i++) {
            if (Float.isFinite(logits[i])) continue;
            throw new JnextException(model + ": the model produced a " + (Float.isNaN(logits[i]) ? "NaN" : "infinite")
                    + " logit at position " + (firstPosition + i / vocab) + " (token id " + i % vocab + "); "
                    + Checkpoint.firstNonFinite(model).map(w -> w + ": the checkpoint is corrupt")
                            .orElse("every weight is finite: the forward pass overflowed"));
        }
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
