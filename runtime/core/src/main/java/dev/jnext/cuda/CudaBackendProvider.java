package dev.jnext.cuda;

import dev.jnext.backend.BackendOptions;
import dev.jnext.backend.BackendProvider;
import dev.jnext.backend.Backends;
import dev.jnext.backend.DeviceChoice;
import dev.jnext.backend.LogitsSession;
import dev.jnext.backend.ModelBackend;
import dev.jnext.gpu.Cuda;
import dev.jnext.gpu.CudaException;
import dev.jnext.gpu.Device;
import dev.jnext.model.ModelConfig;

import java.nio.file.Path;

/** The CUDA backend as a {@link BackendProvider}: {@link CudaBackend} for the engine, {@link CudaSession} for logits. */
public final class CudaBackendProvider implements BackendProvider {

    /** The PTX is built for compute_90 (Hopper); older GPUs cannot JIT it. */
    static final int MIN_COMPUTE_MAJOR = 9;

    /** For {@link java.util.ServiceLoader}. */
    public CudaBackendProvider() {}

    @Override
    public DeviceChoice.Kind kind() {
        return DeviceChoice.Kind.CUDA;
    }

    @Override
    public String unavailableReason(ModelConfig config, int gpu) {
        if (!Cuda.driverPresent()) return Backends.NO_DRIVER;
        try {
            int n = Cuda.deviceCount();
            if (n < 1) return "the CUDA driver reports no GPU";
            if (gpu >= n) return "there is no GPU " + gpu + " (the CUDA driver reports " + n + ")";
            Device d = Device.query(gpu);
            if (d.computeMajor() < MIN_COMPUTE_MAJOR) {
                return d.name() + " is sm_" + d.computeMajor() + d.computeMinor() + "; the kernels need sm_90 (Hopper) or newer";
            }
        } catch (CudaException e) {
            return "the CUDA driver is present but unusable: " + e.getMessage();
        }
        var v = CudaGeometry.violations(config);
        return v.isEmpty() ? null : "the CUDA kernels cannot run this geometry: " + String.join("; ", v);
    }

    @Override
    public ModelBackend open(Path model, BackendOptions options) {
        return CudaBackend.open(model, CudaBackend.options(options), bytes -> { });
    }

    @Override
    public LogitsSession openLogits(Path model, BackendOptions options) {
        CudaModel m = CudaModel.load(model, CudaBackend.options(options), bytes -> { });
        try {
            return new CudaSession(m, true);
        } catch (RuntimeException | Error e) {
            m.close();
            throw e;
        }
    }
}
