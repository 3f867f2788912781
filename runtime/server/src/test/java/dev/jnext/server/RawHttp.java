package dev.jnext.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * HTTP/1.1 over a plain socket, for what {@code java.net.http} will not send: broken framing, odd headers, half
 * requests, garbage. Loopback only; every read has a timeout, so nothing here waits forever.
 */
final class RawHttp {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int READ_TIMEOUT_MS = 15_000;

    private RawHttp() {}

    /** One response: status, headers (names in lower case, last one wins), body (de-chunked). */
    record Reply(int status, Map<String, String> headers, byte[] body) {
        String text() {
            return new String(body, StandardCharsets.UTF_8);
        }

        String header(String name) {
            return headers.get(name.toLowerCase(Locale.ROOT));
        }

        @Override
        public String toString() {
            String t = text();
            return status + " " + headers + " " + (t.length() > 300 ? t.substring(0, 300) + "..." : t);
        }
    }

    static Socket open(int port) throws IOException {
        Socket s = new Socket();
        s.connect(new InetSocketAddress("127.0.0.1", port), 5_000);
        s.setSoTimeout(READ_TIMEOUT_MS);
        return s;
    }

    static byte[] bytes(String latin1) {
        return latin1.getBytes(StandardCharsets.ISO_8859_1);
    }

    /**
     * Sends {@code request} on a new connection, closes the sending side (so the server sees the end of whatever it
     * was given), and reads one response; null when the server closed without answering.
     */
    static Reply exchange(int port, byte[] request, boolean head) throws IOException {
        try (Socket s = open(port)) {
            OutputStream out = s.getOutputStream();
            try {
                out.write(request);
                out.flush();
                s.shutdownOutput();
            } catch (SocketException e) {
                // the server may answer and close before it has read everything (a 431 after the first 8 KiB of a
                // header): what it sent is still there to read
            }
            return read(s.getInputStream(), head);
        }
    }

    /**
     * Sends {@code request} on a new connection without closing the sending side (a server that sees the end of a
     * request's connection may take the client for gone, as a non-streaming completion does) and reads one response,
     * each read waiting at most {@code readTimeoutMs}; null when none came.
     */
    static Reply exchangeKeepingOpen(int port, byte[] request, boolean head, int readTimeoutMs) throws IOException {
        try (Socket s = open(port)) {
            s.setSoTimeout(readTimeoutMs);
            try {
                s.getOutputStream().write(request);
                s.getOutputStream().flush();
            } catch (SocketException e) {
                // answered and closed early: read what came
            }
            try {
                return read(s.getInputStream(), head);
            } catch (SocketTimeoutException e) {
                return null;
            }
        }
    }

