package dev.jnext.cli;

import dev.jnext.JnextException;
import dev.jnext.model.SyntheticSource;
import dev.jnext.backend.DeviceChoice;
import dev.jnext.model.ModelConfig;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The options every command that runs a model shares, spelled and checked the same everywhere: {@code --model},
 * {@code --tokenizer} and {@code --device}. A command declares {@code @Mixin ModelOptions modelOptions;} and, before
 * any work, calls {@link #modelDir()}, {@link #tokenizerDir()} (when it needs text) and {@link #device()}; each
 * throws a {@link JnextException} whose one-line message names the option and the folder.
 */
public final class ModelOptions {
    /** What {@code --model} takes, said the same by every command that has it. */
    static final String MODEL_DESCRIPTION = "Hugging Face checkpoint folder (config.json and *.safetensors), or synthetic:PRESET "
            + "with any of layers=N, experts=N, dtype=bf16|fp8, seed=N, logit-scale=S appended after commas: the checkpoint "
            + "synth would write, generated in host memory (geometries larger than the disk).";

    @Option(names = "--model", required = true, paramLabel = "DIR", order = 1,
            description = MODEL_DESCRIPTION)
    Path model;

    @Option(names = "--tokenizer", paramLabel = "DIR", order = 2,
            description = "Folder with tokenizer.json (and tokenizer_config.json for the chat template); default: the --model folder.")
    Path tokenizer;

    @Mixin
    DeviceOptions deviceOptions = new DeviceOptions();

    public DeviceOptions deviceOptions() {
        return deviceOptions;
    }

    /** The device asked for ({@code --device}, checked). */
    public DeviceChoice device() {
        return deviceOptions.device();
    }

    /**
     * The {@code --model} folder, checked to exist and to hold config.json (and the graph switches checked); or a
     * synthetic model's name ({@link SyntheticSource}), checked to parse.
     */
    public Path modelDir() {
        deviceOptions.check();
        if (SyntheticSource.is(model)) {
            SyntheticSource.parse(model);
            return model;
        }
        return folderWith("--model", model, "config.json",
                "; --model must be a Hugging Face checkpoint folder (config.json and *.safetensors)");
    }

    /** Whether {@code --tokenizer} was given (else the model folder's tokenizer is used). */
    public boolean hasTokenizerOption() {
        return tokenizer != null;
    }

    /** The folder with tokenizer.json: {@code --tokenizer}, else the model folder; checked. */
    public Path tokenizerDir() {
        if (tokenizer != null) return folderWith("--tokenizer", tokenizer, "tokenizer.json", "");
        if (SyntheticSource.is(modelDir())) {
            throw new JnextException("--model " + model + ": a synthetic model has no tokenizer; pass --tokenizer DIR");
        }
        return folderWith("--model", modelDir(), "tokenizer.json",
                " (synthetic checkpoints have none); pass --tokenizer DIR");
    }

    /**
     * {@code dir}, checked to be a folder holding {@code file}; otherwise one message naming the option and the folder
     * ("--model /x: no such folder", "--model /x: the folder has no config.json; ...").
     */
    public static Path folderWith(String option, Path dir, String file, String hint) {
        if (!Files.exists(dir)) throw new JnextException(option + " " + dir + ": no such folder");
        if (!Files.isDirectory(dir)) throw new JnextException(option + " " + dir + ": not a folder");
        if (!Files.isRegularFile(dir.resolve(file))) {
            throw new JnextException(option + " " + dir + ": the folder has no " + file + hint);
        }
        return dir;
    }
}
