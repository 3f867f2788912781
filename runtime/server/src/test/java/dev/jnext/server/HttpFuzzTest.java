package dev.jnext.server;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.function.Function;

import static dev.jnext.server.RawHttp.assertJsonError;
import static dev.jnext.server.RawHttp.bytes;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A hostile client against the HTTP layer, over raw sockets: a few hundred seeded inputs — bad framing, bad headers,
 * bad methods and request lines, half requests, garbage bytes, huge headers, bad UTF-8 bodies, auth tricks and byte
 * mutations of valid requests. Every answer must be OpenAI's JSON error object with a 4xx/5xx status or a valid
 * success; nothing without the key but /health may succeed; the server must never hang (every read is bounded), log
 * nothing at warn or above for these client faults, and still answer /health and a completion afterwards.
 */
@Timeout(180)
class HttpFuzzTest {
    static final long SEED = 0x19_4a7e_5eedL;
    static final int CASES = 320;
    static final String KEY = TestServer.KEY;

    /** What a case may get: any answer or none (incomplete or garbage input), an answer, or an error status. */
    enum Expect { ANY, REPLY, ERROR }

    record Case(String name, byte[] bytes, boolean head, boolean authorized, Expect expect, int status) {
        Case(String name, byte[] bytes, boolean head, boolean authorized, Expect expect) {
            this(name, bytes, head, authorized, expect, 0);
        }
    }

    @Test
    void hostileInputsGetJsonErrorsOrValidAnswersAndTheServerKeepsServing() throws Exception {
        String log = RawHttp.capturingStderr(() -> {
            try (TestServer s = TestServer.start(2, 64, TestServer.options().withHeaderTimeout(Duration.ofSeconds(3))
                    .withIdleTimeout(Duration.ofSeconds(5)))) {
                int port = s.server.port();
                // warm up, so that small generations answer well within the first disconnect probe
                for (String path : List.of("/v1/completions", "/v1/chat/completions")) {
                    s.post(path, path.contains("chat") ? "{\"model\": \"" + s.model() + "\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 2}"
                            : "{\"model\": \"" + s.model() + "\", \"prompt\": \"hi\", \"max_tokens\": 2}");
                }
                SplittableRandom r = new SplittableRandom(SEED);
                Generator g = new Generator(s.model());
                List<String> failures = new ArrayList<>();
                int answered = 0, retried = 0;
                java.util.Map<Integer, Integer> statuses = new java.util.TreeMap<>();
                for (int i = 0; i < CASES; i++) {
                    Case c = g.next(r);
                    String label = "case " + i + " (" + c.name() + "): " + preview(c.bytes());
                    try {
                        RawHttp.Reply reply = RawHttp.exchange(port, c.bytes(), c.head());
                        if (reply == null && c.expect() != Expect.ANY) {
                            // a complete request whose client half-closed may be taken for abandoned (a non-streaming
                            // completion is cancelled when its connection ends): again, with the connection left open
                            reply = RawHttp.exchangeKeepingOpen(port, c.bytes(), c.head(), 10_000);
                            retried++;
                        }
                        if (reply != null) {
                            answered++;
                            statuses.merge(reply.status(), 1, Integer::sum);
                        }
                        check(c, reply);
                    } catch (AssertionError | Exception e) {
                        failures.add(label + " -> " + e.getMessage());
                    }
                }
                System.out.println("HttpFuzzTest: " + CASES + " cases, " + answered + " answered " + statuses + ", "
                        + (CASES - answered) + " closed without an answer, " + retried + " sent again with the connection open");
                assertTrue(failures.isEmpty(), failures.size() + " of " + CASES + " failed:\n" + String.join("\n", failures.subList(0, Math.min(20, failures.size()))));
                assertTrue(answered > CASES / 2, "only " + answered + " answers");

                // still serving: /health, a completion, and nothing left running
                RawHttp.Reply health = RawHttp.exchange(port, bytes("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"), false);
                assertNotNull(health);
                assertEquals(200, health.status(), health.toString());
                var ok = s.post("/v1/completions", "{\"model\": \"" + s.model() + "\", \"prompt\": \"hi\", \"max_tokens\": 2}");
                assertEquals(200, ok.statusCode(), ok.body());
                long deadline = System.nanoTime() + 20_000_000_000L;
                while ((s.server.inFlight() > 0 || s.server.engine().stats().running() > 0) && System.nanoTime() < deadline) Thread.sleep(10);
                assertEquals(0, s.server.inFlight(), "requests left in flight");
                assertEquals(0, s.server.engine().stats().running(), "generations left running");
            }
        });
        for (String line : log.lines().toList()) {
            assertFalse(line.contains(" WARN ") || line.contains(" ERROR ") || line.startsWith("\tat "), "logged beyond debug: " + line);
        }
    }

