package dev.jnext.engine;

import dev.jnext.exec.CpuSession;
import dev.jnext.model.Qwen3NextModel;

/** The CPU reference backend as a {@link SequenceModel}: one {@link CpuSession} over a loaded model. */
public final class CpuSequence implements SequenceModel, AutoCloseable {
    private final Qwen3NextModel model;
    private final CpuSession session;

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

    @Override
    public void close() {
        session.close();
    }
}
