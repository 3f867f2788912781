package dev.jnext.cuda;

import dev.jnext.backend.LogitsSession;

import dev.jnext.cuda.kernels.SamplingKernel;

import java.util.List;

/**
 * One sequence on a {@link CudaModel}, read back as logits: {@link #extendAll} runs prefill/extend steps (eagerly or
 * with the prefill graphs the model's options choose), a single token runs a decode step (a decode graph when they
 * are on). Owns its sequence slot; the model stays open.
 */
public final class CudaSession implements LogitsSession {
    private final CudaModel model;
    private int slot;
    private boolean closed;
    private final boolean ownsModel;

    /**
     * A new, empty sequence in a free slot of {@code model}, greedy sampling (the logits are what it returns).
     *
     * @throws dev.jnext.JnextException when every slot of the model is in use
     */
    public CudaSession(CudaModel model) {
        this(model, false);
    }

    /** As {@link #CudaSession(CudaModel)}; with {@code ownsModel} closing the session closes the model too. */
    public CudaSession(CudaModel model, boolean ownsModel) {
        this.model = model;
        this.ownsModel = ownsModel;
        this.slot = model.open(SamplingKernel.RowParams.greedy(), model.config().vocabSize(), 0);
    }

    @Override
    public float[] extendAll(int[] ids) {
        return run(ids, CudaModel.Logits.ALL);
    }

    @Override
    public float[] extend(int[] ids) {
        return run(ids, CudaModel.Logits.LAST);
    }

    private float[] run(int[] ids, CudaModel.Logits logits) {
        if (closed) throw new IllegalStateException("CUDA session is closed");
        return model.step(List.of(new CudaModel.Input(slot, ids, false, logits))).getFirst().logits();
    }

    /** Starts a new sequence with {@code ids} (the slot's state is reset); returns the last token's logits. */
    public float[] prefill(int[] ids) {
        if (model.position(slot) > 0) {
            model.close(slot);
            slot = model.open(SamplingKernel.RowParams.greedy(), model.config().vocabSize(), 0);
        }
        return extend(ids);
    }

    /** Appends one token; returns its logits. */
    public float[] decode(int id) {
        return extend(new int[]{id});
    }

    @Override
    public int position() {
        return model.position(slot);
    }

    @Override
    public int vocabSize() {
        return model.config().vocabSize();
    }

    /** Longest sequence the model holds. */
    public int contextLength() {
        return model.maxContext();
    }

    @Override
    public int maxTokensPerCall() {
        return Math.min(model.maxStepTokens(), model.maxLogitRows());
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        model.close(slot);
        if (ownsModel) model.close();
    }

    @Override
    public String device() {
        return model.deviceName();
    }
}
