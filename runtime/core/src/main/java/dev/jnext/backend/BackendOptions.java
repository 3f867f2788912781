package dev.jnext.backend;

import dev.jnext.JnextException;

import java.util.Objects;

/**
 * What a {@link BackendProvider} is asked to open: the device, the CUDA graph switches, the sequence slots, the KV
 * budget and the step budget. The engine makes it from its {@code EngineOptions} (the one options type an application
 * sees); the CUDA backend translates it once into its runner's own settings.
 *
 * @param device        where to run ({@link DeviceChoice#AUTO} is resolved before a provider sees it)
 * @param prefillMode   how CUDA prefill steps run
 * @param decodeGraphs  whether CUDA decode steps replay one graph per batch bucket
 * @param maxSequences  sequence slots, at least 1
 * @param kvBudget      the KV budget
 * @param maxStepTokens most new tokens one step carries, at least {@code maxSequences}
 * @param prefixCache   prefix caching (honoured by the CPU backend; the CUDA backend has none yet and runs without it)
 * @param quantize      quantization applied while the checkpoint loads (CUDA; the CPU backend refuses anything but none)
 */
public record BackendOptions(DeviceChoice device, PrefillMode prefillMode, boolean decodeGraphs, int maxSequences,
                             KvBudget kvBudget, int maxStepTokens, PrefixCacheOptions prefixCache, Quantization quantize) {

    /** @throws NullPointerException naming a null part; {@link JnextException} for out-of-range numbers */
    public BackendOptions {
        Objects.requireNonNull(device, "device");
        Objects.requireNonNull(prefixCache, "prefixCache");
        Objects.requireNonNull(quantize, "quantize");
        Objects.requireNonNull(prefillMode, "prefillMode");
        Objects.requireNonNull(kvBudget, "kvBudget");
        if (maxSequences < 1) throw new JnextException("sequence slots must be at least 1, got " + maxSequences);
        if (maxStepTokens < maxSequences) {
            throw new JnextException("the step token budget (" + maxStepTokens + ") must hold one decode token of each of the "
                    + maxSequences + " sequence slots");
        }
    }

    /** The options with the checkpoint run as stored ({@link Quantization#NONE}). */
    public BackendOptions(DeviceChoice device, PrefillMode prefillMode, boolean decodeGraphs, int maxSequences,
                          KvBudget kvBudget, int maxStepTokens, PrefixCacheOptions prefixCache) {
        this(device, prefillMode, decodeGraphs, maxSequences, kvBudget, maxStepTokens, prefixCache, Quantization.NONE);
    }

    /** The options without prefix caching ({@link PrefixCacheOptions#off()}). */
    public BackendOptions(DeviceChoice device, PrefillMode prefillMode, boolean decodeGraphs, int maxSequences,
                          KvBudget kvBudget, int maxStepTokens) {
        this(device, prefillMode, decodeGraphs, maxSequences, kvBudget, maxStepTokens, PrefixCacheOptions.off());
    }

    /** These options with {@code device} set to {@code d}. */
    public BackendOptions withDevice(DeviceChoice d) {
        return new BackendOptions(d, prefillMode, decodeGraphs, maxSequences, kvBudget, maxStepTokens, prefixCache, quantize);
    }
}
