package dev.jnext.engine;

/**
 * One sequence being continued by a model backend: {@link CpuSequence} (the CPU reference) or {@code
 * dev.jnext.exec.CudaSession} (the CUDA runner). Both calls return the logits of the last position, one per
 * vocabulary id; {@link Generator} samples from them.
 */
public interface SequenceModel {
    /**
     * Runs the prompt through the model; call once, first.
     *
     * @param promptIds the prompt's token ids, at least one
     * @return the logits after the last prompt token, {@link #vocabSize()} of them
     */
    float[] prefill(int[] promptIds);

    /**
     * Appends one token to the sequence.
     *
     * @param id the token (usually the one just sampled)
     * @return the logits after it, {@link #vocabSize()} of them
     */
    float[] decode(int id);

    /** Number of logits per position (the model's vocab_size). */
    int vocabSize();

    /** Longest sequence the model accepts (max_position_embeddings). */
    int contextLength();
}
