package dev.jnext.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jnext.JnextException;
import dev.jnext.engine.Engine;
import dev.jnext.engine.EngineClosedException;
import dev.jnext.engine.EngineOverloadedException;
import dev.jnext.engine.GeneratedToken;
import dev.jnext.engine.GenerationEvent;
import dev.jnext.engine.GenerationHandle;
import io.javalin.Javalin;
import io.javalin.compression.CompressionStrategy;
import io.javalin.http.Context;
import io.javalin.http.HttpResponseException;
import jakarta.servlet.http.HttpServletResponse;
import org.eclipse.jetty.http.HttpException;
import org.eclipse.jetty.io.EofException;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.NetworkConnectionLimit;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The OpenAI-compatible HTTP server over one {@link Engine} (Javalin on Jetty, handlers on virtual threads):
 * {@code POST /v1/chat/completions} and {@code /v1/completions} (streamed as server-sent events or whole),
 * {@code GET /v1/models}, {@code /health} and {@code /metrics} (Prometheus text). Every error is an OpenAI-style JSON
 * body, Jetty's own rejections included; a client that goes away cancels its request, streaming or not. Connections
 * are bounded in number, in idle time and in the time their request headers may take. The server owns the engine and
 * closes it on {@link #shutdown}.
 */
public final class OpenAiServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(OpenAiServer.class);

    static {
        // a malformed request is the client's fault, not the server's: Jetty's parser warns about some (two Host
        // headers, a bad authority), one line per request, which a hostile client could repeat to flood the log.
        // With slf4j-simple (jnext.jar's backend) those two loggers log errors only, unless configured otherwise;
        // other backends ignore these properties. Set before the first connection creates those loggers.
        for (String logger : List.of("org.eclipse.jetty.http.HttpParser", "org.eclipse.jetty.util.HostPort")) {
            String key = "org.slf4j.simpleLogger.log." + logger;
            if (System.getProperty(key) == null) System.setProperty(key, "error");
        }
    }
    private static final byte[] DONE = "data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8);
    private static final byte[] KEEP_ALIVE = ": keep-alive\n\n".getBytes(StandardCharsets.UTF_8);
    /** How often a non-streaming request checks that its client is still connected. */
    static final Duration DISCONNECT_PROBE = Duration.ofMillis(100);
    /** After the drain (and the engine's close), how long handlers may take to write their last bytes. */
    static final Duration FINAL_GRACE = Duration.ofSeconds(1);
    /** Then, with the listener closed, how long requests on open connections may still be answered (503). */
    static final Duration CLOSE_LINGER = Duration.ofSeconds(1);

    private final Engine engine;
    private final ServerOptions options;
    private final ServerMetrics metrics;
    private final ObjectMapper json = new ObjectMapper();
    private final byte[] apiKeyDigest;
    private final long created = System.currentTimeMillis() / 1000;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicBoolean draining = new AtomicBoolean();
    private final CountDownLatch stopped = new CountDownLatch(1);
    private final ConnectionGuard guard;
    private volatile ServerConnector connector;
    private volatile Server jetty;
    private final Javalin app;

    private OpenAiServer(Engine engine, ServerOptions options) {
        this.engine = engine;
        this.options = options;
        this.metrics = new ServerMetrics(engine);
        this.apiKeyDigest = options.apiKey() == null ? null : sha256(options.apiKey());
        this.guard = new ConnectionGuard(options.headerTimeout());
        JsonErrorHandler errors = new JsonErrorHandler();
        this.app = Javalin.create(config -> {
            config.startup.showJavalinBanner = false;
            config.startup.showOldJavalinVersionWarning = false;
            config.concurrency.useVirtualThreads = true;
            config.http.compressionStrategy = CompressionStrategy.NONE;
            config.http.prefer405over404 = true;
            config.jetty.modifyServer(server -> {
                jetty = server;
                server.setErrorHandler(errors);
                server.insertHandler(guard); // in front of Javalin's context: sees every request of every connection
            });
            config.jetty.modifyServletContextHandler(context -> context.setErrorHandler(errors));
            config.jetty.addConnector((server, http) -> {
                ServerConnector c = new ServerConnector(server, new HttpConnectionFactory(http));
                c.setHost(options.host());
                c.setPort(options.port());
                // a connection quiet this long is closed; a non-streaming request that is generating keeps its
                // connection busy (see respond), a streaming one writes tokens or keep-alive comments
                c.setIdleTimeout(options.idleTimeout().toMillis());
                c.setShutdownIdleTimeout(CLOSE_LINGER.toMillis());
                c.addBean(guard, false); // a Connection.Listener of every connection (its life cycle is the server's)
                server.addBean(new NetworkConnectionLimit(options.maxConnections(), c));
                connector = c;
                return c;
            });
            config.routes.before(ctx -> {
                if (draining.get()) ctx.header("Connection", "close"); // while draining, no connection is kept
                authorize(ctx);
            });
            config.routes.get("/health", this::health);
            config.routes.get("/metrics", ctx -> ctx.contentType(ServerMetrics.contentType()).result(metrics.scrape()));
            config.routes.get("/v1/models", this::models);
            config.routes.post(OpenAiRequest.Endpoint.CHAT.path, ctx -> completion(ctx, OpenAiRequest.Endpoint.CHAT));
            config.routes.post(OpenAiRequest.Endpoint.COMPLETIONS.path, ctx -> completion(ctx, OpenAiRequest.Endpoint.COMPLETIONS));
            config.routes.exception(ApiError.class, (e, ctx) -> writeError(ctx, e));
            config.routes.exception(Exception.class, (e, ctx) -> {
                if (isClientFault(e)) {
                    // the client broke the exchange (a malformed or truncated body, a closed connection): one line
                    log.debug("{} {}: client fault: {}", ctx.method(), ctx.path(), e.toString());
                    writeError(ctx, ApiError.badRequest(null, "the request could not be read: " + describe(e)));
                    return;
                }
                log.warn("{} {} failed", ctx.method(), ctx.path(), e);
                writeError(ctx, new ApiError(500, "server_error", null, null, "internal error: " + e.getClass().getSimpleName(), null));
            });
            config.routes.exception(HttpResponseException.class, (e, ctx) -> writeError(ctx, new ApiError(e.getStatus(),
                    e.getStatus() >= 500 ? "server_error" : "invalid_request_error", null, switch (e.getStatus()) {
                        case 404 -> "not_found";
                        case 405 -> "method_not_allowed";
                        default -> null;
                    }, e.getStatus() == 404 ? "no route " + ctx.method() + " " + ctx.path()
                    : e.getStatus() == 405 ? "method " + ctx.method() + " is not allowed on " + ctx.path() : e.getMessage(), null)));
        });
    }

    /**
     * Starts serving {@code engine} (which the server then owns). Refuses a non-loopback host without an API key, and a
     * port that is taken, with a {@link JnextException}.
     */
    public static OpenAiServer start(Engine engine, ServerOptions options) {
        options.checkExposure();
        OpenAiServer server = new OpenAiServer(engine, options);
        try {
            server.app.start();
        } catch (RuntimeException e) {
            String why = e.getMessage() != null ? e.getMessage() : e.toString();
            for (Throwable t = e; t != null; t = t.getCause()) {
                if (t instanceof java.net.BindException b) why = b.getMessage();
            }
            throw new JnextException("cannot listen on " + options.host() + ":" + options.port() + ": " + why, e);
        }
        log.info("serving {} on http://{}:{}/v1", engine.modelName(), options.host(), server.port());
        return server;
    }

    /** The port listened on (the one picked when the options said 0). */
    public int port() {
        return app.port();
    }

    public Engine engine() {
        return engine;
    }

    public ServerMetrics metrics() {
        return metrics;
    }

    /** Open HTTP connections (the connection cap bounds them). */
    int openConnections() {
        return guard.openConnections();
    }

    /** Completion requests being handled now. */
    public int inFlight() {
        return inFlight.get();
    }

    // ---- routes ----

    private void authorize(Context ctx) {
        if (apiKeyDigest == null || ctx.path().equals("/health")) return;
        String header = ctx.header("Authorization");
        String given = header != null && header.regionMatches(true, 0, "Bearer ", 0, 7) ? header.substring(7).trim() : "";
        // digests of equal length compared in constant time: neither the key nor its length leaks through timing
        if (!MessageDigest.isEqual(sha256(given), apiKeyDigest)) {
            throw new ApiError(401, "invalid_request_error", null, "invalid_api_key",
                    "missing or wrong API key: send it as \"Authorization: Bearer KEY\"", null);
        }
    }

    private void health(Context ctx) {
        String status = draining.get() ? "draining" : engine.isRunning() ? "ok" : "engine stopped";
        ctx.status(status.equals("ok") ? 200 : 503).contentType("application/json").result("{\"status\":\"" + status + "\"}");
    }

    private void models(Context ctx) throws IOException {
        ObjectNode root = json.createObjectNode();
        root.put("object", "list");
        ObjectNode m = root.putArray("data").addObject();
        m.put("id", engine.modelName());
        m.put("object", "model");
        m.put("created", created);
        m.put("owned_by", "jnext");
        m.put("max_model_len", engine.contextLength());
        m.put("device", engine.deviceName());
        ctx.contentType("application/json").result(json.writeValueAsBytes(root));
    }

    private void completion(Context ctx, OpenAiRequest.Endpoint endpoint) throws Exception {
        long arrival = System.nanoTime();
        inFlight.incrementAndGet();
        try {
            if (draining.get()) throw new ApiError(503, "server_error", null, "shutting_down", "the server is shutting down", null);
            OpenAiRequest request;
            try {
                request = OpenAiRequest.parse(readBody(ctx), endpoint, engine.generationConfig(), options.defaultMaxTokens());
            } catch (JnextException e) {
                throw ApiError.badRequest(null, e.getMessage());
            }
            if (!request.model().equals(engine.modelName())) {
                throw new ApiError(404, "invalid_request_error", "model", "model_not_found",
                        "the model `" + request.model() + "` does not exist; this server serves `" + engine.modelName() + "`", null);
            }
            ChatOutput output = ChatOutput.prepare(engine, request); // tool calls and reasoning (issue 18)
            GenerationHandle handle = submit(request, output);
            String id = (endpoint == OpenAiRequest.Endpoint.CHAT ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
            var responses = new OpenAiResponses(json, engine.tokenizer(), request, output, id, System.currentTimeMillis() / 1000,
                    engine.modelName());
            if (request.stream()) stream(ctx, request, handle, responses, arrival);
            else respond(ctx, request, handle, responses, arrival);
        } catch (ApiError e) {
            metrics.requestRefused(endpointName(endpoint), e.status());
            writeNow(ctx, e.status(), json.writeValueAsBytes(e.toJson(json)), e.retryAfterSeconds());
        } finally {
            inFlight.decrementAndGet();
        }
    }

    private GenerationHandle submit(OpenAiRequest request, ChatOutput output) {
        if (output.generation().responseFormat().constrains() && !engine.supportsStructuredOutput()) {
            throw ApiError.badRequest("response_format", "response_format json_object / json_schema needs constrained decoding, "
                    + "which the " + engine.device() + " backend does not do yet (serve on --device cpu for structured output)");
        }
        try {
            return engine.submit(output.generation());
        } catch (EngineOverloadedException e) {
            throw new ApiError(429, "rate_limit_error", null, "server_overloaded", e.getMessage(), 1);
        } catch (EngineClosedException e) {
            throw new ApiError(503, "server_error", null, "shutting_down", e.getMessage(), null);
        } catch (JnextException e) {
            String param = request.endpoint() == OpenAiRequest.Endpoint.CHAT ? "messages" : "prompt";
            throw ApiError.badRequest(param, e.getMessage());
        }
    }

    /**
     * The whole response once the request has ended. While it waits, it checks every {@link #DISCONNECT_PROBE} that
     * the client is still connected: one that has gone cancels the request (its slot frees at the next step).
     */
    private void respond(Context ctx, OpenAiRequest request, GenerationHandle handle, OpenAiResponses responses, long arrival)
            throws Exception {
        StringBuilder text = new StringBuilder();
        List<GeneratedToken> tokens = new ArrayList<>();
        Latencies latencies = new Latencies(arrival);
        String endpoint = endpointName(request.endpoint());
        Object connection = ctx.req().getAttribute(ConnectionGuard.CONNECTION_ATTRIBUTE);
        boolean probing = connection != null;
        long nextProbe = System.nanoTime() + DISCONNECT_PROBE.toNanos();
        GenerationEvent e;
        try {
            while (true) {
                e = handle.poll(DISCONNECT_PROBE);
                if (e != null) {
                    if (e.isTerminal()) break;
                    var t = (GenerationEvent.Tokens) e;
                    text.append(t.text());
                    tokens.addAll(t.tokens());
                    latencies.tokens(t);
                }
                if (probing && System.nanoTime() >= nextProbe) {
                    nextProbe = System.nanoTime() + DISCONNECT_PROBE.toNanos();
                    switch (ConnectionGuard.probe(connection)) {
                        case THERE -> { }
                        case GONE -> {
                            handle.cancel();
                            metrics.requestEnded(endpoint, "disconnected", System.nanoTime() - arrival);
                            log.debug("request {}: the client disconnected; cancelled", handle.id());
                            return;
                        }
                        case UNKNOWN -> { // bytes of a pipelined request came and were consumed: close after this one
                            probing = false;
                            ctx.res().setHeader("Connection", "close");
                        }
                    }
                }
            }
        } catch (InterruptedException ie) {
            handle.cancel();
            throw ie;
        }
        switch (e) {
            case GenerationEvent.Finished f -> {
                writeNow(ctx, 200, json.writeValueAsBytes(responses.complete(text.toString(), tokens, f.reason(), f.promptTokens(), f.cachedPromptTokens())), null);
                metrics.requestEnded(endpoint, outcome(f), System.nanoTime() - arrival);
            }
            case GenerationEvent.Failed f -> throw failure(f);
            case GenerationEvent.Tokens t -> throw new IllegalStateException("not a terminal event");
        }
    }

    /** Server-sent events: a chunk per step that produced text (or log-probabilities), then [DONE]. */
    private void stream(Context ctx, OpenAiRequest request, GenerationHandle handle, OpenAiResponses responses, long arrival) {
        HttpServletResponse res = ctx.res();
        res.setStatus(200);
        res.setContentType("text/event-stream");
        res.setCharacterEncoding("UTF-8");
        res.setHeader("Cache-Control", "no-cache");
        res.setHeader("X-Accel-Buffering", "no");
        String endpoint = endpointName(request.endpoint());
        Latencies latencies = new Latencies(arrival);
        try {
            OutputStream out = res.getOutputStream();
            if (request.endpoint() == OpenAiRequest.Endpoint.CHAT) send(out, responses.roleChunk());
            else out.flush();
            while (true) {
                GenerationEvent e = handle.poll(options.keepAlive());
                switch (e) {
                    case null -> {
                        out.write(KEEP_ALIVE);
                        out.flush();
                    }
                    case GenerationEvent.Tokens t -> {
                        latencies.tokens(t);
                        for (ObjectNode chunk : responses.chunks(t.text(), t.tokens())) send(out, chunk);
                    }
                    case GenerationEvent.Finished f -> {
                        if (f.reason() != dev.jnext.engine.FinishReason.CANCELLED) {
                            for (ObjectNode chunk : responses.lastChunks(f.reason())) send(out, chunk);
                            if (request.includeUsage()) send(out, responses.usageChunk(f.promptTokens(), f.completionTokens(), f.cachedPromptTokens()));
                        }
                        out.write(DONE);
                        out.close(); // completes the response now, while the request still counts as in flight
                        metrics.requestEnded(endpoint, outcome(f), System.nanoTime() - arrival);
                        return;
                    }
                    case GenerationEvent.Failed f -> {
                        send(out, failure(f).toJson(json));
                        out.write(DONE);
                        out.close();
                        metrics.requestEnded(endpoint, Integer.toString(failure(f).status()), System.nanoTime() - arrival);
                        return;
                    }
                }
            }
        } catch (IOException e) {
            // the client went away (or the connection broke): stop generating for it
            handle.cancel();
            metrics.requestEnded(endpoint, "disconnected", System.nanoTime() - arrival);
            log.debug("stream of request {} ended early: {}", handle.id(), e.toString());
        } catch (RuntimeException e) {
            handle.cancel();
            metrics.requestEnded(endpoint, "500", System.nanoTime() - arrival);
            log.warn("stream of request {} failed", handle.id(), e);
        } catch (InterruptedException e) {
            handle.cancel();
            Thread.currentThread().interrupt();
        }
    }

    private void send(OutputStream out, ObjectNode chunk) throws IOException {
        out.write("data: ".getBytes(StandardCharsets.UTF_8));
        out.write(json.writeValueAsBytes(chunk));
        out.write("\n\n".getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    /** Time to first token and inter-token latency of one request, from the engine's event times. */
    private final class Latencies {
        private final long arrival;
        private long last;

        Latencies(long arrival) {
            this.arrival = arrival;
        }

        void tokens(GenerationEvent.Tokens t) {
            if (t.tokens().isEmpty()) return;
            if (last == 0) metrics.timeToFirstToken(t.nanoTime() - arrival);
            else metrics.interTokenLatency(t.nanoTime() - last);
            last = t.nanoTime();
        }
    }

    private static String outcome(GenerationEvent.Finished f) {
        return f.reason().openAiName() != null ? f.reason().openAiName() : "cancelled";
    }

    private static ApiError failure(GenerationEvent.Failed f) {
        return switch (f.kind()) {
            case REJECTED -> ApiError.badRequest("max_tokens", f.message());
            case ENGINE_CLOSED -> new ApiError(503, "server_error", null, "shutting_down", f.message(), null);
            case BACKEND_ERROR -> new ApiError(500, "server_error", null, "model_error", f.message(), null);
        };
    }

    private static String endpointName(OpenAiRequest.Endpoint e) {
        return e == OpenAiRequest.Endpoint.CHAT ? "chat" : "completions";
    }

    /**
     * The request body, at most {@code maxRequestBytes}. A body that cannot be read (malformed chunked framing, a
     * connection that closed before the declared length, an idle timeout) is the client's fault: a 400, logged at
     * debug in one line.
     */
    private byte[] readBody(Context ctx) {
        long limit = options.maxRequestBytes();
        long declared = ctx.req().getContentLengthLong();
        try (InputStream in = ctx.req().getInputStream()) {
            if (declared > limit) {
                discardRefusedBody(ctx, in, declared);
                throw ApiError.badRequest(null, "the request body has " + declared + " bytes; the limit is " + limit);
            }
            byte[] body = in.readNBytes((int) Math.min(limit + 1, Integer.MAX_VALUE - 8));
            if (body.length > limit) {
                discardRefusedBody(ctx, in, declared);
                throw ApiError.badRequest(null, "the request body is larger than the limit of " + limit + " bytes");
            }
            return body;
        } catch (ApiError e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            if (!isClientFault(e)) throw e instanceof RuntimeException r ? r : new IllegalStateException(e);
            log.debug("{} {}: the request body could not be read: {}", ctx.method(), ctx.path(), e.toString());
            throw ApiError.badRequest(null, "the request body could not be read: " + describe(e));
        }
    }

    /** Bytes of a refused body the server still reads and drops so that its client gets the 400. */
    static final long REFUSED_BODY_DRAIN_BYTES = 64L << 20;

    /**
     * Reads and drops the rest of a body refused for its size (up to {@link #REFUSED_BODY_DRAIN_BYTES}) and closes the
     * connection after the answer. Answering while the client still writes made Jetty close the connection under it:
     * the client then read a reset instead of the 400 ("HTTP/1.1 header parser received no bytes", one run in two of
     * {@code oversizedBodiesAre400}). A body larger than the cap still gets the close without the read.
     */
    private static void discardRefusedBody(Context ctx, InputStream in, long declared) {
        ctx.res().setHeader("Connection", "close");
        if (declared > REFUSED_BODY_DRAIN_BYTES) return;
        byte[] sink = new byte[64 << 10];
        long read = 0;
        try {
            for (int n; read < REFUSED_BODY_DRAIN_BYTES && (n = in.read(sink)) >= 0; ) read += n;
        } catch (IOException | RuntimeException e) {
            log.debug("refused request body: the client stopped sending after {} more bytes ({})", read, e.toString());
        }
    }

    /** Whether {@code e} (or a cause) is the client's doing: bad framing, an early end of the body, a broken connection. */
    static boolean isClientFault(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof HttpException || t instanceof EofException || t instanceof TimeoutException
                    || t instanceof java.io.EOFException || t instanceof java.nio.channels.ClosedChannelException) {
                return true;
            }
            if (t instanceof IOException io && io.getMessage() != null) {
                String m = io.getMessage().toLowerCase(java.util.Locale.ROOT);
                if (m.contains("broken pipe") || m.contains("connection reset")) return true;
            }
            if (t.getCause() == t) break;
        }
        return false;
    }

    /** One line about a client fault, for its 400: what Jetty said, without classes or stack. */
    static String describe(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof HttpException h && h.getReason() != null) return h.getReason();
            if (t.getCause() == t) break;
        }
        String m = e.getMessage();
        if (e instanceof EofException || e instanceof java.io.EOFException) return "the body ended early (the connection closed or the framing is broken)";
        if (e instanceof TimeoutException || e.getCause() instanceof TimeoutException) return "the body did not arrive in time";
        return m == null || m.isBlank() ? "the connection broke" : m.length() > 200 ? m.substring(0, 200) + "..." : m;
    }

    /**
     * Writes a whole JSON response and completes it before the handler returns, so that a drain waiting for the
     * requests in flight also waits for their bytes.
     */
    private static void writeNow(Context ctx, int status, byte[] body, Integer retryAfter) throws IOException {
        HttpServletResponse res = ctx.res();
        if (res.isCommitted()) return;
        res.setStatus(status);
        res.setContentType("application/json");
        if (retryAfter != null) res.setHeader("Retry-After", retryAfter.toString());
        res.setContentLength(body.length);
        try (OutputStream out = res.getOutputStream()) {
            out.write(body);
        }
    }

    private void writeError(Context ctx, ApiError e) {
        if (ctx.res().isCommitted()) return;
        ctx.status(e.status()).contentType("application/json");
        if (e.retryAfterSeconds() != null) ctx.header("Retry-After", e.retryAfterSeconds().toString());
        try {
            ctx.result(json.writeValueAsBytes(e.toJson(json)));
        } catch (com.fasterxml.jackson.core.JsonProcessingException impossible) {
            ctx.result("{\"error\":{\"message\":\"internal error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}");
        }
    }

    private static byte[] sha256(String s) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }

    // ---- shutdown ----

    /**
     * Stops gracefully, within a hard deadline of about {@code drain} + 2 s whatever clients do: new completion
     * requests get 503 (and every response {@code Connection: close}), /health turns 503; requests in flight (reading
     * their body, queued or generating) may finish for up to {@code drain}; then the engine is closed, which ends every
     * remaining request with an error (a 503 or the stream's error event), and handlers get {@link #FINAL_GRACE} to
     * write it; then the listener closes (new connections are refused), requests already on open connections are still
     * answered (503) for up to {@link #CLOSE_LINGER}, and the remaining connections are closed. Idempotent; a second
     * caller waits for the first.
     */
    public void shutdown(Duration drain) {
        if (!draining.compareAndSet(false, true)) {
            awaitStopped();
            return;
        }
        try {
            log.info("shutting down: {} requests in flight, draining for up to {} s", inFlight.get(), drain.toSeconds());
            long deadline = System.nanoTime() + drain.toNanos();
            while (inFlight.get() > 0 && System.nanoTime() < deadline) Thread.sleep(10);
            engine.close();
            long grace = System.nanoTime() + FINAL_GRACE.toNanos(); // handlers write their last event or error
            while (inFlight.get() > 0 && System.nanoTime() < grace) Thread.sleep(5);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            engine.close();
        } finally {
            stopHttp();
            stopped.countDown();
            log.info("stopped");
        }
    }

    /**
     * Closes the listener first (Jetty's graceful shutdown of the connector: responses from now on close their
     * connection, idle connections time out after the linger), waits up to {@link #CLOSE_LINGER} for the open
     * connections to finish, then stops Jetty, which closes whatever is left.
     */
    private void stopHttp() {
        ServerConnector c = connector;
        if (c != null) {
            try {
                c.shutdown().get(CLOSE_LINGER.toMillis(), TimeUnit.MILLISECONDS);
            } catch (java.util.concurrent.ExecutionException | TimeoutException e) {
                log.debug("connections still open after {} ms; closing them", CLOSE_LINGER.toMillis());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        Server s = jetty;
        if (s != null) s.setStopTimeout(0); // the graceful part is done: stop now
        try {
            app.stop();
        } catch (RuntimeException e) {
            log.warn("stopping the HTTP server: {}", e.toString());
        }
    }

    /** Blocks until the server has stopped. */
    public void awaitStopped() {
        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** {@link #shutdown} with the options' drain timeout. */
    @Override
    public void close() {
        shutdown(options.drainTimeout());
    }
}
