package dev.jnext.cpu;

import dev.jnext.backend.LogitsSession;

import dev.jnext.JnextException;

import java.util.List;

/**
 * One sequence on the CPU reference backend: {@link #prefill} the prompt, then {@link #decode} one token at a
 * time (or {@link #extend} by several). Holds the sequence's conv, recurrent and KV state; the model stays open
 * and is closed by its owner.
 *
 * <pre>{@code
 * try (Qwen3NextModel model = Qwen3NextModel.load(dir); CpuSession s = new CpuSession(model)) {
 *     float[] logits = s.prefill(ids);          // [vocab], for the last prompt token
 *     logits = s.decode(argmax(logits));         // [vocab], for the new token
 * }
 * }</pre>
 */
public final class CpuSession implements LogitsSession {
    private final CpuForward forward;
    private final CpuState state;
    private final int slot;
    private boolean closed;
    private final Qwen3NextModel ownedModel;

    /** A new, empty sequence over {@code model} (from {@link Qwen3NextModel#load}; it must stay open). */
    public CpuSession(Qwen3NextModel model) {
        this(model, false);
    }

    /** A new, empty sequence over {@code model}; with {@code ownsModel} closing the session closes the model too. */
    public CpuSession(Qwen3NextModel model, boolean ownsModel) {
        this.ownedModel = ownsModel ? model : null;
        this.forward = new CpuForward(model);
        this.state = forward.newState(1);
        this.slot = state.allocate();
    }

    /** Starts a new sequence with {@code ids} (forgetting any previous one); returns the last token's logits. */
    public float[] prefill(int[] ids) {
        check();
        state.reset(slot);
        return extend(ids);
    }

    /** Appends one token; returns its logits [vocab]. */
    public float[] decode(int id) {
        return extend(new int[]{id});
    }

    /** Appends several tokens in one call (chunked prefill); returns the last one's logits [vocab]. */
    @Override
    public float[] extend(int[] ids) {
        check();
        return forward.forward(state, List.of(new CpuForward.SequenceInput(slot, ids)), false).getFirst();
    }

    /** Appends tokens and returns the logits of every one of them, [ids.length · vocab] row-major. */
    @Override
    public float[] extendAll(int[] ids) {
        check();
        return forward.forward(state, List.of(new CpuForward.SequenceInput(slot, ids)), true).getFirst();
    }

    /** Tokens consumed so far. */
    @Override
    public int position() {
        return state.position(slot);
    }

    @Override
    public int maxTokensPerCall() {
        return 256;
    }

    @Override
    public int vocabSize() {
        return forward.model().config().vocabSize();
    }

    private void check() {
        if (closed) throw new JnextException("the CPU session is closed");
    }

    /** Drops the sequence state (the model is not closed). */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        state.release(slot);
        if (ownedModel != null) ownedModel.close();
    }

    @Override
    public String device() {
        return "cpu";
    }
}
