package dev.jnext.cli;

import dev.jnext.backend.PrefillMode;
import dev.jnext.backend.Quantization;
import dev.jnext.backend.DeviceChoice;

import dev.jnext.JnextException;
import dev.jnext.engine.EngineOptions;
import dev.jnext.cuda.CudaOptions;
import dev.jnext.model.ModelConfig;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Where and how the forward pass runs, spelled the same on every command that runs a model ({@code generate},
 * {@code score}, {@code serve}, {@code bench model}, {@code bench serve}): {@code --device}, {@code --graphs},
 * {@code --decode-graphs}, {@code --quantize}. Part of {@link ModelOptions}; the serving commands declare it beside their own options.
 */
public final class DeviceOptions {

    @Option(names = "--device", defaultValue = "auto", paramLabel = "DEVICE", order = 90,
            description = "auto, cpu, cuda or cuda:N (GPU N) (default: ${DEFAULT-VALUE}: the GPU when a CUDA driver is present and the kernels support the checkpoint's geometry, else the CPU).")
    String device = "auto";

    @Option(names = "--graphs", defaultValue = "eager", paramLabel = "MODE", order = 91,
            description = "How prefill runs on CUDA: eager, piecewise (one CUDA graph per token bucket for everything but the attention and linear-attention cores) or gdn-layer-eager (piecewise with the whole Gated DeltaNet layer eager); bench model takes a comma-separated list (default: ${DEFAULT-VALUE}).")
    String graphs = "eager";

    @Option(names = "--decode-graphs", defaultValue = "on", paramLabel = "ON", order = 92,
            description = "Replay one CUDA graph per decode batch size on CUDA: on or off (default: ${DEFAULT-VALUE}).")
    String decodeGraphs = "on";

    @Option(names = "--quantize", defaultValue = "none", paramLabel = "Q", order = 93,
            description = "none, or fp8: block-quantize an unquantized checkpoint's routed and shared experts to fine-grained FP8 (128x128 blocks, e4m3, fp32 scales) while they stream to the GPU, so they take about half the memory and run on the FP8 expert kernels; CUDA only (default: ${DEFAULT-VALUE}: the checkpoint as stored; an FP8 checkpoint's experts stay FP8 either way).")
    String quantize = "none";

    /** The quantization asked for; a bad one is a {@link JnextException} naming {@code --quantize}. */
    public Quantization quantization() {
        try {
            return Quantization.parse(quantize);
        } catch (JnextException e) {
            throw new JnextException("--quantize must be none or fp8, got \"" + quantize + "\"");
        }
    }

    /** The device asked for; a bad one is a {@link JnextException} naming {@code --device}. */
    public DeviceChoice device() {
        try {
            return DeviceChoice.parse(device);
        } catch (JnextException e) {
            throw new JnextException("--device must be auto, cpu, cuda or cuda:N (a GPU index), got \"" + device + "\"");
        }
    }

    /** The CUDA runner's options with these switches (one prefill mode; graphs of a bucket captured on first use). */
    public CudaOptions cudaOptions(CudaOptions base) {
        List<PrefillMode> modes = prefillModes();
        if (modes.size() != 1) throw new JnextException("--graphs takes one mode here, got \"" + graphs + "\"");
        return base.withPrefill(modes.getFirst()).withDecodeGraphs(decodeGraphsOn()).withLazyCapture(true)
                .withQuantize(quantization());
    }

    /** The {@code --graphs} modes (bench model compares several: a comma-separated list). */
    public List<PrefillMode> prefillModes() {
        List<PrefillMode> out = new ArrayList<>();
        for (String g : graphs.split(",", -1)) {
            try {
                out.add(PrefillMode.parse(g.trim()));
            } catch (JnextException e) {
                throw new JnextException("--graphs must be eager, piecewise or gdn-layer-eager, got \"" + g.trim() + "\"");
            }
        }
        return out;
    }

    public boolean decodeGraphsOn() {
        if (!decodeGraphs.equals("on") && !decodeGraphs.equals("off")) {
            throw new JnextException("--decode-graphs must be on or off, got \"" + decodeGraphs + "\"");
        }
        return decodeGraphs.equals("on");
    }

    /** Checks the switches (before any work). */
    public void check() {
        device();
        prefillModes();
        decodeGraphsOn();
        quantization();
    }

    /** The engine's spelling of the same switches. */
    public EngineOptions apply(EngineOptions base) {
        List<PrefillMode> modes = prefillModes();
        if (modes.size() != 1) throw new JnextException("--graphs takes one mode here, got \"" + graphs + "\"");
        return base.withDevice(device()).withPrefillMode(modes.getFirst())
                .withDecodeGraphs(decodeGraphsOn()).withQuantize(quantization());
    }

}
