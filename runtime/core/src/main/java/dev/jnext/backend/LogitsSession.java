package dev.jnext.backend;

import dev.jnext.cpu.CpuSession;
import dev.jnext.cuda.CudaSession;

/**
 * One sequence whose logits the caller reads back (scoring, parity checks): the CPU reference ({@link CpuSession}) or
 * the CUDA runner ({@link CudaSession}). The state carries over between calls, so feeding a text in any split gives the
 * same logits up to the backend's rounding.
 */
public interface LogitsSession extends AutoCloseable {

    /** Appends tokens; returns the logits of every one of them, [ids.length · vocab] row-major. */
    float[] extendAll(int[] ids);

    /** Appends tokens; returns the last one's logits [vocab]. */
    float[] extend(int[] ids);

    /** Where it runs: {@code cpu} or e.g. {@code cuda:0 NVIDIA H100 80GB HBM3}. */
    String device();

    /** Tokens consumed so far. */
    int position();

    /** Logits per position (config.json's vocab_size). */
    int vocabSize();

    /** Most tokens one {@link #extendAll} call may bring (callers split longer inputs). */
    int maxTokensPerCall();

    /** Frees the sequence's state (not the model). */
    @Override
    void close();
}
