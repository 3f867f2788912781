package dev.jnext.engine;

import dev.jnext.backend.ModelBackend;
import dev.jnext.backend.SamplingParams;

import dev.jnext.JnextException;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;

/**
 * A backend for scheduler tests: every slot "generates" the same script of ids (then repeats its last id), records
 * what it was fed, and can hold a KV token budget, fail a step, or pause inside a step.
 */
final class ScriptedBackend implements ModelBackend {
    final int[] script;
    final int vocab, context, slots, stepTokens;
    long kvBudget = Long.MAX_VALUE;
    int failAtStep = -1;
    /** What step {@code i} throws (null: nothing), e.g. an OutOfMemoryError. */
    volatile java.util.function.IntFunction<Throwable> throwAtStep = i -> null;
    volatile CountDownLatch pauseInStep;
    final CountDownLatch paused = new CountDownLatch(1);
    final List<List<Integer>> fed = new ArrayList<>();
    final List<List<StepInput>> steps = Collections.synchronizedList(new ArrayList<>());
    private final int[] next;
    private final long[] reserved;
    private final boolean[] open;
    private long reservedTotal;
    volatile boolean closed;

    ScriptedBackend(int[] script, int vocab, int context, int slots, int stepTokens) {
        this.script = script;
        this.vocab = vocab;
        this.context = context;
        this.slots = slots;
        this.stepTokens = stepTokens;
        this.next = new int[slots];
        this.reserved = new long[slots];
        this.open = new boolean[slots];
        for (int i = 0; i < slots; i++) fed.add(new ArrayList<>());
    }

    @Override public String device() { return "scripted"; }
    @Override public int vocabSize() { return vocab; }
    @Override public int contextLength() { return context; }
    @Override public int maxSequences() { return slots; }
    @Override public int maxStepTokens() { return stepTokens; }
    int alignment = 1;
    @Override public int prefillAlignment() { return alignment; }
    /** Where prompt chunks must end ({@link #prefillStop}): the first of these past the chunk's start. */
    volatile int[] stops = new int[0];
    /** Every (slot, position) the scheduler asked {@link #prefillStop} about. */
    final List<int[]> stopQueries = Collections.synchronizedList(new ArrayList<>());

    @Override
    public int prefillStop(int slot, int position) {
        stopQueries.add(new int[]{slot, position});
        for (int q : stops) if (q > position) return q;
        return Integer.MAX_VALUE;
    }

    @Override
    public synchronized int freeSequences() {
        int n = 0;
        for (boolean o : open) if (!o) n++;
        return n;
    }

    @Override
    public synchronized int openSequence(SamplingParams sampling, int vocabLimit) {
        for (int s = 0; s < slots; s++) {
            if (!open[s]) {
                open[s] = true;
                next[s] = 0;
                fed.get(s).clear();
                return s;
            }
        }
        throw new JnextException("no free slot");
    }

    @Override
    public synchronized boolean reserve(int slot, int totalTokens) {
        if (totalTokens > context) return false;
        long more = totalTokens - reserved[slot];
        if (reservedTotal + more > kvBudget) return false;
        reservedTotal += Math.max(0, more);
        reserved[slot] = Math.max(reserved[slot], totalTokens);
        return true;
    }

    @Override
    public synchronized void closeSequence(int slot) {
        if (!open[slot]) throw new JnextException("slot " + slot + " closed twice");
        open[slot] = false;
        reservedTotal -= reserved[slot];
        reserved[slot] = 0;
    }

    synchronized int openSlots() {
        return slots - freeSequences();
    }

    @Override
    public List<StepOutput> step(List<StepInput> inputs) {
        CountDownLatch pause = pauseInStep;
        if (pause != null) {
            paused.countDown();
            try {
                pause.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        synchronized (this) {
            steps.add(List.copyOf(inputs));
            if (steps.size() - 1 == failAtStep) throw new JnextException("scripted failure");
            Throwable thrown = throwAtStep.apply(steps.size() - 1);
            if (thrown instanceof Error e) throw e;
            if (thrown instanceof RuntimeException e) throw e;
            int total = 0;
            List<StepOutput> out = new ArrayList<>();
            for (StepInput in : inputs) {
                if (!open[in.slot()]) throw new JnextException("step on closed slot " + in.slot());
                total += in.tokens().length;
                for (int t : in.tokens()) fed.get(in.slot()).add(t);
                if (!in.sample()) {
                    out.add(StepOutput.NONE);
                    continue;
                }
                int id = script[Math.min(next[in.slot()]++, script.length - 1)];
                out.add(new StepOutput(id, -0.5f, new int[]{id}, new float[]{-0.5f}));
            }
            if (total > stepTokens) throw new JnextException("step of " + total + " tokens over the budget " + stepTokens);
            return out;
        }
    }

    @Override
    public void close() {
        closed = true;
    }
}
