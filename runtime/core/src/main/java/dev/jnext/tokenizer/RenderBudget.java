package dev.jnext.tokenizer;

/**
 * What one chat-template render may still spend: steps (every node jinjava renders and every for-loop iteration)
 * and wall time. jinjava's node pre-processor and {@link LoopNeighbours.TrackingForTag} charge it, so a template
 * whose loops would run for hours stops at the first step past either bound.
 */
final class RenderBudget {
    private static final ThreadLocal<RenderBudget> CURRENT = new ThreadLocal<>();

    /** Thrown when a render has used up its steps or its time; the render fails with this message. */
    static final class Exceeded extends RuntimeException {
        Exceeded(String message) {
            super(message, null, false, false);
        }
    }

    private final long maxSteps;
    private final long deadlineNanos;
    private final long maxMillis;
    private final RenderBudget previous;
    private long steps;
    private Exceeded exceeded;

    private RenderBudget(ChatTemplate.Limits limits, RenderBudget previous) {
        this.maxSteps = limits.maxSteps();
        this.maxMillis = limits.maxTime().toMillis();
        this.deadlineNanos = System.nanoTime() + limits.maxTime().toNanos();
        this.previous = previous;
    }

    /** Starts the budget of a render on this thread; {@link #close()} it when the render returns. */
    static RenderBudget start(ChatTemplate.Limits limits) {
        RenderBudget b = new RenderBudget(limits, CURRENT.get());
        CURRENT.set(b);
        return b;
    }

    void close() {
        if (previous == null) CURRENT.remove();
        else CURRENT.set(previous);
    }

    /** The bound this render ran into, or null. */
    Exceeded exceeded() {
        return exceeded;
    }

    /** Charges one step to the render running on this thread (none outside a render). */
    static void step() {
        RenderBudget b = CURRENT.get();
        if (b != null) b.spend();
    }

    private void spend() {
        if (exceeded != null) throw exceeded; // jinjava swallows some exceptions: keep failing until the render unwinds
        steps++;
        if (steps > maxSteps) {
            exceeded = new Exceeded("the template ran more than " + maxSteps + " steps (rendered nodes and loop iterations)");
            throw exceeded;
        }
        if (System.nanoTime() - deadlineNanos > 0) {
            exceeded = new Exceeded("the template ran longer than " + maxMillis + " ms");
            throw exceeded;
        }
    }
}
