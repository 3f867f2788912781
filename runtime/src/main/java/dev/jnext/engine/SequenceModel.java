package dev.jnext.engine;

/**
 * One sequence being continued by a model backend: the CPU reference session today, the CUDA runner later.
 * Both calls return the logits of the last position, one per vocabulary id.
 */
public interface SequenceModel {
    float[] prefill(int[] promptIds);

    float[] decode(int id);

    /** Number of logits per position (the model's vocab_size). */
    int vocabSize();

    /** Longest sequence the model accepts (max_position_embeddings). */
    int contextLength();
}
