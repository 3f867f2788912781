package dev.jnext.exec;

import dev.jnext.JnextException;
import dev.jnext.gpu.Cuda;
import dev.jnext.gpu.CudaException;
import dev.jnext.gpu.Device;
import dev.jnext.model.ModelConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Which backend runs a model: the user's choice, or for {@code auto} the GPU when a driver and a supported geometry are present. */
public final class Backends {
    private static final Logger LOG = LoggerFactory.getLogger(Backends.class);

    /** The PTX is built for compute_90 (Hopper); older GPUs cannot JIT it. */
    static final int MIN_COMPUTE_MAJOR = 9;

    /** Where the forward pass runs. */
    public enum Choice {
        /** The CPU reference backend ({@link CpuSession}, {@code dev.jnext.engine.CpuSequence}). */
        CPU,
        /** The CUDA runner ({@link CudaModel}, {@link CudaSession}). */
        CUDA
    }

    private Backends() {}

    /**
     * Resolves {@code requested} ("cpu", "cuda" or "auto") for {@code config}; {@code why} receives a one-line reason
     * when auto falls back to the CPU although a CUDA driver is present (without one, the CPU is simply the device).
     */
    public static Choice resolve(String requested, ModelConfig config, java.util.function.Consumer<String> why) {
        return switch (requested) {
            case "cpu" -> Choice.CPU;
            case "cuda" -> Choice.CUDA;
            case "auto" -> {
                if (!Cuda.driverPresent()) {
                    LOG.debug("device auto: the CPU (no CUDA driver)");
                    yield Choice.CPU;
                }
                String reason = cudaUnavailable(config);
                if (reason == null) {
                    LOG.debug("device auto: the GPU");
                    yield Choice.CUDA;
                }
                LOG.debug("device auto: the CPU although a CUDA driver is present: {}", reason);  // why: the caller's to tell
                why.accept(reason);
                yield Choice.CPU;
            }
            default -> throw new JnextException("--device must be cpu, cuda or auto, got \"" + requested + "\"");
        };
    }

    /** Why the CUDA backend cannot run {@code config} here, or {@code null} when it can. */
    public static String cudaUnavailable(ModelConfig config) {
        if (!Cuda.driverPresent()) return "no CUDA driver found";
        try {
            if (Cuda.deviceCount() < 1) return "the CUDA driver reports no GPU";
            Device d = Device.query(0);
            if (d.computeMajor() < MIN_COMPUTE_MAJOR) {
                return d.name() + " is sm_" + d.computeMajor() + d.computeMinor() + "; the kernels need sm_90 (Hopper) or newer";
            }
        } catch (CudaException e) {
            return "the CUDA driver is present but unusable: " + e.getMessage();
        }
        var v = CudaGeometry.violations(config);
        return v.isEmpty() ? null : "the CUDA kernels cannot run this geometry: " + String.join("; ", v);
    }
}
