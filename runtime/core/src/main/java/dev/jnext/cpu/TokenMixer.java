package dev.jnext.cpu;


import java.util.List;

/** The sequence-mixing half of a decoder layer: Gated DeltaNet or gated full attention. */
public sealed interface TokenMixer permits GatedDeltaNet, GatedAttention {

    /** Mixes x [rows, H] (already input-normed) into out [rows, H], reading and updating the layer's state. */
    void forward(float[] x, int rows, List<SequenceSpan> spans, CpuState state, int layer, float[] out);
}
