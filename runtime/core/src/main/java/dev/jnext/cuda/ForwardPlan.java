package dev.jnext.cuda;

import dev.jnext.gpu.Stream;
import dev.jnext.cuda.kernels.StepShape;

import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * The CUDA forward of one step as an ordered list of operations, built once from the model's layers. Each operation
 * has a {@link Role}: the sequence-mixing <i>cores</i> (full attention with its KV write; the linear-attention core:
 * conv1d + gating + delta rule with its state update), the rest of a Gated DeltaNet layer, or an ordinary piece op.
 * Executors are strategies over this one list: eager (everything launched), decode graphs (everything captured), and
 * piecewise graphs (consecutive piece ops captured per bucket, cores run eagerly between them) — {@link #segments}
 * cuts the list for a given set of eager roles.
 */
final class ForwardPlan {

    /** What an operation is, for the executors that treat cores differently. */
    public enum Role {
        /** Capturable everywhere: norms, residuals, projections, MoE, embedding. */
        PIECE,
        /** The Gated DeltaNet layer's non-core ops (projections, split/gating, gated norm, out_proj). */
        GDN_LAYER,
        /** conv1d + delta rule with their state updates. */
        GDN_CORE,
        /** Attention over the paged KV cache, with the KV write. */
        ATTENTION_CORE
    }

    /** Cores of sglang after #17613 (jnext's piecewise default). */
    public static final Set<Role> CORES = EnumSet.of(Role.GDN_CORE, Role.ATTENTION_CORE);
    /** Cores of sglang before #17613: the whole GDN layer eager (the ablation). */
    public static final Set<Role> GDN_LAYER_CORES = EnumSet.of(Role.GDN_LAYER, Role.GDN_CORE, Role.ATTENTION_CORE);

    /** Enqueues an operation's launches for a step of the given shape. */
    @FunctionalInterface
    public interface Launch {
        void enqueue(Stream stream, StepShape shape);
    }

    /** One operation: a name for logs ("layer 3 gdn core"), its role, its layer (−1 outside the layers). */
    public record Op(String name, Role role, int layer, Launch launch) {}

    /** Consecutive operations that run the same way: captured together, or eagerly. */
    public record Segment(boolean eager, List<Op> ops) {
        public void enqueue(Stream stream, StepShape shape) {
            for (Op op : ops) op.launch().enqueue(stream, shape);
        }
    }

    private final List<Op> ops;

    public ForwardPlan(List<Op> ops) {
        if (ops.isEmpty()) throw new IllegalArgumentException("a forward plan needs at least one operation");
        this.ops = List.copyOf(ops);
    }

    public List<Op> ops() {
        return ops;
    }

    /** Enqueues every operation in order (eager execution, or the body of a whole-step graph). */
    public void enqueue(Stream stream, StepShape shape) {
        for (Op op : ops) op.launch().enqueue(stream, shape);
    }

    /** As {@link #enqueue}, with {@code profile}'s event before every operation (an instrumented eager run). */
    void enqueue(Stream stream, StepShape shape, StepProfile profile) {
        for (Op op : ops) {
            profile.mark(stream, op.name(), op.layer());
            op.launch().enqueue(stream, shape);
        }
    }

    /** The list cut into maximal runs of eager ({@code eagerRoles}) and capturable operations, in order. */
    public List<Segment> segments(Set<Role> eagerRoles) {
        List<Segment> out = new ArrayList<>();
        List<Op> run = new ArrayList<>();
        boolean runEager = false;
        for (Op op : ops) {
            boolean eager = eagerRoles.contains(op.role());
            if (!run.isEmpty() && eager != runEager) {
                out.add(new Segment(runEager, List.copyOf(run)));
                run.clear();
            }
            runEager = eager;
            run.add(op);
        }
        out.add(new Segment(runEager, List.copyOf(run)));
        return out;
    }

    /** Number of captured pieces for {@code eagerRoles} (a 48-layer Qwen3-Next has 49 with {@link #CORES}). */
    public int pieceCount(Set<Role> eagerRoles) {
        return (int) segments(eagerRoles).stream().filter(s -> !s.eager()).count();
    }
}
