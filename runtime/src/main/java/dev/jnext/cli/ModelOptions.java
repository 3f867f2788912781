package dev.jnext.cli;

import dev.jnext.JnextException;
import dev.jnext.exec.Backends;
import dev.jnext.exec.CudaOptions;
import dev.jnext.model.ModelConfig;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The options every command that runs a model shares, spelled and checked the same everywhere: {@code --model},
 * {@code --tokenizer} and {@code --device}. A command declares {@code @Mixin ModelOptions modelOptions;} and, before
 * any work, calls {@link #modelDir()}, {@link #tokenizerDir()} (when it needs text) and {@link #device()}; each
 * throws a {@link JnextException} whose one-line message names the option and the folder.
 */
public final class ModelOptions {

    /** Where the forward pass runs. */
    public enum Device { auto, cpu, cuda }

    @Option(names = "--model", required = true, paramLabel = "DIR", order = 1,
            description = "Hugging Face checkpoint folder (config.json and *.safetensors).")
    Path model;

    @Option(names = "--tokenizer", paramLabel = "DIR", order = 2,
            description = "Folder with tokenizer.json (and tokenizer_config.json for the chat template); default: the --model folder.")
    Path tokenizer;

    @Option(names = "--device", defaultValue = "auto", paramLabel = "DEVICE", order = 90,
            description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}: the GPU when a CUDA driver is present and the kernels support the checkpoint's geometry, else the CPU).")
    Device device = Device.auto;

    @Option(names = "--graphs", defaultValue = "eager", paramLabel = "MODE", order = 91,
            description = "How prefill runs on CUDA: eager, piecewise (one CUDA graph per token bucket for everything but the attention and linear-attention cores, captured on first use) or gdn-layer-eager (piecewise with the whole Gated DeltaNet layer eager); bench model takes a comma-separated list (default: ${DEFAULT-VALUE}).")
    String graphs = "eager";

    @Option(names = "--decode-graphs", defaultValue = "on", paramLabel = "ON", order = 92,
            description = "Replay one CUDA graph per decode batch size on CUDA: on or off (default: ${DEFAULT-VALUE}).")
    String decodeGraphs = "on";

    /** The CUDA runner's options with this command line's graph switches (checked; one prefill mode). */
    public CudaOptions cudaOptions(CudaOptions base) {
        List<CudaOptions.PrefillMode> modes = prefillModes();
        if (modes.size() != 1) throw new JnextException("--graphs takes one mode here, got \"" + graphs + "\"");
        return base.withPrefill(modes.getFirst()).withDecodeGraphs(decodeGraphsOn()).withLazyCapture(true);
    }

    /** The {@code --graphs} modes (bench model compares several: a comma-separated list). */
    public List<CudaOptions.PrefillMode> prefillModes() {
        List<CudaOptions.PrefillMode> out = new java.util.ArrayList<>();
        for (String g : graphs.split(",", -1)) out.add(BenchModelCommand.prefillMode(g.trim()));
        return out;
    }

    public boolean decodeGraphsOn() {
        if (!decodeGraphs.equals("on") && !decodeGraphs.equals("off")) {
            throw new JnextException("--decode-graphs must be on or off, got \"" + decodeGraphs + "\"");
        }
        return decodeGraphs.equals("on");
    }

    private void checkGraphs() {
        prefillModes();
        decodeGraphsOn();
    }

    /** The {@code --model} folder, checked to exist and to hold config.json (and the graph switches checked). */
    public Path modelDir() {
        checkGraphs();
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
        return folderWith("--model", modelDir(), "tokenizer.json",
                " (synthetic checkpoints have none); pass --tokenizer DIR");
    }

    /** The device asked for (checked by picocli: auto, cpu or cuda). */
    public Device device() {
        return device;
    }

    /**
     * Where the forward pass of {@code config} runs: cpu and cuda as asked, auto the GPU when a CUDA driver, a Hopper GPU
     * and a geometry the kernels support are present; {@code why} receives the reason when auto falls back to the CPU.
     */
    public Backends.Choice resolveDevice(ModelConfig config, java.util.function.Consumer<String> why) {
        return Backends.resolve(device.name(), config, why);
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