    /** One response from {@code in} (interim 1xx responses skipped); null on a clean end or reset before any byte. */
    static Reply read(InputStream in, boolean head) throws IOException {
        while (true) {
            String status;
            try {
                status = line(in);
            } catch (SocketException e) { // reset before a response: no answer
                return null;
            }
            if (status == null) return null;
            if (!status.startsWith("HTTP/1.1 ") && !status.startsWith("HTTP/1.0 ")) fail("not a status line: " + status);
            int code = Integer.parseInt(status.substring(9, 12));
            Map<String, String> headers = new LinkedHashMap<>();
            for (String h; !(h = requireLine(in)).isEmpty(); ) {
                int colon = h.indexOf(':');
                assertTrue(colon > 0, "bad response header: " + h);
                headers.put(h.substring(0, colon).trim().toLowerCase(Locale.ROOT), h.substring(colon + 1).trim());
            }
            if (code / 100 == 1) continue;
            byte[] body;
            if (head || code == 204 || code == 304) body = new byte[0];
            else if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) body = chunked(in);
            else if (headers.containsKey("content-length")) body = in.readNBytes(Integer.parseInt(headers.get("content-length")));
            else body = in.readAllBytes();
            return new Reply(code, headers, body);
        }
    }

    private static byte[] chunked(InputStream in) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        while (true) {
            String size = requireLine(in);
            int semi = size.indexOf(';');
            int n = Integer.parseInt((semi < 0 ? size : size.substring(0, semi)).trim(), 16);
            if (n == 0) {
                while (!requireLine(in).isEmpty()) { } // trailers
                return out.toByteArray();
            }
            out.write(in.readNBytes(n));
            requireLine(in);
        }
    }

    private static String requireLine(InputStream in) throws IOException {
        String l = line(in);
        if (l == null) fail("the response ended early");
        return l;
    }

    /** A CRLF-terminated line (ISO-8859-1), or null at the end of the stream before any byte. */
    private static String line(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        while (true) {
            int c = in.read();
            if (c < 0) {
                if (b.size() == 0) return null;
                fail("the response ended inside a line: " + b.toString(StandardCharsets.ISO_8859_1));
            }
            if (c == '\n') break;
            b.write(c);
            if (b.size() > 64 << 10) fail("a response line longer than 64 KiB");
        }
        String s = b.toString(StandardCharsets.ISO_8859_1);
        return s.endsWith("\r") ? s.substring(0, s.length() - 1) : s;
    }

    /** Asserts that {@code r} is OpenAI's error object with {@code status} (any 4xx/5xx when 0); returns the error. */
    static JsonNode assertJsonError(Reply r, int status) {
        assertNotNull(r, "no response");
        if (status != 0) assertEquals(status, r.status(), r.toString());
        assertTrue(r.status() >= 400 && r.status() <= 599, r.toString());
        String type = r.header("content-type");
        assertTrue(type != null && type.startsWith("application/json"), "not JSON: " + r);
        assertFalse(r.text().contains("\tat ") || r.text().contains("Exception") || r.text().contains("<html"), "leaked: " + r);
        JsonNode root;
        try {
            root = JSON.readTree(r.body());
        } catch (IOException e) {
            throw new AssertionError("not JSON: " + r, e);
        }
        JsonNode e = root.get("error");
        assertNotNull(e, r.toString());
        assertEquals(1, root.size(), "only \"error\" at the top: " + r);
        assertTrue(e.path("message").isTextual() && !e.get("message").asText().isBlank(), r.toString());
        assertTrue(e.path("type").isTextual(), r.toString());
        assertTrue(e.has("param") && (e.get("param").isNull() || e.get("param").isTextual()), r.toString());
        assertTrue(e.has("code") && (e.get("code").isNull() || e.get("code").isTextual()), r.toString());
        return e;
    }

    /** Whether a new connection to {@code port} is refused (nothing listens). */
    static boolean refused(int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 2_000);
            return false;
        } catch (ConnectException e) {
            return true;
        } catch (SocketTimeoutException e) {
            return false;
        } catch (IOException e) {
            return true;
        }
    }

    /** Whether the server has closed {@code s} (end of stream or reset), waiting at most {@code millis}. */
    static boolean closedByServer(Socket s, int millis) throws IOException {
        s.setSoTimeout(millis);
        try {
            InputStream in = s.getInputStream();
            byte[] buf = new byte[4096];
            long deadline = System.nanoTime() + millis * 1_000_000L;
            while (System.nanoTime() < deadline) {
                if (in.read(buf) < 0) return true; // anything before the end (a 408, say) is fine
            }
            return false;
        } catch (SocketTimeoutException e) {
            return false;
        } catch (SocketException e) {
            return true;
        }
    }

    /** Runs {@code body} with System.err captured; returns what was written to it (slf4j-simple logs there). */
    static String capturingStderr(ThrowingRunnable body) throws Exception {
        PrintStream saved = System.err;
        ByteArrayOutputStream captured = new ByteArrayOutputStream();
        try (PrintStream p = new PrintStream(captured, true, StandardCharsets.UTF_8)) {
            System.setErr(p);
            try {
                body.run();
            } finally {
                System.setErr(saved);
            }
        }
        String s = captured.toString(StandardCharsets.UTF_8);
        saved.print(s); // still visible in the test's output
        return s;
    }

    interface ThrowingRunnable {
        void run() throws Exception;
    }
}
