package dev.jnext.server;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jnext.engine.FinishReason;
import dev.jnext.engine.GeneratedToken;
import dev.jnext.engine.GenerationConfig;
import dev.jnext.tokenizer.QwenTokenizer;
import dev.jnext.tokenizer.TestTokenizers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static dev.jnext.server.RawHttp.assertJsonError;
import static dev.jnext.server.RawHttp.bytes;
import static dev.jnext.server.RawHttp.closedByServer;
import static dev.jnext.server.RawHttp.exchange;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The HTTP layer against hostile clients, over raw sockets (issue 19): header and idle timeouts, the connection cap,
 * cancelling an abandoned non-streaming request, client faults in the body as one-line 400s, Jetty's own rejections
 * and bad UTF-8 as OpenAI JSON errors, the shutdown's hard deadline and its last 503s, blank API keys, and two
 * field-level fixes (text_offset in characters, the param of an out-of-range float). Time bounds here are upper
 * bounds only.
 */
@Timeout(120)
class ServerHardeningTest {
    static TestServer server;

    @BeforeAll
    static void start() {
        server = TestServer.start(2, 8, TestServer.options());
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    static int port(TestServer s) {
        return s.server.port();
    }

    static String completion(TestServer s, String extra) {
        return "{\"model\": \"" + s.model() + "\", \"prompt\": \"go\", \"max_tokens\": 2" + (extra.isEmpty() ? "" : ", " + extra) + "}";
    }

    static byte[] post(String path, String body, String extraHeaders) {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        byte[] head = bytes("POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TestServer.KEY
                + "\r\nContent-Type: application/json\r\nContent-Length: " + b.length + "\r\n" + extraHeaders + "\r\n");
        byte[] all = new byte[head.length + b.length];
        System.arraycopy(head, 0, all, 0, head.length);
        System.arraycopy(b, 0, all, head.length, b.length);
        return all;
    }

    static void assertHealthy(TestServer s) throws Exception {
        RawHttp.Reply r = exchange(port(s), bytes("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"), false);
        assertNotNull(r, "/health did not answer");
        assertEquals(200, r.status(), r.toString());
    }

    static void waitFor(java.util.function.BooleanSupplier condition, long millis, String what) throws InterruptedException {
        long deadline = System.nanoTime() + millis * 1_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) throw new AssertionError("timed out waiting: " + what);
            Thread.sleep(5);
        }
    }

    // ---- item 3: header timeout, idle timeout, connection cap ----

    @Test
    void halfSentHeadersAreClosedAtTheHeaderTimeoutAndTheConnectionCapHolds() throws Exception {
        try (TestServer s = TestServer.start(1, 4, TestServer.options().withHeaderTimeout(Duration.ofMillis(500))
                .withIdleTimeout(Duration.ofSeconds(5)).withMaxConnections(8))) {
            List<Socket> half = new ArrayList<>();
            try {
                int most = 0;
                for (int i = 0; i < 20; i++) {
                    Socket so = RawHttp.open(port(s)); // past the cap it waits in the kernel's backlog
                    so.getOutputStream().write(bytes("GET /health HTTP/1.1\r\nHost: x\r\nX-Half: aaaa"));
                    half.add(so);
                    most = Math.max(most, s.server.openConnections());
                }
                long until = System.nanoTime() + 1_000_000_000L;
                while (System.nanoTime() < until) {
                    most = Math.max(most, s.server.openConnections());
                    Thread.sleep(5);
                }
                assertTrue(most <= 8, "the cap is 8 connections, saw " + most);
                for (Socket so : half) assertTrue(closedByServer(so, 20_000), "a half header kept its connection open");
                assertHealthy(s);
            } finally {
                for (Socket so : half) so.close();
            }
        }
    }

    @Test
    void aHeaderDrippedByteByByteIsCutAtTheHeaderTimeoutAlsoOnAKeptAliveConnection() throws Exception {
        try (TestServer s = TestServer.start(1, 4, TestServer.options().withHeaderTimeout(Duration.ofMillis(500))
                .withIdleTimeout(Duration.ofSeconds(5)))) {
            for (boolean keptAlive : new boolean[]{false, true}) {
                try (Socket so = RawHttp.open(port(s))) {
                    OutputStream out = so.getOutputStream();
                    if (keptAlive) { // one whole request first: the deadline then runs from the next request's first byte
                        out.write(bytes("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
                        RawHttp.Reply r = RawHttp.read(so.getInputStream(), false);
                        assertNotNull(r);
                        assertEquals(200, r.status());
                    }
                    out.write(bytes("GET /health HTTP/1.1\r\nHost: x\r\nX-Drip: "));
                    long t0 = System.nanoTime();
                    boolean closed = false;
                    // a byte every 100 ms: never idle for the 5 s idle timeout, yet never a whole header
                    for (int i = 0; i < 150 && !closed; i++) {
                        try {
                            out.write('a');
                            out.flush();
                        } catch (IOException e) {
                            closed = true;
                            break;
                        }
                        closed = closedByServer(so, 100);
                    }
                    long ms = (System.nanoTime() - t0) / 1_000_000;
                    assertTrue(closed, "a dripped header was not cut (kept alive: " + keptAlive + ")");
                    assertTrue(ms < 10_000, "cut after " + ms + " ms");
                }
            }
            assertHealthy(s);
        }
    }

    @Test
    void anIdleKeptAliveConnectionIsClosedAtTheIdleTimeout() throws Exception {
        try (TestServer s = TestServer.start(1, 4, TestServer.options().withIdleTimeout(Duration.ofMillis(700)));
             Socket so = RawHttp.open(port(s))) {
            so.getOutputStream().write(bytes("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
            RawHttp.Reply r = RawHttp.read(so.getInputStream(), false);
            assertNotNull(r);
            assertEquals(200, r.status());
            assertTrue(closedByServer(so, 15_000), "an idle connection stayed open");
        }
    }

    @Test
    void aNonStreamingRequestThatWaitsLongerThanTheIdleTimeoutStillGetsItsAnswer() throws Exception {
        try (TestServer s = TestServer.start(1, 4, TestServer.options().withIdleTimeout(Duration.ofMillis(500)))) {
            BufferedReader stream = openStream(s); // holds the only slot
            CompletableFuture<HttpResponse<String>> queued = s.http.sendAsync(s.request("/v1/completions")
                    .POST(HttpRequest.BodyPublishers.ofString(completion(s, ""))).build(), HttpResponse.BodyHandlers.ofString());
            waitFor(() -> s.server.engine().stats().queued() == 1, 10_000, "the request to queue");
            Thread.sleep(1_500); // three idle timeouts with nothing written to its connection
            stream.close();
            HttpResponse<String> r = queued.get(30, TimeUnit.SECONDS);
            assertEquals(200, r.statusCode(), r.body());
        }
    }

    // ---- item 4: a non-streaming client that goes away cancels its request ----

    @Test
    void anAbandonedNonStreamingRequestIsCancelledAndFreesItsSlot() throws Exception {
        try (TestServer s = TestServer.start(1, 4, TestServer.options())) {
            long generatedBefore = s.server.engine().stats().generatedTokens();
            try (Socket so = RawHttp.open(port(s))) {
                so.getOutputStream().write(post("/v1/completions", completion(s, "\"max_tokens\": 100000, \"ignore_eos\": true")
                        .replace("\"max_tokens\": 2, ", ""), ""));
                waitFor(() -> s.server.engine().stats().running() == 1, 10_000, "the request to run");
            } // the client times out and closes its socket
            waitFor(() -> s.server.engine().stats().running() == 0, 10_000, "the slot to free");
            assertEquals(1, s.server.engine().stats().freeSlots());
            long generated = s.server.engine().stats().generatedTokens() - generatedBefore;
            assertTrue(generated < 5_000, "stopped long before its 100000 tokens: " + generated);
            waitFor(() -> s.server.inFlight() == 0, 10_000, "the handler to end");
            String metrics = s.get("/metrics").body();
            assertTrue(metrics.contains("jnext_requests_total{endpoint=\"completions\",outcome=\"disconnected\"} 1"), metrics);
            HttpResponse<String> ok = s.post("/v1/completions", completion(s, ""));
            assertEquals(200, ok.statusCode(), ok.body());
        }
    }

    // ---- item 5: a broken body is the client's fault: 400, one debug line ----

    @Test
    void malformedChunkedAndTruncatedBodiesAre400sWithoutAWarning() throws Exception {
        String log = RawHttp.capturingStderr(() -> {
            String head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TestServer.KEY
                    + "\r\nContent-Type: application/json\r\n";
            for (String request : List.of(
                    head + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",            // a chunk size that is no number
                    head + "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"mod\r\n",                  // ends inside the chunks
                    head + "Transfer-Encoding: chunked\r\n\r\n3\r\n{}xx\r\n0\r\n\r\n",            // a chunk longer than its size
                    head + "Content-Length: 500\r\n\r\n{\"model\": ")) {                            // shorter than declared
                JsonNode e = assertJsonError(exchange(port(server), bytes(request), false), 400);
                assertTrue(e.get("message").asText().contains("could not be read"), e.toString());
            }
            assertHealthy(server);
        });
        assertFalse(log.contains("WARN") || log.contains("ERROR") || log.contains("\tat "), "logged beyond debug:\n" + log);
    }

    // ---- item 7: every error is OpenAI's JSON error object, Jetty's included ----

    @Test
    void jettysOwnRejectionsAreJsonErrorsWithTheRightStatus() throws Exception {
        int p = port(server);
        String auth = "Authorization: Bearer " + TestServer.KEY + "\r\n";
        assertJsonError(exchange(p, bytes("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"), false), 400);
        assertJsonError(exchange(p, bytes("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"), false), 400);
        assertJsonError(exchange(p, bytes("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), false), 400);
        assertJsonError(exchange(p, bytes("GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: " + "a".repeat(64 << 10) + "\r\n\r\n"), false), 431);
        assertJsonError(exchange(p, bytes("POST /v1/completions HTTP/1.1\r\nHost: x\r\n" + auth + "Expect: 999-nope\r\nContent-Length: 2\r\n\r\n{}"), false), 417);
        assertJsonError(exchange(p, bytes("GET /v1/mod%00els HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n"), false), 400);
        assertJsonError(exchange(p, bytes("GET /%00 HTTP/1.1\r\nHost: x\r\n\r\n"), false), 400);
        assertEquals("not_found", assertJsonError(exchange(p, bytes("GET /nothing/here HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n"), false), 404).get("code").asText());
        assertJsonError(exchange(p, bytes("OPTIONS * HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n"), false), 0);
        assertJsonError(exchange(p, bytes("BREW /v1/models HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n"), false), 405);
        assertJsonError(exchange(p, bytes("GET /health HTTP/9.9\r\nHost: x\r\n\r\n"), false), 505);
        assertJsonError(exchange(p, bytes("GET /" + "a".repeat(70_000) + " HTTP/1.1\r\nHost: x\r\n\r\n"), false), 414);
        assertJsonError(exchange(p, bytes("GET /health HTTP/1.1\r\n\r\n"), false), 400); // no Host
        assertJsonError(exchange(p, new byte[]{1, 2, 3, 'x', '\r', '\n', '\r', '\n'}, false), 400);
        assertHealthy(server);
    }

    @Test
    void bodiesMustBeStrictUtf8() throws Exception {
        int p = port(server);
        String valid = completion(server, "");
        for (byte[] bad : List.of(new byte[]{'a', (byte) 0xC0, (byte) 0xAF, 'b'}, new byte[]{(byte) 0xED, (byte) 0xA0, (byte) 0x80},
                new byte[]{(byte) 0xE0, (byte) 0x80, (byte) 0xAF}, new byte[]{(byte) 0xF8, (byte) 0x88, (byte) 0x80, (byte) 0x80, (byte) 0x80},
                new byte[]{(byte) 0xFF}, new byte[]{(byte) 0x80})) {
            byte[] body = splice(valid.getBytes(StandardCharsets.UTF_8), "go", bad);
            byte[] head = bytes("POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TestServer.KEY
                    + "\r\nContent-Length: " + body.length + "\r\n\r\n");
            JsonNode e = assertJsonError(exchange(p, concat(head, body), false), 400);
            assertTrue(e.get("message").asText().contains("not valid UTF-8"), e.toString());
            // and directly: the parser refuses before Jackson sees it
            ApiError direct = assertThrows(ApiError.class, () -> OpenAiRequest.readJson(body));
            assertTrue(direct.getMessage().contains("UTF-8"), direct.getMessage());
        }
        OpenAiRequest.readJson("{\"prompt\": \"caf\u00e9 \ud83d\ude00 \\ud83d\\ude00\"}".getBytes(StandardCharsets.UTF_8)); // valid stays valid
    }

    static byte[] splice(byte[] body, String marker, byte[] with) {
        String s = new String(body, StandardCharsets.ISO_8859_1);
        int at = s.indexOf(marker);
        byte[] out = new byte[body.length - marker.length() + with.length];
        System.arraycopy(body, 0, out, 0, at);
        System.arraycopy(with, 0, out, at, with.length);
        System.arraycopy(body, at + marker.length(), out, at + with.length, body.length - at - marker.length());
        return out;
    }

    static byte[] concat(byte[] a, byte[] b) {
        byte[] out = new byte[a.length + b.length];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    // ---- item 8: shutdown edges ----

    /** Opens a stream of a long generation and returns its reader once the first data line came. */
    static BufferedReader openStream(TestServer s) throws Exception {
        String body = "{\"model\": \"" + s.model() + "\", \"prompt\": \"go\", \"max_tokens\": 100000, \"stream\": true, \"ignore_eos\": true}";
        HttpResponse<InputStream> r = s.http.send(s.request("/v1/completions").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofInputStream());
        assertEquals(200, r.statusCode());
        BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8));
        String line;
        do line = in.readLine(); while (line != null && !line.startsWith("data: {"));
        assertNotNull(line);
        return in;
    }

    @Test
    void aClientThatNeverFinishesItsBodyDoesNotKeepTheDrainPastItsDeadline() throws Exception {
        TestServer s = TestServer.start(1, 4, TestServer.options());
        try (Socket so = RawHttp.open(port(s))) {
            so.getOutputStream().write(bytes("POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TestServer.KEY
                    + "\r\nContent-Length: 1000\r\n\r\n{\"model\": "));
            waitFor(() -> s.server.inFlight() == 1, 10_000, "the handler to read the body");
            long t0 = System.nanoTime();
            s.server.shutdown(Duration.ofMillis(500));
            long ms = (System.nanoTime() - t0) / 1_000_000;
            // the deadline is the drain + about 2 s (1 s for the last writes, 1 s for open connections); before, a blocked
            // reader held it for the drain + 5 s and more
            assertTrue(ms < 5_000, "the drain of 500 ms took " + ms + " ms");
            assertTrue(closedByServer(so, 10_000));
        }
    }

    @Test
    void whileDrainingEveryAnswerIsJsonAndClosesItsConnection() throws Exception {
        TestServer s = TestServer.start(2, 4, TestServer.options());
        BufferedReader stream = openStream(s); // keeps the drain going
        Thread stopper = Thread.ofVirtual().start(() -> s.server.shutdown(Duration.ofSeconds(30)));
        try {
            waitFor(() -> {
                try {
                    return s.get("/health").statusCode() == 503;
                } catch (Exception e) {
                    return false;
                }
            }, 10_000, "draining");
            try (Socket so = RawHttp.open(port(s))) {
                so.getOutputStream().write(post("/v1/completions", completion(s, ""), ""));
                RawHttp.Reply r = RawHttp.read(so.getInputStream(), false);
                assertEquals("shutting_down", assertJsonError(r, 503).get("code").asText());
                assertEquals("close", r.header("connection"), r.toString());
                assertTrue(closedByServer(so, 10_000));
            }
            try (Socket so = RawHttp.open(port(s))) {
                so.getOutputStream().write(bytes("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
                RawHttp.Reply r = RawHttp.read(so.getInputStream(), false);
                assertNotNull(r);
                assertEquals(503, r.status());
                assertEquals("close", r.header("connection"), r.toString());
            }
        } finally {
            stream.close(); // the stream's client leaves: nothing more to drain
            stopper.join(30_000);
        }
        assertFalse(stopper.isAlive());
    }

    @Test
    void aRequestOnAnOpenConnectionAfterTheListenerClosedGets503NotAReset() throws Exception {
        TestServer s = TestServer.start(1, 4, TestServer.options());
        int p = port(s);
        try (Socket kept = RawHttp.open(p)) {
            kept.getOutputStream().write(bytes("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
            RawHttp.Reply first = RawHttp.read(kept.getInputStream(), false);
            assertNotNull(first);
            assertEquals(200, first.status());
            Thread stopper = Thread.ofVirtual().start(() -> s.server.shutdown(Duration.ZERO));
            waitFor(() -> RawHttp.refused(p), 10_000, "the listener to close");
            // the last moments: nothing new is accepted, but what comes on an open connection is still answered
            kept.getOutputStream().write(post("/v1/completions", completion(s, ""), ""));
            RawHttp.Reply r = RawHttp.read(kept.getInputStream(), false);
            assertEquals("shutting_down", assertJsonError(r, 503).get("code").asText());
            assertEquals("close", r.header("connection"), r.toString());
            stopper.join(10_000);
            assertFalse(stopper.isAlive());
        }
    }

    // ---- item 9: a blank API key is refused at start ----

    @Test
    void blankOrUnsendableApiKeysAreRefused() {
        for (String key : List.of("", " ", "   ", "\t", " key", "key ", "ke\ny")) {
            var e = assertThrows(dev.jnext.JnextException.class, () -> ServerOptions.defaults().withApiKey(key), "key [" + key + "]");
            assertTrue(e.getMessage().contains("--api-key") && !e.getMessage().contains("\n"), e.getMessage());
        }
        ServerOptions.defaults().withApiKey("a key with inner spaces");
    }

    // ---- item 11: text_offset counts characters; an out-of-range float names its field ----

    @Test
    void completionTextOffsetsCountCharactersNotUtf16Units() throws Exception {
        QwenTokenizer tokenizer = TestTokenizers.qwen3();
        int astral = -1;
        for (int id = 0; id < tokenizer.vocabSize() && astral < 0; id++) {
            String t = tokenizer.decode(new int[]{id});
            if (t.codePointCount(0, t.length()) < t.length()) astral = id; // a token with a character beyond the BMP
        }
        assertTrue(astral >= 0, "no token with an astral character");
        String first = tokenizer.decode(new int[]{astral});
        int plain = tokenizer.encode("hello")[0];
        OpenAiRequest request = OpenAiRequest.parse(("{\"model\": \"m\", \"prompt\": \"x\", \"logprobs\": 0}").getBytes(StandardCharsets.UTF_8),
                OpenAiRequest.Endpoint.COMPLETIONS, GenerationConfig.none(), 8);
        var responses = new OpenAiResponses(RawHttp.JSON, tokenizer, request, ChatOutput.prepare(null, request), "cmpl-1", 0, "m");
        List<GeneratedToken> tokens = List.of(new GeneratedToken(astral, -1f, new int[0], new float[0]),
                new GeneratedToken(plain, -1f, new int[0], new float[0]), new GeneratedToken(plain, -1f, new int[0], new float[0]));
        JsonNode offsets = responses.complete(first + "hellohello", tokens, FinishReason.MAX_TOKENS, 1).at("/choices/0/logprobs/text_offset");
        int chars = first.codePointCount(0, first.length());
        assertEquals(List.of(0, chars, chars + tokenizer.decode(new int[]{plain}).length()),
                List.of(offsets.get(0).asInt(), offsets.get(1).asInt(), offsets.get(2).asInt()), offsets.toString());
    }

    @Test
    void outOfRangeNumbersNameTheirField() throws Exception {
        for (String[] c : new String[][]{{"top_p", "1e-300"}, {"top_p", "0"}, {"repetition_penalty", "1e-300"},
                {"temperature", "1e300"}, {"min_p", "0.99999999"}, {"presence_penalty", "-1e39"}}) {
            String body = completion(server, "\"" + c[0] + "\": " + c[1]);
            var direct = assertThrows(ApiError.class, () -> OpenAiRequest.parse(body.getBytes(StandardCharsets.UTF_8),
                    OpenAiRequest.Endpoint.COMPLETIONS, GenerationConfig.none(), 8), c[0] + " " + c[1]);
            assertEquals(c[0], direct.param(), direct.getMessage());
            HttpResponse<String> r = server.post("/v1/completions", body);
            assertEquals(c[0], OpenAiServerErrorsTest.error(r, 400).get("param").asText(), r.body());
        }
        assertEquals("top_p", OpenAiRequest.samplingField("top-p must be in (0, 1], got 0.0"));
    }
}
