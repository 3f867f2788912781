package dev.jnext.engine;

import dev.jnext.backend.ModelBackend;
import dev.jnext.backend.SamplingParams;

import dev.jnext.JnextException;
import dev.jnext.backend.TokenMask;
import dev.jnext.structured.JsonConstraint;
import dev.jnext.tokenizer.QwenTokenizer;
import dev.jnext.tokenizer.StreamDecoder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Continuous batching over a {@link ModelBackend}, run by the engine thread only. Each {@link #step} first ends
 * cancelled requests, admits waiting ones in FIFO order while a slot is free and the backend can {@link
 * ModelBackend#reserve} their prompt plus token budget, then runs one forward step holding, within the step token
 * budget: first a decode token of every request past its prompt; then a chunk of the oldest prompt still being read;
 * then chunks of the other prompts being read, the shortest remainder first (admission order among equals). No prompt
 * feeds more than the prefill chunk ({@link EngineOptions#maxPrefillChunk()}) in one step, so a long prompt leaves room
 * in every step for the running decodes and for short prompts (chunked prefill), and a short request finishes while a
 * long prompt is still being read. Requests that end free their slot (and KV pages) in the step that ends them.
 *
 * <p>Why nothing starves: decode tokens always fit (the budget holds one per slot); the oldest request still reading
 * its prompt gets at least one aligned chunk every step; the queue is FIFO; a request that could not be reserved even
 * with no other request running is refused instead of waiting for ever.
 *
 * <p>Why results do not depend on the company a request keeps: every input of a step is computed independently by the
 * backend, the sampler belongs to the slot, and prompt chunks that end before the prompt does are cut at multiples of
 * {@link ModelBackend#prefillAlignment()}.
 *
 * <p>Prefix caching: on admission the backend may restore a prefix of the prompt from its cache ({@link
 * ModelBackend#admit}); the request's prompt then starts at that aligned position, so its chunks still end at
 * multiples of the alignment counted from the prompt's start, as a cold prefill's do, and it reports the restored
 * tokens as cached ({@link GenerationEvent.Finished#cachedPromptTokens()}). Prompt chunks are marked as such ({@link
 * ModelBackend.StepInput#prompt()}). A backend that snapshots state only between steps names where a chunk must end
 * ({@link ModelBackend#prefillStop}); the chunk is cut there (an aligned position) and the rest follows in the next step.
 */
final class Scheduler {
    private static final Logger log = LoggerFactory.getLogger(Scheduler.class);

    private final ModelBackend backend;
    private final QwenTokenizer tokenizer;
    private final Set<Integer> eosTokenIds;
    private final int vocabLimit;
    private final int alignment;
    private final int prefillChunk;
    private final Runnable onEnded;
    private final ArrayDeque<RequestState> waiting = new ArrayDeque<>();
    private final List<RequestState> running = new ArrayList<>();
    // for recover(): every admitted request without its terminal event, and every slot opened and not closed
    private final Set<RequestState> live = new LinkedHashSet<>();
    private final BitSet opened;
    private final Throughput throughput = new Throughput();
    private volatile int queuedCount;
    private volatile int runningCount;
    private volatile long promptTokens;
    private volatile long generatedTokens;
    private volatile long steps;

    /**
     * @param maxPrefillChunk most prompt tokens of one request in one step (rounded down to a multiple of the alignment,
     *                        at least one alignment)
     * @param onEnded         called whenever a request gets its terminal event
     */
    Scheduler(ModelBackend backend, QwenTokenizer tokenizer, Set<Integer> eosTokenIds, int maxPrefillChunk, Runnable onEnded) {
        this.backend = backend;
        this.tokenizer = tokenizer;
        this.eosTokenIds = Set.copyOf(eosTokenIds);
        this.vocabLimit = Math.min(backend.vocabSize(), tokenizer.vocabSize());
        this.onEnded = onEnded;
        this.opened = new BitSet(backend.maxSequences());
        // alignment only where the oldest prompt can always get an aligned chunk beside every other slot's decode token
        int align = Math.max(1, backend.prefillAlignment());
        this.alignment = backend.maxStepTokens() - (backend.maxSequences() - 1) >= align ? align : 1;
        this.prefillChunk = Math.max(alignment, maxPrefillChunk - maxPrefillChunk % alignment);
    }

    /** One request between submission and its terminal event. */
    static final class RequestState {
        final GenerationHandle handle;
        final GenerationRequest request;
        final int[] prompt;
        final SamplingParams sampling;
        final long submitted;
        final StreamDecoder decoder;
        final StopStrings stops;
        final StringBuilder text = new StringBuilder();
        final List<GeneratedToken> tokens = new ArrayList<>();
        int slot = -1;
        int cursor;          // prompt tokens fed so far (or restored from the prefix cache)
        int cachedTokens;    // prompt tokens restored from the prefix cache
        int pending = -1;    // the last sampled token, fed in the next step
        long admitted;
        long firstToken;
        boolean ended;       // onEnded has run for it
        JsonConstraint constraint; // structured output: the next token's mask, or null (free text)

        RequestState(GenerationHandle handle, GenerationRequest request, int[] prompt, SamplingParams sampling,
                     QwenTokenizer tokenizer, long submitted) {
            this.handle = handle;
            this.request = request;
            this.prompt = prompt;
            this.sampling = sampling;
            this.submitted = submitted;
            this.decoder = tokenizer.streamDecoder(true);
            this.stops = new StopStrings(request.stopStrings());
        }

        boolean readingPrompt() {
            return cursor < prompt.length;
        }

        /** The ids the next sampled token may be (structured output), or null for any. */
        TokenMask mask() {
            return constraint == null ? null : constraint.mask();
        }
    }

    void enqueue(RequestState r) {
        waiting.addLast(r);
        queuedCount = waiting.size();
    }

    boolean hasWork() {
        return !waiting.isEmpty() || !running.isEmpty();
    }

    int queued() {
        return queuedCount;
    }

    int running() {
        return runningCount;
    }

    long promptTokens() {
        return promptTokens;
    }

    long generatedTokens() {
        return generatedTokens;
    }

    long steps() {
        return steps;
    }

    double tokensPerSecond() {
        return throughput.perSecond(System.nanoTime());
    }

    /** One scheduling round and forward step; false when there was nothing to run. */
    boolean step() {
        endCancelled();
        admit();
        publishCounts();
        if (running.isEmpty()) return false;

        int budget = backend.maxStepTokens();
        List<ModelBackend.StepInput> inputs = new ArrayList<>(running.size());
        List<RequestState> owners = new ArrayList<>(running.size());
        for (RequestState r : running) {
            if (r.readingPrompt()) continue;
            inputs.add(new ModelBackend.StepInput(r.slot, new int[]{r.pending}, true, r.request.topLogprobs(), false, r.mask()));
            owners.add(r);
            budget--;
        }
        // the oldest prompt first (it always gets a chunk: nothing starves), then the shortest remainders
        List<RequestState> prompts = new ArrayList<>();
        for (RequestState r : running) if (r.readingPrompt()) prompts.add(r);
        if (prompts.size() > 2) prompts.subList(1, prompts.size()).sort(Comparator.comparingInt(r -> r.prompt.length - r.cursor));
        int promptTokensThisStep = 0;
        for (RequestState r : prompts) {
            int left = r.prompt.length - r.cursor;
            int n = Math.min(left, Math.min(budget, prefillChunk));
            if (n < left) n -= n % alignment; // a chunk that ends before its prompt does ends at a multiple of the alignment
            int stop = backend.prefillStop(r.slot, r.cursor); // prefix caching: the backend snapshots the state there
            if (stop > r.cursor && stop < r.prompt.length && r.cursor + n > stop) n = stop - r.cursor;
            if (n == 0) continue;
            int[] chunk = Arrays.copyOfRange(r.prompt, r.cursor, r.cursor + n);
            inputs.add(new ModelBackend.StepInput(r.slot, chunk, n == left, r.request.topLogprobs(), true, n == left ? r.mask() : null));
            owners.add(r);
            budget -= n;
            promptTokensThisStep += n;
        }
        if (inputs.isEmpty()) return false;

        List<ModelBackend.StepOutput> outputs;
        try {
            outputs = backend.step(inputs);
            if (outputs.size() != inputs.size()) {
                throw new JnextException("the backend returned " + outputs.size() + " outputs for " + inputs.size() + " inputs");
            }
        } catch (RuntimeException e) {
            log.warn("forward step over {} requests failed", owners.size(), e);
            // jnext's own exceptions say what went wrong in words; anything else is a bug whose text is for the log only
            String message = e instanceof JnextException && e.getMessage() != null
                    ? "the model step failed: " + e.getMessage() : "the model step failed because of an internal error (see the server log)";
            for (RequestState r : owners) fail(r, GenerationEvent.Failed.Kind.BACKEND_ERROR, message);
            publishCounts();
            return true;
        }
        long now = System.nanoTime();
        steps++;
        promptTokens += promptTokensThisStep;
        int sampled = 0;
        for (int i = 0; i < inputs.size(); i++) {
            RequestState r = owners.get(i);
            ModelBackend.StepInput in = inputs.get(i);
            if (r.readingPrompt()) r.cursor += in.tokens().length;
            if (in.sample()) {
                accept(r, outputs.get(i), now);
                sampled++;
            }
        }
        generatedTokens += sampled;
        throughput.add(now, sampled);
        publishCounts();
        return true;
    }

    /** Ends every request with a {@link GenerationEvent.Failed} event (the engine is closing or broken). */
    void failAll(GenerationEvent.Failed.Kind kind, String message) {
        recover(kind, message);
        while (!waiting.isEmpty()) fail(waiting.pollFirst(), kind, message);
        publishCounts();
    }

    /**
     * Puts the scheduler back into a known state after the engine loop failed outside a step's own error handling (an
     * {@link Error} such as {@link OutOfMemoryError}, or a bug): every admitted request that has no terminal event yet
     * gets a {@link GenerationEvent.Failed} event with {@code message}, and every slot this scheduler opened is closed,
     * which frees its sequence state on the backend. Waiting requests stay queued.
     */
    void recover(GenerationEvent.Failed.Kind kind, String message) {
        for (int slot = opened.nextSetBit(0); slot >= 0; slot = opened.nextSetBit(slot + 1)) {
            try {
                backend.closeSequence(slot);
            } catch (RuntimeException e) {
                log.warn("closing sequence slot {} failed", slot, e);
            }
        }
        opened.clear();
        running.clear();
        for (RequestState r : new ArrayList<>(live)) {
            r.slot = -1;
            fail(r, kind, message);
        }
        live.clear();
        publishCounts();
    }

    private void endCancelled() {
        for (RequestState r : new ArrayList<>(running)) {
            if (r.handle.cancelRequested()) finish(r, FinishReason.CANCELLED);
        }
        for (Iterator<RequestState> it = waiting.iterator(); it.hasNext(); ) {
            RequestState r = it.next();
            if (r.handle.cancelRequested()) {
                it.remove();
                finish(r, FinishReason.CANCELLED);
            }
        }
    }

    private void admit() {
        while (!waiting.isEmpty() && backend.freeSequences() > 0) {
            RequestState r = waiting.peekFirst();
            int total = (int) Math.min((long) r.prompt.length + r.request.maxTokens(), backend.contextLength());
            int slot = backend.openSequence(r.sampling, vocabLimit);
            opened.set(slot);
            // KV for the whole sequence and, with prefix caching, the longest cached prefix (an aligned length below
            // the prompt's): all or nothing
            int cached;
            try {
                cached = backend.admit(slot, r.prompt, total);
                if (cached >= r.prompt.length) {
                    throw new JnextException("the backend restored " + cached + " of the " + r.prompt.length + " prompt tokens");
                }
            } catch (RuntimeException e) {
                log.warn("admitting a request into slot {} (its KV and cached prefix) failed", slot, e);
                r.slot = slot;
                live.add(r);
                waiting.pollFirst();
                fail(r, GenerationEvent.Failed.Kind.BACKEND_ERROR, e instanceof JnextException && e.getMessage() != null
                        ? "admitting the request failed: " + e.getMessage()
                        : "admitting the request failed because of an internal error (see the server log)");
                continue;
            }
            if (cached < 0) {
                opened.clear(slot);
                backend.closeSequence(slot);
                if (!running.isEmpty()) break; // wait for running requests to free KV space
                waiting.pollFirst();
                fail(r, GenerationEvent.Failed.Kind.REJECTED, "the request needs KV cache for " + total
                        + " tokens (prompt " + r.prompt.length + " + max tokens " + r.request.maxTokens()
                        + ") and the backend cannot hold them even with no other request running; lower max tokens "
                        + "or raise the KV budget");
                continue;
            }
            r.slot = slot;
            live.add(r);
            waiting.pollFirst();
            r.cursor = cached;
            r.cachedTokens = cached;
            r.admitted = System.nanoTime();
            running.add(r);
        }
    }

    private void accept(RequestState r, ModelBackend.StepOutput out, long now) {
        int id = out.token();
        if (r.constraint != null && !r.constraint.advance(id)) { // the backend did not honour the mask: a bug, not the model
            fail(r, GenerationEvent.Failed.Kind.BACKEND_ERROR, "the backend sampled token id " + id
                    + ", which the response format's token mask does not allow");
            return;
        }
        GeneratedToken token = new GeneratedToken(id, out.logprob(), out.topIds(), out.topLogprobs());
        r.tokens.add(token);
        if (r.firstToken == 0) r.firstToken = now;
        int generated = r.tokens.size();
        FinishReason reason = null;
        String text;
        if (!r.request.ignoreEos() && eosTokenIds.contains(id)) {
            reason = FinishReason.EOS;
            text = "";
        } else if (r.request.stopTokenIds().contains(id)) {
            reason = FinishReason.STOP_TOKEN;
            text = "";
        } else {
            text = r.stops.accept(r.decoder.next(id));
            if (r.stops.stopped()) reason = FinishReason.STOP_STRING;
            else if (generated >= r.request.maxTokens()) reason = FinishReason.MAX_TOKENS;
            else if (r.prompt.length + generated >= backend.contextLength()) reason = FinishReason.CONTEXT_FULL;
        }
        if (reason != null && reason != FinishReason.STOP_STRING) text += r.stops.accept(r.decoder.finish()) + r.stops.finish();
        r.text.append(text);
        r.handle.emit(new GenerationEvent.Tokens(text, List.of(token), now));
        if (reason != null) finish(r, reason);
        else r.pending = id;
    }

    private void finish(RequestState r, FinishReason reason) {
        release(r);
        long now = System.nanoTime();
        var timings = new GenerationResult.Timings(r.admitted == 0 ? 0 : r.admitted - r.submitted,
                r.firstToken == 0 ? 0 : r.firstToken - r.submitted, now - r.submitted, r.prompt.length, r.tokens.size());
        var result = new GenerationResult(r.text.toString(), List.copyOf(r.tokens), reason, r.prompt.length, timings,
                r.cachedTokens);
        ended(r); // counts first: a caller that sees the result sees the engine without it
        r.handle.finish(new GenerationEvent.Finished(reason, r.prompt.length, r.tokens.size(), now, r.cachedTokens), result);
        live.remove(r);
    }

    private void fail(RequestState r, GenerationEvent.Failed.Kind kind, String message) {
        release(r);
        ended(r);
        r.handle.finish(new GenerationEvent.Failed(kind, message, System.nanoTime()), null);
        live.remove(r);
    }

    private void ended(RequestState r) {
        if (r.ended) return;
        r.ended = true;
        onEnded.run();
    }

    private void release(RequestState r) {
        if (r.slot < 0) return;
        running.remove(r);
        opened.clear(r.slot);
        try {
            backend.closeSequence(r.slot);
        } catch (RuntimeException e) {
            log.warn("closing sequence slot {} failed", r.slot, e);
        }
        r.slot = -1;
        publishCounts();
    }

    private void publishCounts() {
        queuedCount = waiting.size();
        runningCount = running.size();
    }

    /** Generated tokens per second over the last few seconds. */
    private static final class Throughput {
        private static final long WINDOW = 5_000_000_000L;
        private final ArrayDeque<long[]> steps = new ArrayDeque<>();
        private long inWindow;

        synchronized void add(long now, int tokens) {
            steps.addLast(new long[]{now, tokens});
            inWindow += tokens;
            prune(now);
        }

        synchronized double perSecond(long now) {
            prune(now);
            return inWindow / (WINDOW / 1e9);
        }

        private void prune(long now) {
            while (!steps.isEmpty() && now - steps.peekFirst()[0] > WINDOW) inWindow -= steps.pollFirst()[1];
        }
    }
}
