package dev.jnext.cli;

import dev.jnext.JnextException;
import dev.jnext.engine.GenerationConfig;
import dev.jnext.backend.SamplingParams;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/**
 * The sampling flags, spelled the same on every command that samples: {@code --temperature}, {@code --top-k},
 * {@code --top-p}, {@code --min-p}, {@code --repetition-penalty}, {@code --presence-penalty}, {@code --seed}. A command
 * declares {@code @Mixin SamplingOptions sampling;}, calls {@link #validate()} before any work and
 * {@link #resolve(GenerationConfig, Path)} once it has read the checkpoint's generation_config.json: flags left out take
 * that file's values, else greedy.
 */
public final class SamplingOptions {

    @Option(names = "--temperature", paramLabel = "T", order = 50,
            description = "Sampling temperature; 0 is greedy (default: generation_config.json, else 0).")
    Float temperature;

    @Option(names = "--top-k", paramLabel = "K", order = 51,
            description = "Keep the K most likely tokens; 0 is off (default: generation_config.json, else 0).")
    Integer topK;

    @Option(names = "--top-p", paramLabel = "P", order = 52,
            description = "Keep the most likely tokens up to probability mass P, in (0, 1]; 1 is off (default: generation_config.json, else 1).")
    Float topP;

    @Option(names = "--min-p", paramLabel = "P", order = 53,
            description = "Drop tokens less likely than P times the most likely one, in [0, 1); 0 is off (default: generation_config.json, else 0).")
    Float minP;

    @Option(names = "--repetition-penalty", paramLabel = "R", order = 54,
            description = "Hugging Face's repetition penalty, > 0; 1 is off (default: generation_config.json, else 1).")
    Float repetitionPenalty;

    @Option(names = "--presence-penalty", paramLabel = "R", defaultValue = "0", order = 55,
            description = "Subtracted once from the logit of every token already generated; 0 is off (default: ${DEFAULT-VALUE}).")
    float presencePenalty;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", order = 56,
            description = "Seed of the sampling draws; the same seed gives the same text (default: ${DEFAULT-VALUE}).")
    long seed;

    /** Checks the flags that were given; every message names its flag. */
    public void validate() {
        if (temperature != null) check(Float.isFinite(temperature) && temperature >= 0, "--temperature must be >= 0 (0 = greedy), got " + temperature);
        if (topK != null) check(topK >= 0, "--top-k must be >= 0 (0 = off), got " + topK);
        if (topP != null) check(topP > 0 && topP <= 1, "--top-p must be in (0, 1], got " + topP);
        if (minP != null) check(minP >= 0 && minP < 1, "--min-p must be in [0, 1), got " + minP);
        if (repetitionPenalty != null) {
            check(Float.isFinite(repetitionPenalty) && repetitionPenalty > 0, "--repetition-penalty must be > 0 (1 = off), got " + repetitionPenalty);
        }
        check(Float.isFinite(presencePenalty), "--presence-penalty must be a finite number, got " + presencePenalty);
    }

    /**
     * The flags, with those left out taken from {@code g} (its values apply only when it samples), else greedy;
     * {@code modelDir} names the file when one of its values is out of range.
     */
    public SamplingParams resolve(GenerationConfig g, Path modelDir) {
        boolean sample = g.doSample().orElse(true);
        float t = temperature != null ? temperature : sample ? g.temperature().orElse(0f) : 0f;
        try {
            return new SamplingParams(t,
                    topK != null ? topK : g.topK().orElse(0),
                    topP != null ? topP : g.topP().orElse(1f),
                    minP != null ? minP : g.minP().orElse(0f),
                    repetitionPenalty != null ? repetitionPenalty : g.repetitionPenalty().orElse(1f),
                    presencePenalty, seed);
        } catch (JnextException e) {
            // the flags were checked by validate(), so the value came from the file
            throw new JnextException(modelDir.resolve("generation_config.json") + ": " + e.getMessage()
                    + " (a flag given on the command line overrides it)", e);
        }
    }

    /** One line for stderr: "greedy" or the parameters in force. */
    public static String describe(SamplingParams s) {
        if (s.isGreedy()) return "greedy" + (s.repetitionPenalty() != 1 ? " repetition-penalty=" + s.repetitionPenalty() : "");
        return String.format("temperature=%s top-k=%d top-p=%s min-p=%s repetition-penalty=%s presence-penalty=%s seed=%d",
                s.temperature(), s.topK(), s.topP(), s.minP(), s.repetitionPenalty(), s.presencePenalty(), s.seed());
    }

    private static void check(boolean ok, String message) {
        if (!ok) throw new JnextException(message);
    }
}
