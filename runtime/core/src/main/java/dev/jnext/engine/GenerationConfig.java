package dev.jnext.engine;

import dev.jnext.backend.SamplingParams;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jnext.JnextException;
import dev.jnext.json.JsonFiles;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * A checkpoint's {@code generation_config.json}: its end-of-sequence ids and the sampling defaults its
 * authors recommend (used when the caller does not choose). Every field is optional.
 *
 * @param eosTokenIds       {@code eos_token_id} (an id or a list); {@link EosTokens} adds config.json's and the
 *                          tokenizer's
 * @param temperature       {@code temperature}
 * @param topK              {@code top_k}
 * @param topP              {@code top_p}
 * @param minP              {@code min_p}
 * @param repetitionPenalty {@code repetition_penalty}
 * @param doSample          {@code do_sample}: false means greedy whatever the other values say
 */
public record GenerationConfig(List<Integer> eosTokenIds, Optional<Float> temperature, Optional<Integer> topK,
                               Optional<Float> topP, Optional<Float> minP, Optional<Float> repetitionPenalty,
                               Optional<Boolean> doSample) {

    /** No file: no ids, no defaults. */
    public static GenerationConfig none() {
        return new GenerationConfig(List.of(), Optional.empty(), Optional.empty(), Optional.empty(), Optional.empty(),
                Optional.empty(), Optional.empty());
    }

    /**
     * Reads {@code dir/generation_config.json}; a missing file gives {@link #none()}.
     *
     * @param dir the checkpoint folder
     * @return the file's values
     * @throws JnextException when the file is not JSON or a field has the wrong type (the message names both)
     */
    public static GenerationConfig read(Path dir) {
        Path file = dir.resolve("generation_config.json");
        if (!Files.isRegularFile(file)) return none();
        JsonNode n = JsonFiles.read(file); // strict: UTF-8 (a bad byte's offset named), one value, no duplicate keys
        List<Integer> eos = new ArrayList<>();
        JsonNode e = n.path("eos_token_id");
        if (e.isInt()) eos.add(e.asInt());
        else if (e.isArray()) for (JsonNode x : e) {
            if (!x.isInt()) throw new JnextException(file + ": eos_token_id must be an integer or a list of integers, got " + e);
            eos.add(x.asInt());
        } else if (!e.isMissingNode() && !e.isNull()) {
            throw new JnextException(file + ": eos_token_id must be an integer or a list of integers, got " + e);
        }
        return new GenerationConfig(List.copyOf(eos), number(n, "temperature", file).map(Double::floatValue),
                number(n, "top_k", file).map(Double::intValue), number(n, "top_p", file).map(Double::floatValue),
                number(n, "min_p", file).map(Double::floatValue), number(n, "repetition_penalty", file).map(Double::floatValue),
                n.path("do_sample").isBoolean() ? Optional.of(n.path("do_sample").asBoolean()) : Optional.empty());
    }

    /**
     * Sampling parameters: each value the caller gives (non-null) wins, the others come from this file, else off
     * (greedy). {@code do_sample: false} makes the default temperature 0.
     */
    public SamplingParams sampling(Float temperature, Integer topK, Float topP, Float minP, Float repetitionPenalty,
                                   Float presencePenalty, long seed) {
        boolean sample = doSample.orElse(true);
        float t = temperature != null ? temperature : sample ? this.temperature.orElse(0f) : 0f;
        return new SamplingParams(t,
                topK != null ? topK : this.topK.orElse(0),
                topP != null ? topP : this.topP.orElse(1f),
                minP != null ? minP : this.minP.orElse(0f),
                repetitionPenalty != null ? repetitionPenalty : this.repetitionPenalty.orElse(1f),
                presencePenalty != null ? presencePenalty : 0f, seed);
    }

    private static Optional<Double> number(JsonNode n, String field, Path file) {
        JsonNode v = n.path(field);
        if (v.isMissingNode() || v.isNull()) return Optional.empty();
        if (!v.isNumber()) throw new JnextException(file + ": " + field + " must be a number, got " + v);
        return Optional.of(v.asDouble());
    }
}
