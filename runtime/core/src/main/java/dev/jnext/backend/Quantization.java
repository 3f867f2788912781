package dev.jnext.backend;

import dev.jnext.JnextException;

import java.util.Locale;
import java.util.Objects;

/**
 * Quantization applied while a checkpoint loads, beyond what it was published with: {@code none} runs the checkpoint as
 * stored (an FP8 checkpoint stays FP8 where the kernels read FP8); {@code fp8} block-quantizes an unquantized
 * checkpoint's routed and shared experts to the fine-grained FP8 layout while they stream to the GPU, so they take
 * about half the memory and run on the FP8 expert kernels. The CUDA backend only: the CPU backend is the exact reference
 * of the checkpoint as stored and refuses it. The one spelling for the library and the CLI ({@code --quantize}).
 */
public enum Quantization {
    /** The checkpoint as stored. */
    NONE,
    /** Unquantized experts block-quantized to FP8 (128 × 128 blocks, e4m3, fp32 scales) while they stream. */
    FP8;

    /**
     * Parses {@code none} or {@code fp8} (any case).
     *
     * @throws JnextException naming what was given when it is neither
     */
    public static Quantization parse(String s) {
        Objects.requireNonNull(s, "quantization");
        for (Quantization q : values()) if (q.toString().equals(s.strip().toLowerCase(Locale.ROOT))) return q;
        throw new JnextException("the quantization must be none or fp8, got \"" + s + "\"");
    }

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