    /** The invariants of one answer. */
    static void check(Case c, RawHttp.Reply reply) {
        if (reply == null) {
            assertTrue(c.expect() == Expect.ANY, "no answer");
            return;
        }
        int status = reply.status();
        assertTrue(status >= 200 && status <= 599 && status / 100 != 3, "status " + status);
        if (status >= 400 && c.head()) { // the answer to HEAD has the error's headers, no body
            if (c.status() != 0) assertEquals(c.status(), status, reply.toString());
            assertTrue(String.valueOf(reply.header("content-type")).startsWith("application/json"), reply.toString());
        } else if (status >= 400) {
            assertJsonError(reply, c.status());
        } else {
            assertTrue(c.expect() != Expect.ERROR, "expected an error, got " + reply);
            assertEquals(0, c.status(), "expected " + c.status() + ", got " + reply);
            String type = reply.header("content-type");
            if (!c.head()) {
                assertNotNull(type, reply.toString());
                if (type.startsWith("application/json")) {
                    JsonNode body = parse(reply);
                    // without the key, only /health may answer
                    if (!c.authorized()) assertTrue(body.has("status"), "answered without the key: " + reply);
                } else if (type.startsWith("text/event-stream")) {
                    assertTrue(c.authorized(), "streamed without the key");
                    assertTrue(reply.text().contains("data: [DONE]"), reply.toString());
                } else {
                    assertTrue(type.startsWith("text/plain") && c.authorized(), "unexpected success: " + reply); // /metrics
                }
            } else if (!c.authorized()) {
                assertTrue(new String(c.bytes(), StandardCharsets.ISO_8859_1).contains("health"), "HEAD answered without the key");
            }
        }
    }

    private static JsonNode parse(RawHttp.Reply reply) {
        try {
            return RawHttp.JSON.readTree(reply.body());
        } catch (Exception e) {
            throw new AssertionError("a success that is not JSON: " + reply);
        }
    }

