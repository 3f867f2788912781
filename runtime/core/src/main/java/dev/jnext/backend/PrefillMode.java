package dev.jnext.backend;

import dev.jnext.JnextException;

import java.util.Locale;
import java.util.Objects;

/**
 * How the CUDA backend runs prefill steps (the CPU backend has one way): {@code eager} launches every kernel,
 * {@code piecewise} replays one CUDA graph per token bucket for everything between the attention and linear-attention
 * cores (sglang #17613), {@code gdn-layer-eager} is the ablation that also leaves whole GDN layers eager. The one
 * spelling of the concept for the library, the CLI ({@code --graphs}) and the benchmarks.
 */
public enum PrefillMode {
    /** Every kernel launched on each step. */
    EAGER,
    /** Piecewise CUDA graphs per token bucket, attention and delta-rule cores eager in between. */
    PIECEWISE,
    /** Piecewise, with every GDN layer eager as a whole. */
    GDN_LAYER_EAGER;

    /**
     * Parses {@code eager}, {@code piecewise} or {@code gdn-layer-eager} (any case).
     *
     * @throws JnextException naming what was given when it is none of these
     */
    public static PrefillMode parse(String s) {
        Objects.requireNonNull(s, "prefill mode");
        for (PrefillMode m : values()) if (m.toString().equals(s.strip().toLowerCase(Locale.ROOT))) return m;
        throw new JnextException("the prefill mode must be eager, piecewise or gdn-layer-eager, got \"" + s + "\"");
    }

    /** {@code eager}, {@code piecewise} or {@code gdn-layer-eager}. */
    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT).replace('_', '-');
    }
}
