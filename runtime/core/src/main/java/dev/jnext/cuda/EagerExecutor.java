package dev.jnext.cuda;

import dev.jnext.cuda.kernels.StepShape;
import dev.jnext.gpu.Stream;

/**
 * Launches every operation of the plan, then the lm_head, at any shape (exact or padded to a bucket): nothing to
 * capture. The decode graphs capture exactly what it launches for a decode bucket.
 */
final class EagerExecutor implements StepExecutor {
    private final ForwardPlan plan;
    private final PlanBuilder.Head head;

    EagerExecutor(ForwardPlan plan, PlanBuilder.Head head) {
        this.plan = plan;
        this.head = head;
    }

    @Override
    public boolean canRun(StepShape shape) {
        return true;
    }

    @Override
    public void capture(StepShape shape) {
    }

    /** Set by {@link CudaModel#profile} for the one step it runs (never while a decode graph captures this executor). */
    StepProfile profiling;

    @Override
    public void replay(StepShape shape, int realTokens, int logitRows, Stream stream) {
        if (profiling == null) {
            plan.enqueue(stream, shape);
        } else {
            plan.enqueue(stream, shape, profiling);
            if (logitRows > 0) profiling.mark(stream, "lm_head", -1);
        }
        if (logitRows > 0) head.enqueue(stream, shape, logitRows);
    }
}
