package dev.jnext.backend;

import dev.jnext.model.ModelConfig;

import java.nio.file.Path;

/**
 * A model backend that can be opened by device: jnext's CPU reference and CUDA backends, found with {@link
 * java.util.ServiceLoader} so that the engine never names either (the module declares both; {@link Backends} picks).
 */
public interface BackendProvider {

    /** {@link DeviceChoice.Kind#CPU} or {@link DeviceChoice.Kind#CUDA}. */
    DeviceChoice.Kind kind();

    /**
     * Why this backend cannot run {@code config} on GPU {@code gpu} here (one line), or {@code null} when it can.
     * Never throws for a missing driver or GPU: that is a reason.
     */
    String unavailableReason(ModelConfig config, int gpu);

    /**
     * Opens the checkpoint in {@code model} for stepping.
     *
     * @param model   a Hugging Face checkpoint folder
     * @param options the resolved options ({@code options.device()} is of this provider's kind)
     * @return the backend; the caller closes it
     * @throws dev.jnext.JnextException when the checkpoint or the device cannot serve (nothing is left allocated)
     */
    ModelBackend open(Path model, BackendOptions options);

    /**
     * Opens one sequence over {@code model} whose logits the caller reads back (scoring, parity checks).
     *
     * @param model   a Hugging Face checkpoint folder
     * @param options the resolved options
     * @return the session; closing it frees the model as well
     */
    LogitsSession openLogits(Path model, BackendOptions options);
}
