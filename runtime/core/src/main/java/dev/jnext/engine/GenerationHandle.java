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
import java.util.concurrent.TimeoutException;
import java.util.concurrent.Executors;
import java.util.concurrent.Executor;
import java.util.Objects;

/**
 * A submitted request: stream its {@link GenerationEvent}s ({@link #next}, {@link #poll} or a for-each loop, which ends
 * after the terminal event), wait for its {@link #result}, or {@link #cancel} it. Every request gets exactly one
 * terminal event, whatever happens (cancel, {@link Engine#close}, a backend failure).
 *
 * <p>Threads: any thread may call any method; the events are meant for one consumer. The engine's own thread only
 * puts events in the queue and completes an internal future: it never runs application code. The future of {@link
 * #result()} is completed, and its callbacks run, on a virtual thread of jnext's (or on the thread that adds a
 * callback after completion), so a slow callback delays no other request.
 */
public final class GenerationHandle implements Iterable<GenerationEvent> {
    private final long id;
    private final int promptTokens;
    private final BlockingQueue<GenerationEvent> events;
    private final CompletableFuture<GenerationResult> done = new CompletableFuture<>();
    private final ResultFuture result = new ResultFuture(this);
    private final Runnable wakeEngine;
    private volatile boolean cancelRequested;
    private volatile GenerationEvent terminal;
    private volatile boolean terminalTaken;

    /** Where {@link #result()}'s future is completed and its callbacks run: never on the engine thread. */
    private static final Executor CALLBACKS = Executors.newThreadPerTaskExecutor(
            Thread.ofVirtual().name("jnext-result-", 0).factory());

    GenerationHandle(long id, int promptTokens, boolean streamEvents, Runnable wakeEngine) {
        this.id = id;
        this.promptTokens = promptTokens;
        this.events = streamEvents ? new LinkedBlockingQueue<>() : null;
        this.wakeEngine = wakeEngine;
        done.whenCompleteAsync((r, e) -> result.settle(r, e), CALLBACKS);
    }

    /**
     * The future of {@link #result()}: {@code cancel} cancels the request; only the engine completes it ({@code
     * complete}, {@code completeExceptionally} and {@code obtrude*} from outside throw {@link
     * UnsupportedOperationException}); dependent stages are plain futures.
     */
    private static final class ResultFuture extends CompletableFuture<GenerationResult> {
        private final GenerationHandle handle;

        ResultFuture(GenerationHandle handle) {
            this.handle = handle;
        }

        void settle(GenerationResult r, Throwable e) {
            if (e != null) super.completeExceptionally(e);
            else super.complete(r);
        }

        /** Cancels the request (as {@link GenerationHandle#cancel()}) and this future. */
        @Override
        public boolean cancel(boolean mayInterruptIfRunning) {
            handle.cancel();
            return super.cancel(mayInterruptIfRunning);
        }

        @Override
        public boolean complete(GenerationResult value) {
            throw new UnsupportedOperationException("only the engine completes a request's result");
        }

        @Override
        public boolean completeExceptionally(Throwable ex) {
            throw new UnsupportedOperationException("only the engine completes a request's result");
        }

        @Override
        public void obtrudeValue(GenerationResult value) {
            throw new UnsupportedOperationException("only the engine completes a request's result");
        }

        @Override
        public void obtrudeException(Throwable ex) {
            throw new UnsupportedOperationException("only the engine completes a request's result");
        }

        @Override
        public <U> CompletableFuture<U> newIncompleteFuture() {
            return new CompletableFuture<>();
        }
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

    /**
     * The request's future, the same object on every call: completes with the result, or exceptionally with {@link
     * GenerationFailedException}; {@code cancel(…)} on it cancels the request. Its callbacks never run on the engine
     * thread (see the class comment).
     */
    public CompletableFuture<GenerationResult> result() {
        return result;
    }

    /** Blocks until the request ends; throws {@link GenerationFailedException} if it failed. Interrupting cancels it. */
    public GenerationResult await() {
        try {
            return done.get();
        } catch (InterruptedException e) {
            cancel();
            Thread.currentThread().interrupt();
            throw new JnextException("interrupted while waiting for request " + id + "; it was cancelled", e);
        } catch (ExecutionException e) {
            throw failure(e);
        }
    }

    /**
     * Blocks until the request ends or {@code timeout} passes; throws {@link GenerationFailedException} if it failed.
     * Interrupting cancels it; a timeout does not (the request runs on: {@link #cancel()} it if it is no longer wanted).
     *
     * @throws TimeoutException     when the request has not ended within {@code timeout}
     * @throws NullPointerException when {@code timeout} is null
     */
    public GenerationResult await(Duration timeout) throws TimeoutException {
        Objects.requireNonNull(timeout, "timeout");
        try {
            return done.get(Math.max(0, timeout.toNanos()), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            cancel();
            Thread.currentThread().interrupt();
            throw new JnextException("interrupted while waiting for request " + id + "; it was cancelled", e);
        } catch (ExecutionException e) {
            throw failure(e);
        }
    }

    private JnextException failure(ExecutionException e) {
        if (e.getCause() instanceof JnextException je) return je;
        return new JnextException("request " + id + " failed: " + e.getCause(), e.getCause());
    }

    /** The next event, waiting as long as needed; after the terminal event, the terminal event again. */
    public GenerationEvent next() throws InterruptedException {
        checkStreaming();
        if (terminalTaken) return terminal;
        return taken(events.take());
    }

    /** The next event, or null if none came within {@code timeout}; after the terminal event, the terminal event again. */
    public GenerationEvent poll(Duration timeout) throws InterruptedException {
        Objects.requireNonNull(timeout, "timeout");
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
        if (terminalEvent instanceof GenerationEvent.Failed f) done.completeExceptionally(new GenerationFailedException(f));
        else done.complete(r);
    }
}
