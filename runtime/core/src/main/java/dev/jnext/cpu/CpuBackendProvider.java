package dev.jnext.cpu;

import dev.jnext.JnextException;
import dev.jnext.backend.BackendOptions;
import dev.jnext.backend.BackendProvider;
import dev.jnext.backend.DeviceChoice;
import dev.jnext.backend.LogitsSession;
import dev.jnext.backend.ModelBackend;
import dev.jnext.backend.Quantization;
import dev.jnext.model.ModelConfig;

import java.nio.file.Path;

/** The CPU reference backend as a {@link BackendProvider}: {@link CpuBackend} for the engine, {@link CpuSession} for logits. */
public final class CpuBackendProvider implements BackendProvider {

    /** For {@link java.util.ServiceLoader}. */
    public CpuBackendProvider() {}

    @Override
    public DeviceChoice.Kind kind() {
        return DeviceChoice.Kind.CPU;
    }

    @Override
    public String unavailableReason(ModelConfig config, int gpu) {
        return null;
    }

    @Override
    public ModelBackend open(Path model, BackendOptions options) {
        refuseQuantization(model, options);
        return CpuBackend.open(model, options);
    }

    @Override
    public LogitsSession openLogits(Path model, BackendOptions options) {
        refuseQuantization(model, options);
        Qwen3NextModel m = Qwen3NextModel.load(model);
        try {
            return new CpuSession(m, true);
        } catch (RuntimeException | Error e) {
            m.close();
            throw e;
        }
    }

    /** The CPU backend is the exact reference of the checkpoint as stored: it quantizes nothing while loading. */
    static void refuseQuantization(Path model, BackendOptions options) {
        if (options.quantize() != Quantization.NONE) {
            throw new JnextException(model + ": quantization " + options.quantize() + " while loading is a CUDA backend "
                    + "feature (the FP8 expert kernels); the CPU backend runs the checkpoint as stored (quantization none)");
        }
    }
}
