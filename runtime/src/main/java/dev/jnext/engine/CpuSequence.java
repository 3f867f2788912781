package dev.jnext.engine;

import dev.jnext.exec.CpuSession;
import dev.jnext.model.Qwen3NextModel;

/**
 * The CPU reference backend as a {@link SequenceModel}: one {@link CpuSession} over a loaded model, for one prompt
 * and its continuation with {@link Generator}. Exact fp32 arithmetic (the model's weights converted as they are
 * read); slow for large checkpoints. Close it to free its state; the model stays open.
 */
public final class CpuSequence implements SequenceModel, AutoCloseable {
    private final Qwen3NextModel model;
    private final CpuSession session;

    /**
     * A new, empty sequence over {@code model}.
     *
     * @param model a model from {@link Qwen3NextModel#load}; it must stay open while this sequence is used
     */
    public CpuSequence(Qwen3NextModel model) {
        this.model = model;
        this.session = new CpuSession(model);
    }

    @Override
    public float[] prefill(int[] promptIds) {
        return session.prefill(promptIds);
    }

    @Override
    public float[] decode(int id) {
        return session.decode(id);
    }

    @Override
    public int vocabSize() {
        return model.config().vocabSize();
    }

    @Override
    public int contextLength() {
        return model.config().maxPositionEmbeddings();
    }

    /** Frees the sequence's state (not the model). */
    @Override
    public void close() {
        session.close();
    }
}
