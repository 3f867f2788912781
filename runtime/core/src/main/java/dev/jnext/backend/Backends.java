package dev.jnext.backend;

import dev.jnext.JnextException;
import dev.jnext.model.ModelConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.function.Consumer;

/** Picks a backend for a {@link DeviceChoice}: the user's, or for {@code auto} the GPU when it can run the model. */
public final class Backends {
    private static final Logger LOG = LoggerFactory.getLogger(Backends.class);
    private static volatile Map<DeviceChoice.Kind, BackendProvider> providers;

    private Backends() {}

    /** The provider of {@code kind} ({@code CPU} or {@code CUDA}). */
    public static BackendProvider provider(DeviceChoice.Kind kind) {
        Map<DeviceChoice.Kind, BackendProvider> m = providers;
        if (m == null) {
            m = new EnumMap<>(DeviceChoice.Kind.class);
            for (BackendProvider p : ServiceLoader.load(BackendProvider.class, Backends.class.getClassLoader())) m.putIfAbsent(p.kind(), p);
            providers = m;
        }
        BackendProvider p = m.get(kind);
        if (p == null) throw new JnextException("no " + kind.name().toLowerCase(java.util.Locale.ROOT) + " backend is on the module or class path");
        return p;
    }

    /**
     * Resolves {@code requested} for {@code config}: {@code cpu} and {@code cuda:N} as given, {@code auto} to {@code
     * cuda} when a CUDA driver, a Hopper GPU and a supported geometry are present, else {@code cpu}; {@code why}
     * receives a one-line reason when auto falls back to the CPU although a CUDA driver is present.
     */
    public static DeviceChoice resolve(DeviceChoice requested, ModelConfig config, Consumer<String> why) {
        if (requested.kind() != DeviceChoice.Kind.AUTO) return requested;
        String reason = provider(DeviceChoice.Kind.CUDA).unavailableReason(config, 0);
        if (reason == null) {
            LOG.debug("device auto: the GPU");
            return DeviceChoice.CUDA;
        }
        LOG.debug("device auto: the CPU ({})", reason);
        if (!reason.startsWith(NO_DRIVER)) why.accept(reason);  // without a driver the CPU is simply the device
        return DeviceChoice.CPU;
    }

    /** The start of the reason a CUDA provider gives when no driver is present. */
    public static final String NO_DRIVER = "no CUDA driver found";

    /** Why the CUDA backend cannot run {@code config} on GPU 0 here, or {@code null} when it can. */
    public static String cudaUnavailable(ModelConfig config) {
        return provider(DeviceChoice.Kind.CUDA).unavailableReason(config, 0);
    }

    /** Opens {@code model} on the device of {@code options} (auto resolved first; {@code why} as for {@link #resolve}). */
    public static ModelBackend open(Path model, BackendOptions options, Consumer<String> why) {
        DeviceChoice d = options.device();
        if (d.kind() == DeviceChoice.Kind.AUTO) d = resolve(d, ModelConfig.load(model), why);
        return provider(d.kind()).open(model, withDevice(options, d));
    }

    /** Opens one logits session over {@code model} on the device of {@code options} (auto resolved first). */
    public static LogitsSession openLogits(Path model, BackendOptions options, Consumer<String> why) {
        DeviceChoice d = options.device();
        if (d.kind() == DeviceChoice.Kind.AUTO) d = resolve(d, ModelConfig.load(model), why);
        return provider(d.kind()).openLogits(model, withDevice(options, d));
    }

    private static BackendOptions withDevice(BackendOptions o, DeviceChoice d) {
        return o.withDevice(d);
    }
}
