package dev.jnext.cuda;

import dev.jnext.backend.PrefillMode;
import dev.jnext.cuda.kernels.StepShape;
import dev.jnext.cuda.state.AttentionBatch;
import dev.jnext.gpu.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.event.Level;

import java.util.List;

/**
 * Prefill/extend steps through {@link PiecewiseGraphs}: the pieces between the eager cores replayed per prefill token
 * bucket ({@link CapturePolicy#prefill()}), then the lm_head eagerly over the step's logits rows. Buckets are captured
 * at load, largest first, or each on its first use ({@link CudaOptions#lazyCapture()}); a step above the largest bucket
 * runs on the {@link EagerExecutor} instead, which this executor logs (once at info, then at debug).
 */
final class PiecewiseExecutor implements StepExecutor {
    // the runner logs under its facade's name
    private static final Logger LOG = LoggerFactory.getLogger(CudaModel.class);

    private final RunnerResources r;
    private final ForwardPlan plan;
    private final PlanBuilder.Head head;
    private final PiecewiseGraphs graphs;
    /** Prefill steps that ran eagerly because no graph bucket holds them (logged). */
    private int eagerFallbacks;
    /** Tests: plant NaN in the padded rows of the residual stream after the first piece. */
    private boolean poisonPadding;

    /** The executor of {@code r.options().prefill()}, a piecewise mode; its graphs are owned by {@code r}. */
    PiecewiseExecutor(RunnerResources r, ForwardPlan plan, PlanBuilder.Head head) {
        this.r = r;
        this.plan = plan;
        this.head = head;
        this.graphs = r.own(new PiecewiseGraphs(plan,
                r.options.prefill() == PrefillMode.PIECEWISE ? ForwardPlan.CORES : ForwardPlan.GDN_LAYER_CORES,
                r.policy.prefill(), r.policy.maxEntries()));
    }

    /** Captures every bucket's pieces, largest first, each after one eager warm-up at its shape. */
    void captureAll() {
        long before = r.gpu.memoryInfo().free();
        int[] sizes = graphs.buckets().sizes();
        for (int i = sizes.length - 1; i >= 0; i--) graphs.capture(sizes[i], r.stream, this::warmUp);
        LOG.info("captured {} prefill graphs ({} buckets {}..{} x {} pieces, {}) in {} ms, {} of graph memory", graphs.graphCount(),
                sizes.length, sizes[0], sizes[sizes.length - 1], graphs.piecesPerBucket(), r.options.prefill(),
                graphs.captureNanos() / 1_000_000, MemoryPlan.gib(Math.max(0, before - r.gpu.memoryInfo().free())));
    }

    @Override
    public boolean canRun(StepShape shape) {
        return !shape.decode() && graphs.captured(shape.tokens()) && graphs.shape(shape.tokens()).equals(shape);
    }

    /** Captures the bucket of {@code shape} on its first use (logged). */
    @Override
    public void capture(StepShape shape) {
        int bucket = shape.tokens();
        if (shape.decode() || graphs.buckets().bucketFor(bucket) != bucket || !graphs.shape(bucket).equals(shape)) {
            throw new IllegalArgumentException("not a prefill bucket shape: " + shape);
        }
        if (graphs.captured(bucket)) return;
        long t0 = System.nanoTime(), before = r.gpu.memoryInfo().free();
        graphs.capture(bucket, r.stream, this::warmUp);
        LOG.info("captured prefill bucket {} on first use ({} pieces, {}) in {} ms, {} of graph memory", bucket,
                graphs.piecesPerBucket(), r.options.prefill(), (System.nanoTime() - t0) / 1_000_000,
                MemoryPlan.gib(Math.max(0, before - r.gpu.memoryInfo().free())));
    }

    @Override
    public void replay(StepShape shape, int realTokens, int logitRows, Stream stream) {
        int bucketRows = shape.tokens();
        graphs.run(bucketRows, stream, poisonPadding && bucketRows > realTokens ? () -> poisonRows(realTokens, bucketRows, stream) : null);
        if (logitRows > 0) head.enqueue(stream, shape, logitRows);
    }

    /** Notes a prefill step of {@code total} tokens that no bucket holds: it runs eagerly. */
    void logEagerFallback(int total) {
        // once at info: a workload whose prompts outgrow the buckets would otherwise log every step
        LOG.atLevel(eagerFallbacks++ == 0 ? Level.INFO : Level.DEBUG).log(
                "a prefill step of {} tokens is above the largest graph bucket ({}): it runs eagerly{}", total,
                graphs.buckets().largest(), eagerFallbacks == 1 ? " (further such steps are logged at debug)" : "");
    }

    /** One eager step at a prefill bucket's shape whose only entry is padding: no state is touched. */
    private void warmUp(int bucket) {
        r.meta.begin(List.of(AttentionBatch.Sequence.padding(bucket)));
        r.meta.upload(r.stream);
        plan.enqueue(r.stream, graphs.shape(bucket));
    }

    /** NaN (bf16 0xffff) into rows [from, to) of the residual stream and the normed input. */
    private void poisonRows(int from, int to, Stream stream) {
        long rowBytes = 2L * r.config.hiddenSize();
        r.acts.buffer().fill32(r.acts.x + from * rowBytes, (to - from) * rowBytes / 4, 0xffffffff, stream);
        r.acts.buffer().fill32(r.acts.h + from * rowBytes, (to - from) * rowBytes / 4, 0xffffffff, stream);
    }

    /** Tests: poison the padded rows of the following steps ({@link #poisonRows}). */
    void poisonPadding(boolean on) {
        poisonPadding = on;
    }

    Buckets buckets() {
        return graphs.buckets();
    }

    int graphCount() {
        return graphs.graphCount();
    }

    long captureNanos() {
        return graphs.captureNanos();
    }
}
