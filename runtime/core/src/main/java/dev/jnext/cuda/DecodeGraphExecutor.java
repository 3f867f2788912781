package dev.jnext.cuda;

import dev.jnext.JnextException;
import dev.jnext.cuda.kernels.StepShape;
import dev.jnext.cuda.state.AttentionBatch;
import dev.jnext.gpu.CudaGraph;
import dev.jnext.gpu.Event;
import dev.jnext.gpu.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * One CUDA graph per decode batch bucket ({@link CapturePolicy#decode()}), each the whole step — every operation of the
 * plan, cores included, and the lm_head over the bucket's rows — captured from the {@link EagerExecutor} at the
 * bucket's shape, so a replay is bitwise the eager step padded to the bucket. Every bucket is captured at load, largest
 * first; the graphs are owned by the {@link RunnerResources} (closed in reverse capture order).
 */
final class DecodeGraphExecutor implements StepExecutor {
    // the runner logs under its facade's name
    private static final Logger LOG = LoggerFactory.getLogger(CudaModel.class);

    private final RunnerResources r;
    private final EagerExecutor body;
    private final Buckets buckets;
    private final Map<Integer, CudaGraph> graphs = new HashMap<>();
    private long captureNanos;

    DecodeGraphExecutor(RunnerResources r, EagerExecutor body) {
        this.r = r;
        this.body = body;
        this.buckets = r.policy.decode();
    }

    /** Captures every bucket, largest first, and logs the time and the graph memory it took. */
    void captureAll() {
        long t0 = System.nanoTime();
        long before = r.gpu.memoryInfo().free();
        int[] sizes = buckets.sizes();
        for (int i = sizes.length - 1; i >= 0; i--) capture(StepShape.decode(sizes[i]));
        r.stream.synchronize();
        long nanos = System.nanoTime() - t0;
        LOG.info("captured {} decode graphs (batch {}..{}) in {} ms, {} of graph memory", sizes.length, sizes[0],
                sizes[sizes.length - 1], nanos / 1_000_000, MemoryPlan.gib(Math.max(0, before - r.gpu.memoryInfo().free())));
        captureNanos += nanos;
    }

    @Override
    public boolean canRun(StepShape shape) {
        return shape.decode() && graphs.containsKey(shape.seqs());
    }

    @Override
    public void capture(StepShape shape) {
        int b = shape.seqs();
        if (!shape.decode() || buckets.bucketFor(b) != b) throw new IllegalArgumentException("not a decode bucket: " + shape);
        if (graphs.containsKey(b)) return;
        stagePadding(b);                          // every entry padding: the warm-up touches no state
        body.replay(shape, b, b, r.stream);       // warm-up: cuBLASLt plans and module loads happen outside the capture
        r.stream.synchronize();
        graphs.put(b, r.own(CudaGraph.capture(r.stream, st -> body.replay(shape, b, b, st))));
    }

    @Override
    public void replay(StepShape shape, int realTokens, int logitRows, Stream stream) {
        CudaGraph g = graphs.get(shape.seqs());
        if (g == null || !shape.decode()) throw new IllegalStateException("decode bucket " + shape.seqs() + " was not captured");
        g.replay(stream);
    }

    private void stagePadding(int entries) {
        List<AttentionBatch.Sequence> pad = new ArrayList<>();
        for (int i = 0; i < entries; i++) pad.add(AttentionBatch.Sequence.padding(1));
        r.meta.begin(pad);
        r.meta.upload(r.stream);
    }

    /** Decode graphs captured (one per bucket). */
    int graphCount() {
        return graphs.size();
    }

    /** Time the capture at load took. */
    long captureNanos() {
        return captureNanos;
    }

    /**
     * GPU time of one replay of the graph of {@code batch}'s bucket, in ms (CUDA events around {@code reps} back-to-back
     * replays on the last staged metadata).
     */
    double millis(int batch, int reps) {
        CudaGraph g = graphs.get(buckets.bucketFor(batch));
        if (g == null) throw new JnextException("no decode graph for batch " + batch);
        r.gpu.bindThread();
        try (Event a = r.gpu.createEvent(true); Event b = r.gpu.createEvent(true)) {
            g.replay(r.stream);
            a.record(r.stream);
            for (int i = 0; i < reps; i++) g.replay(r.stream);
            b.record(r.stream);
            b.synchronize();
            return b.elapsedMillisSince(a) / reps;
        }
    }
}