    static String preview(byte[] b) {
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < Math.min(b.length, 160); i++) {
            int c = b[i] & 0xFF;
            if (c == '\r') s.append("\\r");
            else if (c == '\n') s.append("\\n");
            else if (c < 0x20 || c >= 0x7f) s.append(String.format("\\x%02X", c));
            else s.append((char) c);
        }
        return s + (b.length > 160 ? "... (" + b.length + " bytes)" : "");
    }

    // ---- the generator ----

    /** An HTTP/1.1 request in parts, so that each part can be broken on its own. */
    static final class Req {
        String method = "GET";
        String target = "/health";
        String version = "HTTP/1.1";
        final List<String[]> headers = new ArrayList<>();
        byte[] body = new byte[0];
        String eol = "\r\n";
        boolean chunked;
        boolean contentLength = true;

        Req header(String name, String value) {
            headers.add(new String[]{name, value});
            return this;
        }

        byte[] bytes() {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            out.writeBytes(RawHttp.bytes(method + " " + target + " " + version + eol));
            for (String[] h : headers) out.writeBytes(RawHttp.bytes(h[0] + (h[1] == null ? "" : ": " + h[1]) + eol));
            if (chunked) {
                out.writeBytes(RawHttp.bytes("Transfer-Encoding: chunked" + eol + eol));
                if (body.length > 0) {
                    out.writeBytes(RawHttp.bytes(Integer.toHexString(body.length) + eol));
                    out.writeBytes(body);
                    out.writeBytes(RawHttp.bytes(eol));
                }
                out.writeBytes(RawHttp.bytes("0" + eol + eol));
            } else {
                if (contentLength && (body.length > 0 || method.equals("POST"))) out.writeBytes(RawHttp.bytes("Content-Length: " + body.length + eol));
                out.writeBytes(RawHttp.bytes(eol));
                out.writeBytes(body);
            }
            return out.toByteArray();
        }
    }

    static final class Generator {
        final String model;

        Generator(String model) {
            this.model = model;
        }

        /** A valid, authorized request to one of the routes (small generations). */
        Req valid(SplittableRandom r) {
            Req q = new Req().header("Host", "127.0.0.1").header("Authorization", "Bearer " + KEY);
            switch (r.nextInt(6)) {
                case 0 -> q.target = "/health";
                case 1 -> q.target = "/v1/models";
                case 2 -> q.target = "/metrics";
                case 3 -> post(q, "/v1/completions", "{\"model\": \"" + model + "\", \"prompt\": \"hi\", \"max_tokens\": 1}");
                case 4 -> post(q, "/v1/chat/completions", "{\"model\": \"" + model + "\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 1}");
                default -> post(q, "/v1/completions", "{\"model\": \"" + model + "\", \"prompt\": \"hi\", \"max_tokens\": 2, \"stream\": true}");
            }
            return q;
        }

        static void post(Req q, String target, String json) {
            q.method = "POST";
            q.target = target;
            q.header("Content-Type", "application/json");
            q.body = json.getBytes(StandardCharsets.UTF_8);
        }

        Case next(SplittableRandom r) {
            return switch (r.nextInt(10)) {
                case 0 -> framing(r);
                case 1 -> headers(r);
                case 2 -> method(r);
                case 3 -> requestLine(r);
                case 4 -> half(r);
                case 5 -> garbage(r);
                case 6 -> utf8(r);
                case 7 -> auth(r);
                case 8 -> mutation(r);
                default -> jsonBody(r);
            };
        }

        Case framing(SplittableRandom r) {
            Req q = valid(r);
            if (!q.method.equals("POST")) post(q, "/v1/completions", "{\"model\": \"" + model + "\", \"prompt\": \"hi\", \"max_tokens\": 1}");
            q.contentLength = false;
            byte[] body = q.body;
            String head = new String(q.bytes(), StandardCharsets.ISO_8859_1);
            head = head.substring(0, head.length() - 2 - body.length); // without the blank line and the body
            String b = new String(body, StandardCharsets.ISO_8859_1);
            String[][] variants = {
                    {"negative length", "Content-Length: -" + body.length + "\r\n\r\n" + b},
                    {"non-numeric length", "Content-Length: abc\r\n\r\n" + b},
                    {"signed length", "Content-Length: +" + body.length + "\r\n\r\n" + b},
                    {"hex length", "Content-Length: 0x" + Integer.toHexString(body.length) + "\r\n\r\n" + b},
                    {"huge length", "Content-Length: 99999999999999999999999\r\n\r\n" + b},
                    {"duplicate lengths", "Content-Length: " + body.length + "\r\nContent-Length: " + (body.length + 1) + "\r\n\r\n" + b},
                    {"length list", "Content-Length: " + body.length + ", " + body.length + "\r\n\r\n" + b},
                    {"length and chunked", "Content-Length: " + body.length + "\r\nTransfer-Encoding: chunked\r\n\r\n" + b},
                    {"chunked then length", "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"},
                    {"gzip, chunked", "Transfer-Encoding: gzip, chunked\r\n\r\n" + chunk(b) + "0\r\n\r\n"},
                    {"chunked, identity", "Transfer-Encoding: chunked, identity\r\n\r\n" + b},
                    {"unknown coding", "Transfer-Encoding: bogus\r\n\r\n" + b},
                    {"bad chunk size", "Transfer-Encoding: chunked\r\n\r\nzz\r\n" + b + "\r\n0\r\n\r\n"},
                    {"chunk extension", "Transfer-Encoding: chunked\r\n\r\n" + Integer.toHexString(b.length()) + ";x=\"y\"\r\n" + b + "\r\n0\r\n\r\n"},
                    {"overflowing chunk size", "Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\n" + b + "\r\n0\r\n\r\n"},
                    {"chunk longer than its size", "Transfer-Encoding: chunked\r\n\r\n2\r\n" + b + "\r\n0\r\n\r\n"},
                    {"no last chunk", "Transfer-Encoding: chunked\r\n\r\n" + chunk(b)},
                    {"trailers", "Transfer-Encoding: chunked\r\n\r\n" + chunk(b) + "0\r\nX-Trailer: 1\r\nAuthorization: Bearer nope\r\n\r\n"},
                    {"bare-LF chunks", "Transfer-Encoding: chunked\r\n\r\n" + Integer.toHexString(b.length()) + "\n" + b + "\n0\n\n"},
                    {"short body", "Content-Length: " + (body.length + 40) + "\r\n\r\n" + b},
                    {"long body", "Content-Length: " + Math.max(1, body.length - 5) + "\r\n\r\n" + b + "GARBAGE"},
                    {"no framing", "\r\n" + b},
            };
            String[] v = variants[r.nextInt(variants.length)];
            return new Case("framing: " + v[0], bytes(head + v[1]), false, true, Expect.ANY);
        }

        static String chunk(String b) {
            return Integer.toHexString(b.length()) + "\r\n" + b + "\r\n";
        }

        Case headers(SplittableRandom r) {
            Req q = valid(r);
            String name;
            Expect expect = Expect.REPLY;
            int status = 0;
            switch (r.nextInt(20)) {
                case 0 -> { name = "no colon"; q.header("X-No-Colon", null); }
                case 1 -> { name = "space before colon"; q.headers.addFirst(new String[]{"Accept ", "x"}); }
                case 2 -> { name = "obs-fold"; q.header("X-Fold", "a\r\n folded"); }
                case 3 -> { name = "bad name"; q.header("X(Bad)", "b"); }
                case 4 -> { name = "NUL in value"; q.header("X-Nul", "a\u0000b"); }
                case 5 -> { name = "DEL in value"; q.header("X-Del", "a\u007fb"); }
                case 6 -> { name = "bare CR"; q.header("X-CR", "a\rb"); }
                case 7 -> { name = "many headers"; for (int i = 0; i < 120; i++) q.header("X-H" + i, "v".repeat(r.nextInt(1, 40))); }
                case 8 -> { name = "huge header"; q.header("X-Huge", "h".repeat(r.nextInt(9 << 10, 80 << 10))); status = 431; }
                case 9 -> { name = "huge name"; q.header("X" + "n".repeat(r.nextInt(9 << 10, 20 << 10)), "v"); status = 431; }
                case 10 -> { name = "two hosts"; q.header("Host", "other.example"); }
                case 11 -> { name = "no host"; q.headers.removeIf(h -> h[0].equals("Host")); status = 400; }
                case 12 -> { name = "bad host"; q.headers.removeIf(h -> h[0].equals("Host")); q.header("Host", "[::1"); }
                case 13 -> { name = "bare LF"; q.eol = "\n"; }
                case 14 -> { name = "expect 100-continue"; q.header("Expect", "100-continue"); }
                case 15 -> { name = "unknown expectation"; q.header("Expect", "999-nope"); status = 417; }
                case 16 -> { name = "h2c upgrade"; q.header("Connection", "Upgrade, HTTP2-Settings"); q.header("Upgrade", "h2c"); q.header("HTTP2-Settings", "AAMAAABkAAQAoAAAAAIAAAAA"); }
                case 17 -> { name = "Accept: text/html"; q.header("Accept", "text/html"); q.header("X-Nul", "a\u0000b"); }
                case 18 -> { name = "latin-1 value"; q.header("X-Latin", "caf\u00e9 \u00ff"); }
                default -> { name = "websocket upgrade"; q.header("Connection", "Upgrade"); q.header("Upgrade", "websocket");
                    q.header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="); q.header("Sec-WebSocket-Version", "13"); }
            }
            return new Case("header: " + name, q.bytes(), false, true, expect, status);
        }

        Case method(SplittableRandom r) {
            Req q = valid(r);
            String[] methods = {"get", "GETT", "G@T", "BREW", "PROPFIND", "PATCH", "DELETE", "PUT", "TRACE", "OPTIONS", "CONNECT",
                    "HEAD", "M".repeat(600), "POST\u0000", "P\u00d6ST"};
            String m = methods[r.nextInt(methods.length)];
            q.method = m;
            if (m.equals("CONNECT")) q.target = "127.0.0.1:443";
            if (m.equals("OPTIONS") && r.nextBoolean()) q.target = "*";
            boolean head = m.equals("HEAD");
            // GET-like methods on POST routes are 405s, unknown tokens 400 or 405: an error either way, except HEAD and
            // OPTIONS, which may succeed
            Expect expect = head || m.equals("OPTIONS") ? Expect.REPLY : Expect.ERROR;
            if (m.equals("get") || m.equals("GETT")) expect = Expect.REPLY; // case-insensitive servers may take it
            return new Case("method: " + preview(bytes(m)), q.bytes(), head, true, expect);
        }

        Case requestLine(SplittableRandom r) {
            Req q = valid(r);
            String[] targets = {"*", "http://127.0.0.1/v1/models", "//v1/models", "/v1/../v1/models", "/v1/models?x=%zz", "/%",
                    "/%zz", "/%00", "/v1/%2e%2e/health", "/v1/models#frag", "/v1/mod\u00e9ls", "/v1/ models", "/" + "a".repeat(10 << 10),
                    "/" + "b".repeat(70 << 10), "", "/health/../v1/models", "/v1/models/", "/V1/MODELS", "/v1//models", "/health;x=1",
                    "/%68ealth", "/v1/models%2f..%2f..%2fetc", "\\v1\\models"};
            String[] versions = {"HTTP/1.0", "HTTP/1.2", "HTTP/2", "HTTP/2.0", "HTTP/0.9", "", "http/1.1", "HTTP/1.1 extra", "HTTP/1.10", "HTTP/11"};
            String name;
            if (r.nextBoolean()) {
                q.target = targets[r.nextInt(targets.length)];
                name = "target " + preview(bytes(q.target.length() > 40 ? q.target.substring(0, 40) + "..." : q.target));
            } else {
                q.version = versions[r.nextInt(versions.length)];
                name = "version " + q.version;
            }
            if (r.nextInt(4) == 0) {
                q.method = q.method + "  ";
                name += ", double space";
            }
            // without a version, HTTP/0.9 style, Jetty may close without an answer
            return new Case("request line: " + name, q.bytes(), false, true, q.version.isEmpty() ? Expect.ANY : Expect.REPLY);
        }

        Case half(SplittableRandom r) {
            byte[] full = valid(r).bytes();
            int cut = r.nextInt(1, full.length);
            byte[] b = new byte[cut];
            System.arraycopy(full, 0, b, 0, cut);
            return new Case("half request, " + cut + " of " + full.length + " bytes", b, false, true, Expect.ANY);
        }

        Case garbage(SplittableRandom r) {
            byte[] b;
            String name;
            switch (r.nextInt(5)) {
                case 0 -> { name = "TLS client hello"; b = new byte[]{0x16, 0x03, 0x01, 0x00, (byte) 0xa5, 0x01, 0x00, 0x00, (byte) 0xa1, 0x03, 0x03}; }
                case 1 -> { name = "HTTP/2 preface"; b = bytes("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\u0000\u0000\u0000\u0004\u0000\u0000\u0000\u0000\u0000"); }
                case 2 -> { name = "blank lines"; b = bytes("\r\n".repeat(r.nextInt(1, 200))); }
                case 3 -> { name = "NULs"; b = new byte[r.nextInt(1, 3000)]; }
                default -> { name = "random bytes"; b = new byte[r.nextInt(1, 3000)]; r.nextBytes(b); }
            }
            return new Case("garbage: " + name, b, false, false, Expect.ANY);
        }

        Case utf8(SplittableRandom r) {
            byte[][] bad = {{(byte) 0xC0, (byte) 0xAF}, {(byte) 0xED, (byte) 0xA0, (byte) 0x80}, {(byte) 0xED, (byte) 0xBF, (byte) 0xBF},
                    {(byte) 0xE0, (byte) 0x80, (byte) 0xAF}, {(byte) 0xF0, (byte) 0x80, (byte) 0x80, (byte) 0xAF},
                    {(byte) 0xF4, (byte) 0x90, (byte) 0x80, (byte) 0x80}, {(byte) 0xFE}, {(byte) 0xFF}, {(byte) 0x80}, {(byte) 0xC3},
                    {(byte) 0xE2, (byte) 0x82}, {(byte) 0xC1, (byte) 0xBF}};
            byte[] seq = bad[r.nextInt(bad.length)];
            Req q = new Req().header("Host", "x").header("Authorization", "Bearer " + KEY);
            boolean chat = r.nextBoolean();
            String json = chat ? "{\"model\": \"" + model + "\", \"messages\": [{\"role\": \"user\", \"content\": \"a@b\"}], \"max_tokens\": 1}"
                    : "{\"model\": \"" + model + "\", \"prompt\": \"a@b\", \"max_tokens\": 1}";
            post(q, chat ? "/v1/chat/completions" : "/v1/completions", json);
            q.body = ServerHardeningTest.splice(q.body, "@", seq);
            if (r.nextBoolean()) q.chunked = true;
            return new Case("bad UTF-8 " + preview(seq), q.bytes(), false, true, Expect.ERROR, 400);
        }

        Case auth(SplittableRandom r) {
            Req q = valid(r);
            q.headers.removeIf(h -> h[0].equals("Authorization"));
            String[][] variants = {
                    {"none", null}, {"Bearer", "Bearer"}, {"Bearer ", "Bearer "}, {"Basic", "Basic dGVzdC1rZXktMTIz"},
                    {"prefix", "Bearer " + KEY.substring(0, KEY.length() - 1)}, {"longer", "Bearer " + KEY + "4"},
                    {"upper-case key", "Bearer " + KEY.toUpperCase(Locale.ROOT)}, {"NUL after", "Bearer " + KEY + "\u0000"},
                    {"token only", KEY}, {"Bearer in value twice", "Bearer Bearer " + KEY}, {"huge", "Bearer " + "k".repeat(6000)},
                    {"comma list", "Bearer nope, Bearer " + KEY}, {"lower-case scheme", "bearer " + KEY}, {"extra spaces", "Bearer   " + KEY + "  "},
            };
            String[] v = variants[r.nextInt(variants.length)];
            boolean authorized = v[0].equals("lower-case scheme") || v[0].equals("extra spaces");
            if (v[1] != null) q.header("Authorization", v[1]);
            if (r.nextInt(6) == 0 && !authorized && v[1] != null) { // a second header after a wrong first one: only the first counts
                q.header("Authorization", "Bearer " + KEY);
                v[0] += " + a right second header";
            }
            boolean health = q.target.equals("/health");
            Expect expect = authorized || health ? Expect.REPLY : Expect.ERROR;
            int status = authorized || health || v[0].startsWith("NUL") || v[0].startsWith("huge") ? 0 : 401;
            return new Case("auth: " + v[0], q.bytes(), false, authorized, expect, status);
        }

        Case mutation(SplittableRandom r) {
            byte[] b = valid(r).bytes();
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            int ops = r.nextInt(1, 6);
            List<Function<byte[], byte[]>> mutators = List.of(
                    x -> { x = x.clone(); x[r.nextInt(x.length)] ^= (byte) (1 << r.nextInt(8)); return x; },
                    x -> { int at = r.nextInt(x.length); byte[] y = new byte[x.length + 1]; System.arraycopy(x, 0, y, 0, at);
                        y[at] = (byte) r.nextInt(256); System.arraycopy(x, at, y, at + 1, x.length - at); return y; },
                    x -> { if (x.length < 2) return x; int at = r.nextInt(x.length); byte[] y = new byte[x.length - 1];
                        System.arraycopy(x, 0, y, 0, at); System.arraycopy(x, at + 1, y, at, x.length - at - 1); return y; },
                    x -> { int at = r.nextInt(x.length); int len = Math.min(x.length - at, r.nextInt(1, 30)); byte[] y = new byte[x.length + len];
                        System.arraycopy(x, 0, y, 0, at + len); System.arraycopy(x, at, y, at + len, x.length - at); return y; });
            for (int i = 0; i < ops; i++) b = mutators.get(r.nextInt(mutators.size())).apply(b);
            out.writeBytes(b);
            // a mutation may have made the request complete yet different (or removed the key): any answer, or none
            String text = new String(b, StandardCharsets.ISO_8859_1);
            return new Case("mutation x" + ops, out.toByteArray(), text.startsWith("HEAD "), text.contains("Bearer " + KEY + "\r\n"), Expect.ANY);
        }

        Case jsonBody(SplittableRandom r) {
            String[] bodies = {"", "{", "null", "[]", "\"x\"", "{\"model\": 5}", "{\"model\": \"" + model + "\"}",
                    "{\"model\": \"" + model + "\", \"prompt\": \"hi\", \"max_tokens\": -1}",
                    "{\"model\": \"" + model + "\", \"prompt\": \"hi\", \"max_tokens\": 1, \"top_p\": 1e-300}",
                    "{\"model\": \"" + model + "\", \"prompt\": \"hi\", \"max_tokens\": 1, \"temperature\": NaN}",
                    "{\"model\": \"" + model + "\", \"prompt\": [[[[[[[[]]]]]]]]}", "{\"a\":" .repeat(100) + "1" + "}".repeat(100),
                    "{\"model\": \"" + model + "\", \"prompt\": \"hi\", \"max_tokens\": 1}{}", "\uFEFF{\"model\": \"x\"}"};
            Req q = new Req().header("Host", "x").header("Authorization", "Bearer " + KEY);
            post(q, r.nextBoolean() ? "/v1/completions" : "/v1/chat/completions", bodies[r.nextInt(bodies.length)]);
            if (r.nextInt(3) == 0) q.chunked = true;
            return new Case("JSON body " + preview(q.body), q.bytes(), false, true, Expect.ERROR);
        }
    }
}
