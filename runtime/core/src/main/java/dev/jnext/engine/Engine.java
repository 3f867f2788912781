package dev.jnext.engine;


import dev.jnext.backend.DeviceChoice;
import dev.jnext.backend.ModelBackend;
import dev.jnext.backend.SamplingParams;

import dev.jnext.backend.Backends;

import dev.jnext.JnextException;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.SyntheticSource;
import dev.jnext.structured.JsonConstraint;
import dev.jnext.structured.JsonGrammar;
import dev.jnext.structured.TokenMasks;
import dev.jnext.tokenizer.ChatTemplate;
import dev.jnext.tokenizer.QwenTokenizer;
import dev.jnext.tokenizer.TokenizerConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The embeddable inference engine: a model backend (CPU or CUDA), the checkpoint's tokenizer, chat template and
 * generation defaults, and a {@link Scheduler} doing continuous batching on one engine thread. Any number of threads
 * may {@link #submit} requests at once.
 *
 * <p><b>Threads.</b> {@link #submit}, {@link #generate}, {@link #close} and the getters may be called from any thread.
 * One platform thread, {@code jnext-engine}, runs the scheduler and the backend (the backend is never called from
 * another thread); it puts events into each request's queue and completes an internal future, and never runs
 * application code. A {@link GenerationHandle}'s events are read by the caller's thread ({@code next}, {@code poll},
 * iteration); its {@link GenerationHandle#result()} future completes on a jnext virtual thread, where its callbacks
 * run. {@link #generate} blocks the calling thread until its request ends.
 *
 * <p><b>Failures.</b> A forward step that throws a {@link RuntimeException} fails the requests in that step and the
 * engine goes on. Anything else that escapes the engine loop — an {@link Error} such as {@link OutOfMemoryError}, or a
 * bug — <em>restarts the loop</em>: every admitted request ends with a {@link GenerationEvent.Failed} event
 * ({@code BACKEND_ERROR}) whose message is generic (no exception or JVM class name reaches a client; the log has the
 * stack trace), every sequence slot is closed so the backend starts from fresh sequence state, and the waiting requests
 * then run. If the loop fails more than {@value #MAX_RESTARTS} times within {@value #RESTART_WINDOW_SECONDS} seconds
 * the engine stops for good ({@link #hasFailed()}; {@link #isRunning()} turns false, every request fails, submissions
 * throw {@link EngineClosedException}) — {@code jnext serve} then exits with a non-zero status so that a supervisor
 * restarts the process.
 *
 * <pre>{@code
 * try (Engine engine = Engine.open(Path.of("Qwen3-Next-80B-A3B-Instruct"), EngineOptions.defaults())) {
 *     GenerationHandle h = engine.submit(GenerationRequest.chat(List.of(ChatMessage.user("Hi"))).maxTokens(64).build());
 *     for (GenerationEvent e : h) if (e instanceof GenerationEvent.Tokens t) System.out.print(t.text());
 *     String all = engine.generate(GenerationRequest.text("The capital of France is").greedy().build()).text();
 * }
 * }</pre>
 */
public final class Engine implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Engine.class);
    /** Restarts of the engine loop allowed within {@link #RESTART_WINDOW_SECONDS}; one more stops the engine. */
    public static final int MAX_RESTARTS = 3;
    /** The window, in seconds, over which {@link #MAX_RESTARTS} is counted. */
    public static final int RESTART_WINDOW_SECONDS = 60;
    static final String RESTARTED = "the engine hit an internal error and restarted; this request did not complete (the server log has the details)";
    static final String FAILED = "the engine stopped after repeated internal errors";

    private final ModelBackend backend;
    private final QwenTokenizer tokenizer;
    private final Path tokenizerDir;
    private final GenerationConfig generationConfig;
    private final Set<Integer> eosTokenIds;
    private final EngineOptions options;
    private final String modelName;
    private final Scheduler scheduler;
    private final Thread thread;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition work = lock.newCondition();
    private final List<Scheduler.RequestState> inbox = new ArrayList<>();
    private final AtomicInteger active = new AtomicInteger();
    private final AtomicLong ids = new AtomicLong();
    private volatile ChatTemplate chatTemplate;
    private volatile TokenMasks tokenMasks; // structured output: built on the first constrained request
    private boolean closing;          // guarded by lock
    private volatile boolean stopped; // the engine thread has ended: no request will run again
    private volatile boolean failed;  // ... because of repeated internal errors, not close()
    private volatile String stopReason = "the engine was closed";
    private final ArrayDeque<Long> restarts = new ArrayDeque<>(); // engine thread only

    /**
     * Opens the checkpoint folder {@code model} (config.json + safetensors; tokenizer files there or in {@link
     * EngineOptions#tokenizer()}) on the backend the options choose, and starts the engine thread.
     */
    public static Engine open(Path model, EngineOptions options) {
        if (!SyntheticSource.is(model) && !Files.isRegularFile(model.resolve("config.json"))) {
            throw new JnextException(model + "/config.json is missing: the model must be a Hugging Face checkpoint folder");
        }
        Path tokDir = options.tokenizer() != null ? options.tokenizer() : model;
        if (!Files.isRegularFile(tokDir.resolve("tokenizer.json"))) {
            throw new JnextException(tokDir.resolve("tokenizer.json") + " is missing"
                    + (options.tokenizer() == null ? ": this checkpoint has no tokenizer (synthetic ones have none); set EngineOptions.tokenizer to a folder holding tokenizer.json" : ""));
        }
        QwenTokenizer tokenizer = QwenTokenizer.load(tokDir);
        TokenizerConfig tokenizerConfig = TokenizerConfig.read(tokDir);
        GenerationConfig generation = GenerationConfig.read(model);
        ModelConfig config = ModelConfig.load(model);
        // end-of-sequence ids: generation_config.json, config.json and the tokenizer's eos_token, in that order
        Set<Integer> eos = EosTokens.of(generation, config, tokenizerConfig, tokenizer);
        ModelBackend backend = openBackend(model, options);
        try {
            Path name = model.toAbsolutePath().normalize().getFileName();
            return new Engine(backend, tokenizer, tokDir, generation, eos, options, name == null ? "model" : name.toString());
        } catch (RuntimeException | Error e) {
            backend.close();
            throw e;
        }
    }

    /** The one place that opens a backend: the options' device, auto resolved by {@link Backends}. */
    static ModelBackend openBackend(Path model, EngineOptions options) {
        return Backends.open(model, options.backendOptions(), why -> log.info("device auto: running on the CPU ({})", why));
    }

    /** An engine over an open backend (which it then owns and closes). */
    Engine(ModelBackend backend, QwenTokenizer tokenizer, Path tokenizerDir, GenerationConfig generationConfig,
           Set<Integer> eosTokenIds, EngineOptions options, String modelName) {
        this.backend = backend;
        this.tokenizer = tokenizer;
        this.tokenizerDir = tokenizerDir;
        this.generationConfig = generationConfig;
        this.eosTokenIds = Collections.unmodifiableSet(new LinkedHashSet<>(eosTokenIds)); // in the order found
        this.options = options;
        this.modelName = modelName;
        this.scheduler = new Scheduler(backend, tokenizer, this.eosTokenIds, options.maxPrefillChunk(), active::decrementAndGet);
        this.thread = Thread.ofPlatform().name("jnext-engine").daemon().unstarted(this::run);
        thread.start();
        log.debug("engine on {} for {}: {} (context {} tokens)", backend.device(), modelName, options.describe(),
                backend.contextLength());
    }

    // ---- what the engine serves ----

    /** The checkpoint folder's name (the model id of the server). */
    public String modelName() {
        return modelName;
    }

    /** Where the model runs: {@code cpu} or {@code cuda:N} ({@code auto} resolved). */
    public DeviceChoice device() {
        return backend.placement();
    }

    /** Where the model runs, for people and logs: {@code cpu} or e.g. {@code cuda:0 NVIDIA H100 80GB HBM3}. */
    public String deviceName() {
        return backend.device();
    }

    /** Longest sequence (prompt and generated tokens) a request may reach. */
    public int contextLength() {
        return backend.contextLength();
    }

    /** The options it was opened with. */
    public EngineOptions options() {
        return options;
    }

    /** The checkpoint's tokenizer (or {@link EngineOptions#tokenizer()}'s). */
    public QwenTokenizer tokenizer() {
        return tokenizer;
    }

    /** The checkpoint's generation_config.json ({@link GenerationConfig#none()} when it has none). */
    public GenerationConfig generationConfig() {
        return generationConfig;
    }

    /** The ids that end generation: generation_config.json's, config.json's and the tokenizer's eos_token. */
    public Set<Integer> eosTokenIds() {
        return eosTokenIds;
    }

    /** The checkpoint's recommended sampling (generation_config.json), else greedy; seed 0. */
    public SamplingParams defaultSampling() {
        return generationConfig.sampling(null, null, null, null, null, null, 0);
    }

    /**
     * Whether requests with a JSON {@link ResponseFormat} can run: the backend applies token masks before sampling (the
     * CPU backend does; the CUDA backend does not yet).
     */
    public boolean supportsStructuredOutput() {
        return backend.supportsTokenMasks();
    }

    /** False once the engine was closed or its thread failed: it takes no more requests. */
    public boolean isRunning() {
        return !stopped && thread.isAlive();
    }

    /**
     * True once the engine stopped on its own because its loop kept failing (see the class comment), as opposed to
     * {@link #close()}; the process embedding it should then be restarted.
     */
    public boolean hasFailed() {
        return failed;
    }

    /** Blocks until the engine thread has ended (after {@link #close()}, or when the engine {@link #hasFailed()}). */
    public void awaitStopped() throws InterruptedException {
        thread.join();
    }

    /** Requests queued and running, free slots and token counts now. */
    public EngineStats stats() {
        int running = scheduler.running();
        // queued: submitted and not ended, minus running (requests the engine thread has not picked up yet included)
        return new EngineStats(Math.max(0, active.get() - running), running, backend.maxSequences() - running,
                scheduler.promptTokens(), scheduler.generatedTokens(), scheduler.steps(), scheduler.tokensPerSecond(),
                backend.deviceMemoryUsed(), backend.prefixCacheStats(), backend.kvTokensReserved());
    }

    // ---- requests ----

    /**
     * Validates and queues a request; the handle streams its events. Throws {@link JnextException} for a bad request
     * (empty prompt, prompt longer than the context, unknown token id, a chat template that cannot render it), {@link
     * EngineOverloadedException} when every slot is busy and the queue is full, {@link EngineClosedException} after
     * {@link #close}.
     */
    public GenerationHandle submit(GenerationRequest request) {
        return submit(request, true);
    }

    /** Runs a request to its end; throws {@link GenerationFailedException} if it fails. */
    public GenerationResult generate(GenerationRequest request) {
        return submit(request, false).await();
    }

    private GenerationHandle submit(GenerationRequest request, boolean streamEvents) {
        if (stopped) throw new EngineClosedException(stopReason);
        int[] prompt = promptIds(request.prompt());
        JsonConstraint constraint = constraint(request);
        SamplingParams sampling = request.sampling() != null ? request.sampling() : defaultSampling();
        int limit = backend.maxSequences() + options.queueLimit();
        while (true) {
            int n = active.get();
            if (n >= limit) {
                throw new EngineOverloadedException("all " + backend.maxSequences() + " sequence slots are busy and "
                        + options.queueLimit() + " requests are queued (the queue limit); try again later");
            }
            if (active.compareAndSet(n, n + 1)) break;
        }
        GenerationHandle handle = new GenerationHandle(ids.incrementAndGet(), prompt.length, streamEvents, this::wake);
        var state = new Scheduler.RequestState(handle, request, prompt, sampling, tokenizer, System.nanoTime());
        state.constraint = constraint;
        lock.lock();
        try {
            if (closing || stopped) {
                active.decrementAndGet();
                throw new EngineClosedException(stopReason);
            }
            inbox.add(state);
            work.signal();
        } finally {
            lock.unlock();
        }
        return handle;
    }

    /** The prompt's token ids, checked against the vocabulary and the context. */
    public int[] promptIds(GenerationRequest.Prompt prompt) {
        int[] ids = switch (prompt) {
            case GenerationRequest.Prompt.Text t -> tokenizer.encode(t.text());
            case GenerationRequest.Prompt.Tokens t -> t.ids();
            case GenerationRequest.Prompt.Chat c -> tokenizer.encode(chatTemplate().render(c.messages(), c.tools(), true,
                    c.templateVariables()));
        };
        if (ids.length == 0) throw new JnextException("the prompt is empty: at least one token is needed");
        int vocab = backend.vocabSize();
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= vocab) {
                throw new JnextException("the prompt has token id " + ids[i] + " at position " + i + " but the model's "
                        + "vocabulary has ids 0.." + (vocab - 1) + " (vocab_size in config.json)"
                        + (prompt instanceof GenerationRequest.Prompt.Tokens ? "" : ": the tokenizer does not belong to this checkpoint"));
            }
        }
        if (ids.length >= backend.contextLength()) {
            throw new JnextException("the prompt has " + ids.length + " tokens but the model's context holds "
                    + backend.contextLength() + " (max_position_embeddings); shorten the prompt");
        }
        return ids;
    }

    /**
     * The constraint of a request with a JSON response format (null for free text): refused on a backend that does not
     * apply token masks, and when the token it starts after is not one token of the vocabulary.
     */
    private JsonConstraint constraint(GenerationRequest request) {
        ResponseFormat format = request.responseFormat();
        if (!format.constrains()) return null;
        if (!backend.supportsTokenMasks()) {
            throw new JnextException("a JSON response format needs constrained decoding (a token mask applied before "
                    + "sampling), which the " + backend.placement() + " backend does not do");
        }
        JsonGrammar grammar = switch (format) {
            case ResponseFormat.JsonObject o -> JsonGrammar.anyObject();
            case ResponseFormat.JsonSchema s -> JsonGrammar.compile(s.schema());
            case ResponseFormat.Text t -> throw new IllegalStateException("text is not constrained");
        };
        int startAfter = -1;
        if (format.startAfter() != null) {
            startAfter = tokenizer.idOf(format.startAfter()).orElseThrow(() -> new JnextException("the response format starts after "
                    + format.startAfter() + ", which is not one token of this tokenizer's vocabulary"));
        }
        int[] ends = new int[eosTokenIds.size() + request.stopTokenIds().size()];
        int i = 0;
        for (int id : eosTokenIds) ends[i++] = id;
        for (int id : request.stopTokenIds()) ends[i++] = id;
        return new JsonConstraint(tokenMasks(), grammar, ends, startAfter);
    }

    /** The vocabulary index for token masks, built once (about a second for Qwen's vocabulary), on first use. */
    private TokenMasks tokenMasks() {
        TokenMasks m = tokenMasks;
        if (m == null) {
            synchronized (this) {
                if (tokenMasks == null) {
                    long t0 = System.nanoTime();
                    tokenMasks = new TokenMasks(tokenizer, Math.min(backend.vocabSize(), tokenizer.vocabSize()));
                    log.info("structured output: indexed {} token ids for JSON masks in {} ms", tokenizer.vocabSize(),
                            (System.nanoTime() - t0) / 1_000_000);
                }
                m = tokenMasks;
            }
        }
        return m;
    }

    /** The checkpoint's chat template, loaded on first use. */
    public ChatTemplate chatTemplate() {
        ChatTemplate t = chatTemplate;
        if (t == null) {
            synchronized (this) {
                if (chatTemplate == null) chatTemplate = ChatTemplate.load(tokenizerDir);
                t = chatTemplate;
            }
        }
        return t;
    }

    private void wake() {
        lock.lock();
        try {
            work.signal();
        } finally {
            lock.unlock();
        }
    }

    // ---- the engine thread ----

    private void run() {
        GenerationEvent.Failed.Kind endKind = GenerationEvent.Failed.Kind.ENGINE_CLOSED;
        try {
            boolean idle = false;
            while (true) {
                lock.lock();
                try {
                    while (!closing && inbox.isEmpty() && (idle || !scheduler.hasWork())) {
                        if (idle) {
                            work.awaitNanos(10_000_000); // work that cannot run yet: look again soon
                            idle = false;
                        } else {
                            work.await();
                        }
                    }
                    if (closing) break;
                    for (Scheduler.RequestState r : inbox) scheduler.enqueue(r);
                    inbox.clear();
                } finally {
                    lock.unlock();
                }
                try {
                    idle = !scheduler.step();
                } catch (Throwable t) {
                    if (!restart(t)) {
                        failed = true;
                        stopReason = FAILED;
                        endKind = GenerationEvent.Failed.Kind.BACKEND_ERROR;
                        break;
                    }
                    idle = false;
                }
            }
        } catch (Throwable t) {
            log.error("the engine thread failed; every request is ended", t);
            failed = true;
            stopReason = FAILED;
            endKind = GenerationEvent.Failed.Kind.BACKEND_ERROR;
        } finally {
            lock.lock();
            try {
                stopped = true;
                for (Scheduler.RequestState r : inbox) scheduler.enqueue(r);
                inbox.clear();
            } finally {
                lock.unlock();
            }
            scheduler.failAll(endKind, stopReason);
        }
    }

    /**
     * After the loop failed: fails the admitted requests and closes their slots ({@link Scheduler#recover}); false when
     * this is one failure too many and the engine must stop.
     */
    private boolean restart(Throwable t) {
        long now = System.nanoTime();
        while (!restarts.isEmpty() && now - restarts.peekFirst() > RESTART_WINDOW_SECONDS * 1_000_000_000L) restarts.pollFirst();
        restarts.addLast(now);
        boolean giveUp = restarts.size() > MAX_RESTARTS;
        log.error(giveUp ? "the engine loop failed again ({} times within {} s); the engine stops"
                : "the engine loop failed ({} times within {} s); its requests fail and the loop restarts with fresh sequence state",
                restarts.size(), RESTART_WINDOW_SECONDS, t);
        try {
            scheduler.recover(GenerationEvent.Failed.Kind.BACKEND_ERROR, giveUp ? FAILED : RESTARTED);
        } catch (Throwable u) {
            log.error("resetting the scheduler failed; the engine stops", u);
            return false;
        }
        return !giveUp;
    }

    /**
     * Stops the engine: requests not finished get a {@link GenerationEvent.Failed} event ({@code ENGINE_CLOSED}), then
     * the backend frees its memory. Waits for a step in progress to end. Idempotent.
     */
    @Override
    public void close() {
        lock.lock();
        try {
            closing = true;
            work.signal();
        } finally {
            lock.unlock();
        }
        boolean interrupted = false;
        while (thread.isAlive()) {
            try {
                thread.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        backend.close();
        if (interrupted) Thread.currentThread().interrupt();
    }
}
