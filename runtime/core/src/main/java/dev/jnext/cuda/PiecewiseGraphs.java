package dev.jnext.cuda;

import dev.jnext.gpu.CudaGraph;
import dev.jnext.gpu.Stream;
import dev.jnext.cuda.kernels.StepShape;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.IntConsumer;

/**
 * Prefill/extend through piecewise CUDA graphs (sglang #17613): the {@link ForwardPlan} cut at its eager roles, every
 * captured segment ("piece") captured once per token bucket at the bucket's fixed {@link StepShape}, the eager segments
 * (the cores) launched between the replays, reading the step's real metadata. All buckets share the activation buffers
 * (capture never allocates). With {@link ForwardPlan#GDN_LAYER_CORES} the whole Gated DeltaNet layer is eager — sglang
 * before #17613, kept as the ablation.
 */
final class PiecewiseGraphs implements AutoCloseable {
    private final ForwardPlan plan;
    private final List<ForwardPlan.Segment> segments;
    private final Buckets buckets;
    private final int entries;
    private final Map<Integer, List<CudaGraph>> graphs = new HashMap<>();
    private long captureNanos;

    /**
     * @param entries batch entries of every bucket's shape (the most sequences a step holds, plus the padding entry)
     */
    PiecewiseGraphs(ForwardPlan plan, Set<ForwardPlan.Role> eagerRoles, Buckets buckets, int entries) {
        this.plan = plan;
        this.segments = plan.segments(eagerRoles);
        this.buckets = buckets;
        this.entries = entries;
    }

    Buckets buckets() {
        return buckets;
    }

    /** The shape every launch of bucket {@code tokens} uses. */
    StepShape shape(int bucket) {
        return StepShape.prefill(bucket, entries);
    }

    boolean captured(int bucket) {
        return graphs.containsKey(bucket);
    }

    /**
     * Captures the pieces of {@code bucket}. {@code warmUp} runs the whole step once eagerly at the bucket's shape first
     * (with metadata the caller staged), so that cuBLASLt plans and module loads happen outside the capture.
     */
    void capture(int bucket, Stream stream, IntConsumer warmUp) {
        if (graphs.containsKey(bucket)) return;
        long t0 = System.nanoTime();
        warmUp.accept(bucket);
        stream.synchronize();
        StepShape shape = shape(bucket);
        List<CudaGraph> list = new ArrayList<>();
        try {
            for (ForwardPlan.Segment seg : segments) {
                if (!seg.eager()) list.add(CudaGraph.capture(stream, st -> seg.enqueue(st, shape)));
            }
        } catch (RuntimeException | Error e) {
            list.forEach(CudaGraph::close);
            throw e;
        }
        graphs.put(bucket, list);
        captureNanos += System.nanoTime() - t0;
    }

    /**
     * Runs bucket {@code bucket}: replays its pieces with the cores launched eagerly in between. {@code afterFirstPiece}
     * (tests: may be null) is enqueued between the first piece and the first core, e.g. to plant NaN in padded rows.
     */
    void run(int bucket, Stream stream, Runnable afterFirstPiece) {
        List<CudaGraph> list = graphs.get(bucket);
        if (list == null) throw new IllegalStateException("prefill bucket " + bucket + " was not captured");
        StepShape shape = shape(bucket);
        int g = 0;
        for (ForwardPlan.Segment seg : segments) {
            if (seg.eager()) {
                seg.enqueue(stream, shape);
            } else {
                list.get(g++).replay(stream);
                if (g == 1 && afterFirstPiece != null) afterFirstPiece.run();
            }
        }
    }

    int graphCount() {
        return graphs.values().stream().mapToInt(List::size).sum();
    }

    int piecesPerBucket() {
        return (int) segments.stream().filter(s -> !s.eager()).count();
    }

    long captureNanos() {
        return captureNanos;
    }

    @Override
    public void close() {
        RuntimeException first = null;
        for (List<CudaGraph> list : graphs.values()) {
            for (CudaGraph g : list) {
                try {
                    g.close();
                } catch (RuntimeException e) {
                    if (first == null) first = e;
                }
            }
        }
        graphs.clear();
        if (first != null) throw first;
    }
}
