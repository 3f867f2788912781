package dev.jnext.cuda;

import dev.jnext.cuda.kernels.StepShape;
import dev.jnext.gpu.Stream;

/**
 * One way of running a step's {@link ForwardPlan} and lm_head at a fixed {@link StepShape} (sglang's runner/backend
 * split, {@code model_executor/cuda_graph_runner}): {@link EagerExecutor} launches every operation,
 * {@link DecodeGraphExecutor} replays one CUDA graph per decode batch bucket, {@link PiecewiseExecutor} replays
 * per-bucket graphs of the pieces between eager cores. The runner picks one per step ({@link StepRoute}); all three read
 * the same step metadata, which {@link StepStager} stages once before {@link #replay} (the part that sglang's
 * {@code replay_prepare} does per runner).
 */
interface StepExecutor {

    /** Whether a step of {@code shape} can be replayed now: eager always; a graph executor once it captured the shape. */
    boolean canRun(StepShape shape);

    /**
     * Captures the graphs of {@code shape} after one eager warm-up at that shape (cuBLASLt plans and module loads happen
     * outside the capture); the warm-up stages its own padding-only metadata, so this runs before a step stages its own.
     * Nothing for the eager executor.
     */
    void capture(StepShape shape);

    /**
     * Enqueues the forward of a step of {@code shape} whose metadata is staged, and the lm_head over its first
     * {@code logitRows} logits rows (none when 0; a decode graph holds its bucket's rows). {@code realTokens} of the
     * shape's rows are real, the rest padding.
     */
    void replay(StepShape shape, int realTokens, int logitRows, Stream stream);
}
