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
import org.eclipse.jetty.server.HttpConnectionFactory;
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
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The OpenAI-compatible HTTP server over one {@link Engine} (Javalin on Jetty, handlers on virtual threads):
 * {@code POST /v1/chat/completions} and {@code /v1/completions} (streamed as server-sent events or whole),
 * {@code GET /v1/models}, {@code /health} and {@code /metrics} (Prometheus text). Every error is an OpenAI-style JSON
 * body; a client that goes away mid-stream cancels its request. The server owns the engine and closes it on
 * {@link #shutdown}.
 */
public final class OpenAiServer implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(OpenAiServer.class);
    private static final byte[] DONE = "data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8);
    private static final byte[] KEEP_ALIVE = ": keep-alive\n\n".getBytes(StandardCharsets.UTF_8);

    private final Engine engine;
    private final ServerOptions options;
    private final ServerMetrics metrics;
    private final ObjectMapper json = new ObjectMapper();
    private final byte[] apiKeyDigest;
    private final long created = System.currentTimeMillis() / 1000;
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicBoolean draining = new AtomicBoolean();
    private final CountDownLatch stopped = new CountDownLatch(1);
    private final Javalin app;

    private OpenAiServer(Engine engine, ServerOptions options) {
        this.engine = engine;
        this.options = options;
        this.metrics = new ServerMetrics(engine);
        this.apiKeyDigest = options.apiKey() == null ? null : sha256(options.apiKey());
        this.app = Javalin.create(config -> {
            config.startup.showJavalinBanner = false;
            config.startup.showOldJavalinVersionWarning = false;
            config.concurrency.useVirtualThreads = true;
            config.http.compressionStrategy = CompressionStrategy.NONE;
            config.http.prefer405over404 = true;
            config.jetty.addConnector((server, http) -> {
                ServerConnector c = new ServerConnector(server, new HttpConnectionFactory(http));
                c.setHost(options.host());
                c.setPort(options.port());
                c.setIdleTimeout(Duration.ofMinutes(30).toMillis()); // a whole response of a slow model may take long
                return c;
            });
            config.routes.before(this::authorize);
            config.routes.get("/health", this::health);
            config.routes.get("/metrics", ctx -> ctx.contentType(ServerMetrics.contentType()).result(metrics.scrape()));
            config.routes.get("/v1/models", this::models);
            config.routes.post(OpenAiRequest.Endpoint.CHAT.path, ctx -> completion(ctx, OpenAiRequest.Endpoint.CHAT));
            config.routes.post(OpenAiRequest.Endpoint.COMPLETIONS.path, ctx -> completion(ctx, OpenAiRequest.Endpoint.COMPLETIONS));
            config.routes.exception(ApiError.class, (e, ctx) -> writeError(ctx, e));
            config.routes.exception(Exception.class, (e, ctx) -> {
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

    /** The whole response once the request has ended. */
    private void respond(Context ctx, OpenAiRequest request, GenerationHandle handle, OpenAiResponses responses, long arrival)
            throws Exception {
        StringBuilder text = new StringBuilder();
        List<GeneratedToken> tokens = new ArrayList<>();
        Latencies latencies = new Latencies(arrival);
        GenerationEvent e;
        try {
            while (!(e = handle.next()).isTerminal()) {
                var t = (GenerationEvent.Tokens) e;
                text.append(t.text());
                tokens.addAll(t.tokens());
                latencies.tokens(t);
            }
        } catch (InterruptedException ie) {
            handle.cancel();
            throw ie;
        }
        String endpoint = endpointName(request.endpoint());
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

    private byte[] readBody(Context ctx) throws IOException {
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
        } catch (IOException e) {
            log.debug("refused request body: the client stopped sending after {} more bytes ({})", read, e.toString());
        }
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
     * Stops gracefully: new completion requests get 503 and /health turns 503; running requests may finish for up to
     * {@code drain}; then the engine is closed, which ends every remaining stream with an error event; then the HTTP
     * server stops. Idempotent; a second caller waits for the first.
     */
    public void shutdown(Duration drain) {
        if (!draining.compareAndSet(false, true)) {
            awaitStopped();
            return;
        }
        try {
            log.info("shutting down: {} requests in flight, draining for up to {} s", inFlight.get(), drain.toSeconds());
            long deadline = System.nanoTime() + drain.toNanos();
            while (inFlight.get() > 0 && System.nanoTime() < deadline) Thread.sleep(20);
            engine.close();
            long grace = System.nanoTime() + Duration.ofSeconds(5).toNanos(); // handlers write their last event
            while (inFlight.get() > 0 && System.nanoTime() < grace) Thread.sleep(10);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            engine.close();
        } finally {
            app.stop();
            stopped.countDown();
            log.info("stopped");
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
