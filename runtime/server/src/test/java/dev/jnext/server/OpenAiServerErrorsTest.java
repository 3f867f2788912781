package dev.jnext.server;

import dev.jnext.backend.DeviceChoice;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jnext.JnextException;
import dev.jnext.engine.Engine;
import dev.jnext.engine.EngineOptions;
import dev.jnext.model.TestCheckpoints;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Error cases and reliability over plain HTTP: every refusal is an OpenAI-style JSON error and the server keeps working. */
@Timeout(120)
class OpenAiServerErrorsTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static TestServer server;

    @BeforeAll
    static void start() {
        server = TestServer.start(2, 8, TestServer.options());
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    private static String chat(String extra) {
        return "{\"model\": \"" + server.model() + "\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], "
                + "\"max_tokens\": 3" + (extra.isEmpty() ? "" : ", " + extra) + "}";
    }

    /** The status, and the error object of an OpenAI-style error body (never a stack trace). */
    static JsonNode error(HttpResponse<String> r, int status) throws Exception {
        assertEquals(status, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("application/json"), r.headers().toString());
        assertFalse(r.body().contains("\tat ") || r.body().contains("Exception"), "a stack trace leaked: " + r.body());
        JsonNode e = JSON.readTree(r.body()).get("error");
        assertNotNull(e, r.body());
        assertTrue(e.get("message").isTextual() && !e.get("message").asText().isBlank(), r.body());
        assertTrue(e.has("type") && e.has("param") && e.has("code"), r.body());
        return e;
    }

    private static void stillServes() throws Exception {
        HttpResponse<String> ok = server.post("/v1/chat/completions", chat(""));
        assertEquals(200, ok.statusCode(), ok.body());
        assertEquals("chat.completion", JSON.readTree(ok.body()).get("object").asText());
    }

    @Test
    void malformedRequestsAre400WithTheFieldNamed() throws Exception {
        assertEquals("invalid_request_error", error(server.post("/v1/chat/completions", "{not json"), 400).get("type").asText());
        error(server.post("/v1/chat/completions", ""), 400);
        error(server.post("/v1/chat/completions", "[1, 2]"), 400);
        error(server.post("/v1/chat/completions", "{} {}"), 400);
        assertEquals("max_tokens", error(server.post("/v1/chat/completions", chat("\"max_tokens\": \"many\"").replace("\"max_tokens\": 3, ", "")), 400).get("param").asText());
        assertEquals("temperature", error(server.post("/v1/chat/completions", chat("\"temperature\": 7")), 400).get("param").asText());
        assertEquals("messages[0].role", error(server.post("/v1/chat/completions",
                "{\"model\": \"" + server.model() + "\", \"messages\": [{\"role\": \"wizard\", \"content\": \"x\"}]}"), 400).get("param").asText());
        assertEquals("messages", error(server.post("/v1/chat/completions", "{\"model\": \"" + server.model() + "\"}"), 400).get("param").asText());
        assertEquals("n", error(server.post("/v1/chat/completions", chat("\"n\": 2")), 400).get("param").asText());
        assertEquals("stop", error(server.post("/v1/chat/completions", chat("\"stop\": [1]")), 400).get("param").asText());
        error(server.post("/v1/chat/completions", chat("\"messages\": 5")), 400); // a duplicate key
        error(server.post("/v1/chat/completions", "[".repeat(500) + "]".repeat(500)), 400);
        assertEquals("prompt", error(server.post("/v1/completions", "{\"model\": \"" + server.model() + "\", \"prompt\": [151936]}"), 400).get("param").asText());
        stillServes();
    }

    @Test
    void oversizedBodiesAre400() throws Exception {
        String big = chat("\"user\": \"" + "x".repeat(100_000) + "\"");
        JsonNode e = error(server.post("/v1/chat/completions", big), 400);
        assertTrue(e.get("message").asText().contains("limit"), e.toString());
        stillServes();
    }

    @Test
    void unknownRoutesMethodsAndModelsAreJsonErrors() throws Exception {
        assertEquals("not_found", error(server.get("/v1/nothing"), 404).get("code").asText());
        error(server.get("/v1/chat/completions"), 405);
        JsonNode e = error(server.post("/v1/chat/completions", chat("").replace(server.model(), "gpt-9")), 404);
        assertEquals("model_not_found", e.get("code").asText());
        HttpResponse<String> noKey = server.http.send(HttpRequest.newBuilder(java.net.URI.create(server.base + "/v1/models")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals("invalid_api_key", error(noKey, 401).get("code").asText());
        assertEquals(200, server.http.send(HttpRequest.newBuilder(java.net.URI.create(server.base + "/health")).build(),
                HttpResponse.BodyHandlers.ofString()).statusCode(), "health needs no key");
    }

    @Test
    void aPromptOverTheContextIsRefusedNamingBothLengths(@TempDir Path tmp) throws Exception {
        Path small = tmp.resolve("short-context");
        Files.createDirectories(small);
        try (var files = Files.list(TestCheckpoints.tinyQwen())) {
            for (Path f : files.toList()) Files.copy(f, small.resolve(f.getFileName()));
        }
        String config = Files.readString(small.resolve("config.json"));
        Files.writeString(small.resolve("config.json"), config.replaceFirst("\"max_position_embeddings\"\\s*:\\s*\\d+", "\"max_position_embeddings\": 16"));
        try (TestServer s = new TestServer(small, EngineOptions.defaults().withMaxSequences(1), TestServer.options())) {
            String prompt = "one two three ".repeat(10).strip();
            int tokens = s.server.engine().tokenizer().encode(prompt).length;
            JsonNode e = error(s.post("/v1/completions", "{\"model\": \"short-context\", \"prompt\": \"" + prompt + "\"}"), 400);
            String m = e.get("message").asText();
            assertTrue(m.contains(tokens + " tokens") && m.contains("context holds 16"), m);
            // a prompt that fits but whose answer would not: generation stops at the context with finish_reason length
            HttpResponse<String> r = s.post("/v1/completions", "{\"model\": \"short-context\", \"prompt\": \"one two three\", \"max_tokens\": 100}");
            assertEquals(200, r.statusCode(), r.body());
            assertEquals("length", JSON.readTree(r.body()).at("/choices/0/finish_reason").asText());
            assertEquals(16, JSON.readTree(r.body()).at("/usage/total_tokens").asInt());
        }
    }

    /** Opens a stream of a long generation and returns its reader once the first data line came. */
    private static BufferedReader openStream(TestServer s) throws Exception {
        String body = "{\"model\": \"" + s.model() + "\", \"prompt\": \"go\", \"max_tokens\": 100000, \"stream\": true, \"ignore_eos\": true}";
        HttpResponse<InputStream> r = s.http.send(s.request("/v1/completions").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofInputStream());
        assertEquals(200, r.statusCode());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
        BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8));
        String line;
        do line = in.readLine(); while (line != null && !line.startsWith("data: {"));
        assertNotNull(line);
        return in;
    }

    @Test
    void pastTheQueueLimitRequestsGet429WithRetryAfter() throws Exception {
        try (TestServer s = TestServer.start(1, 1, TestServer.options())) {
            BufferedReader running = openStream(s);
            // one more may queue; the next is refused
            CompletableFuture<HttpResponse<String>> queued = s.http.sendAsync(s.request("/v1/chat/completions")
                    .POST(HttpRequest.BodyPublishers.ofString(chatFor(s, 2))).build(), HttpResponse.BodyHandlers.ofString());
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (s.server.engine().stats().queued() < 1 && System.nanoTime() < deadline) Thread.sleep(10);
            HttpResponse<String> refused = s.post("/v1/chat/completions", chatFor(s, 2));
            JsonNode e = error(refused, 429);
            assertEquals("server_overloaded", e.get("code").asText());
            assertTrue(refused.headers().firstValue("Retry-After").isPresent());
            running.close(); // the client goes away: its slot frees, the queued request runs
            assertEquals(200, queued.get().statusCode(), queued.get().body());
        }
    }

    private static String chatFor(TestServer s, int maxTokens) {
        return "{\"model\": \"" + s.model() + "\", \"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"max_tokens\": " + maxTokens + "}";
    }

    @Test
    void aClientThatDisconnectsCancelsItsRequestAndFreesItsSlot() throws Exception {
        try (TestServer s = TestServer.start(1, 4, TestServer.options())) {
            BufferedReader in = openStream(s);
            assertEquals(1, s.server.engine().stats().running());
            long generatedBefore = s.server.engine().stats().generatedTokens();
            in.close();
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (s.server.engine().stats().running() > 0 && System.nanoTime() < deadline) Thread.sleep(5);
            assertEquals(0, s.server.engine().stats().running(), "the slot is free");
            assertEquals(1, s.server.engine().stats().freeSlots());
            long generated = s.server.engine().stats().generatedTokens() - generatedBefore;
            assertTrue(generated < 5_000, "stopped long before its 100000 tokens: " + generated);
            String metrics = s.get("/metrics").body();
            assertTrue(metrics.contains("jnext_requests_total{endpoint=\"completions\",outcome=\"disconnected\"} 1"), metrics);
        }
    }

    @Test
    void shutdownEndsRunningStreamsWithAnErrorEventAndRefusesNewRequests() throws Exception {
        TestServer s = TestServer.start(2, 4, TestServer.options().withDrainTimeout(Duration.ofMillis(300)));
        BufferedReader in = openStream(s);
        Thread stopper = Thread.ofVirtual().start(() -> s.server.shutdown(Duration.ofMillis(300)));
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (s.get("/health").statusCode() == 200 && System.nanoTime() < deadline) Thread.sleep(5);
        assertEquals(503, s.get("/health").statusCode(), "draining");
        assertEquals("shutting_down", error(s.post("/v1/chat/completions", chatFor(s, 2)), 503).get("code").asText());
        List<String> lines = new ArrayList<>();
        for (String line; (line = in.readLine()) != null; ) if (line.startsWith("data: ")) lines.add(line);
        assertEquals("data: [DONE]", lines.getLast());
        JsonNode last = JSON.readTree(lines.get(lines.size() - 2).substring(6));
        assertEquals("shutting_down", last.at("/error/code").asText(), last.toString());
        stopper.join(10_000);
        assertEquals(0, s.server.inFlight());
        assertThrows(Exception.class, () -> s.get("/health"), "the server has stopped");
    }

    @Test
    void metricsExposeLoadAndLatencies() throws Exception {
        stillServes();
        String m = server.get("/metrics").body();
        for (String name : List.of("jnext_requests_queued", "jnext_requests_running", "jnext_generation_tokens_per_second",
                "jnext_generation_tokens_total", "jnext_time_to_first_token_seconds_bucket", "jnext_inter_token_latency_seconds_count",
                "jnext_jvm_heap_used_after_gc_bytes", "jnext_jvm_threads", "jnext_device_memory_used_bytes -1")) {
            assertTrue(m.contains(name), name + " missing:\n" + m);
        }
        assertTrue(m.contains("jnext_requests_total{endpoint=\"chat\",outcome=\"length\"}"), m);
    }

    @Test
    void aTakenPortIsAClearError() {
        Engine engine = Engine.open(TestCheckpoints.tinyQwen(), EngineOptions.defaults().withDevice(DeviceChoice.CPU)
                .withMaxSequences(1).withTokenizer(dev.jnext.tokenizer.TestTokenizers.qwen3Dir()));
        try {
            var e = assertThrows(JnextException.class, () -> OpenAiServer.start(engine, ServerOptions.defaults().withPort(server.server.port())));
            assertTrue(e.getMessage().contains("cannot listen on 127.0.0.1:" + server.server.port()), e.getMessage());
        } finally {
            engine.close();
        }
    }

    @Test
    void bindingBeyondLoopbackNeedsAKey() {
        var e = assertThrows(JnextException.class, () -> ServerOptions.defaults().withHost("0.0.0.0").checkExposure());
        assertTrue(e.getMessage().contains("--api-key"), e.getMessage());
        ServerOptions.defaults().withHost("0.0.0.0").withApiKey("k").checkExposure();
        ServerOptions.defaults().withHost("localhost").checkExposure();
    }
}
