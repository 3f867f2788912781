package dev.jnext.engine;

import dev.jnext.JnextException;

import java.time.Duration;
import java.util.Iterator;
import java.util.NoSuchElementException;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A submitted request: stream its {@link GenerationEvent}s ({@link #next}, {@link #poll} or a for-each loop, which ends
 * after the terminal event), wait for its {@link #result}, or {@link #cancel} it. Every request gets exactly one
 * terminal event, whatever happens (cancel, {@link Engine#close}, a backend failure). Thread-safe; the events are meant
 * for one consumer.
 */
public final class GenerationHandle implements Iterable<GenerationEvent> {
    private final long id;
    private final int promptTokens;
    private final BlockingQueue<GenerationEvent> events;
    private final CompletableFuture<GenerationResult> result = new CompletableFuture<>();
    private final Runnable wakeEngine;
    private volatile boolean cancelRequested;
    private volatile GenerationEvent terminal;
    private volatile boolean terminalTaken;

    GenerationHandle(long id, int promptTokens, boolean streamEvents, Runnable wakeEngine) {
        this.id = id;
        this.promptTokens = promptTokens;
        this.events = streamEvents ? new LinkedBlockingQueue<>() : null;
        this.wakeEngine = wakeEngine;
    }

    /** A number unique within the engine. */
    public long id() {
        return id;
    }

    /** Tokens of the prompt after tokenization (and the chat template). */
    public int promptTokens() {
        return promptTokens;
    }

    /**
     * Asks the engine to stop this request; it ends with {@link FinishReason#CANCELLED} at the start of the next step
     * and its slot is free in that same step. No effect once it has ended.
     */
    public void cancel() {
        if (terminal != null) return;
        cancelRequested = true;
        wakeEngine.run();
    }

    boolean cancelRequested() {
        return cancelRequested;
    }

    /** True once the terminal event was produced. */
    public boolean isDone() {
        return terminal != null;
    }

    /** Completes with the result, or exceptionally with {@link GenerationFailedException}. */
    public CompletableFuture<GenerationResult> result() {
        return result.copy();
    }

    /** Blocks until the request ends; throws {@link GenerationFailedException} if it failed. Interrupting cancels it. */
    public GenerationResult await() {
        try {
            return result.get();
        } catch (InterruptedException e) {
            cancel();
            Thread.currentThread().interrupt();
            throw new JnextException("interrupted while waiting for request " + id + "; it was cancelled", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof JnextException je) throw je;
            throw new JnextException("request " + id + " failed: " + e.getCause(), e.getCause());
        }
    }

    /** The next event, waiting as long as needed; after the terminal event, the terminal event again. */
    public GenerationEvent next() throws InterruptedException {
        checkStreaming();
        if (terminalTaken) return terminal;
        return taken(events.take());
    }

    /** The next event, or null if none came within {@code timeout}; after the terminal event, the terminal event again. */
    public GenerationEvent poll(Duration timeout) throws InterruptedException {
        checkStreaming();
        if (terminalTaken) return terminal;
        return taken(events.poll(timeout.toNanos(), TimeUnit.NANOSECONDS));
    }

    /** The events up to and including the terminal one; a consuming thread that is interrupted cancels the request. */
    @Override
    public Iterator<GenerationEvent> iterator() {
        checkStreaming();
        return new Iterator<>() {
            @Override
            public boolean hasNext() {
                return !terminalTaken;
            }

            @Override
            public GenerationEvent next() {
                if (terminalTaken) throw new NoSuchElementException("request " + id + " has ended");
                try {
                    return GenerationHandle.this.next();
                } catch (InterruptedException e) {
                    cancel();
                    Thread.currentThread().interrupt();
                    throw new JnextException("interrupted while streaming request " + id + "; it was cancelled", e);
                }
            }
        };
    }

    private GenerationEvent taken(GenerationEvent e) {
        if (e != null && e.isTerminal()) terminalTaken = true;
        return e;
    }

    private void checkStreaming() {
        if (events == null) throw new IllegalStateException("request " + id + " was submitted without an event stream");
    }

    // ---- the engine's side (engine thread only) ----

    void emit(GenerationEvent.Tokens e) {
        if (events != null) events.add(e);
    }

    void finish(GenerationEvent terminalEvent, GenerationResult r) {
        if (terminal != null) return; // exactly one terminal event, even when an engine restart ends it again
        terminal = terminalEvent;
        if (events != null) events.add(terminalEvent);
        if (terminalEvent instanceof GenerationEvent.Failed f) result.completeExceptionally(new GenerationFailedException(f));
        else result.complete(r);
    }
}
