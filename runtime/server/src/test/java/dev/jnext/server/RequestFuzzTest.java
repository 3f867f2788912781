package dev.jnext.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jnext.JnextException;
import dev.jnext.engine.Engine;
import dev.jnext.engine.GenerationConfig;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.io.InputStream;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Fuzzing of the request JSON: the committed corpus ({@code request-corpus/}) and seeded random mutations of valid
 * requests (fields dropped, retyped, out of range, strange strings, deep nesting, corrupted bytes) must each parse into
 * a request whose prompt the engine accepts or refuses with a {@link JnextException}, or be refused with a 400
 * {@link ApiError} — nothing else; over HTTP the server answers every one with JSON and goes on serving.
 */
@Timeout(120)
class RequestFuzzTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final long SEED = 0x5eed_f00dL;
    static final int CASES = 1500;
    static TestServer server;

    @BeforeAll
    static void start() {
        server = TestServer.start(2, 16, TestServer.options());
    }

    @AfterAll
    static void stop() {
        server.close();
    }

    static List<byte[]> corpus() throws IOException {
        List<byte[]> out = new ArrayList<>();
        try (InputStream index = RequestFuzzTest.class.getResourceAsStream("/dev/jnext/server/request-corpus.txt")) {
            for (String name : new String(index.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
                if (!name.isBlank()) out.add(load(name.strip()));
            }
        }
        return out;
    }

    /** Valid requests the mutations start from. */
    static List<byte[]> bases() throws IOException {
        List<byte[]> out = new ArrayList<>();
        for (String name : List.of("chat-minimal.json", "chat-parts.json", "chat-assistant-tool-calls.json",
                "chat-template-kwargs.json", "completion-token-ids.json", "chat-tool-choice-named.json")) {
            out.add(load(name));
        }
        return out;
    }

    private static byte[] load(String name) throws IOException {
        try (InputStream in = RequestFuzzTest.class.getResourceAsStream("/dev/jnext/server/request-corpus/" + name)) {
            if (in == null) throw new IOException("corpus file " + name + " is missing");
            return withModel(in.readAllBytes());
        }
    }

    private static byte[] withModel(byte[] body) {
        byte[] from = "MODEL".getBytes(StandardCharsets.UTF_8), to = server.model().getBytes(StandardCharsets.UTF_8);
        List<Byte> out = new ArrayList<>();
        for (int i = 0; i < body.length; i++) {
            if (i + from.length <= body.length && Arrays.equals(body, i, i + from.length, from, 0, from.length)) {
                for (byte b : to) out.add(b);
                i += from.length - 1;
            } else {
                out.add(body[i]);
            }
        }
        byte[] b = new byte[out.size()];
        for (int i = 0; i < b.length; i++) b[i] = out.get(i);
        return b;
    }

    /** Parses with both endpoints; a failure other than the allowed ones fails the test and shows the body. */
    private static boolean parsesOrRefusesCleanly(byte[] body) {
        Engine engine = server.server.engine();
        boolean parsed = false;
        for (OpenAiRequest.Endpoint endpoint : OpenAiRequest.Endpoint.values()) {
            try {
                OpenAiRequest r = OpenAiRequest.parse(body, endpoint, GenerationConfig.none(), 8);
                parsed = true;
                try {
                    engine.promptIds(r.generation().prompt());
                } catch (JnextException expected) {
                    assertTrue(expected.getMessage() != null && !expected.getMessage().isBlank());
                }
            } catch (ApiError e) {
                assertEquals(400, e.status(), e.getMessage());
                assertTrue(e.getMessage() != null && !e.getMessage().isBlank());
            } catch (RuntimeException | StackOverflowError e) {
                fail("unexpected " + e + " for " + endpoint + " body: " + new String(body, StandardCharsets.UTF_8), e);
            }
        }
        return parsed;
    }

    @Test
    void theCorpusParsesOrIsRefusedWith400() throws IOException {
        List<byte[]> corpus = corpus();
        assertTrue(corpus.size() >= 30);
        for (byte[] body : corpus) parsesOrRefusesCleanly(body);
    }

    @Test
    void randomMutationsParseOrAreRefusedWith400() throws IOException {
        SplittableRandom random = new SplittableRandom(SEED);
        List<byte[]> bases = bases();
        int parsed = 0;
        for (int i = 0; i < CASES; i++) {
            if (parsesOrRefusesCleanly(mutate(bases.get(random.nextInt(bases.size())), random))) parsed++;
        }
        assertTrue(parsed > CASES / 20 && parsed < CASES, "mutations reach both outcomes: " + parsed + " of " + CASES + " parsed");
    }

    @Test
    void overHttpEveryRefusalIsJsonAndTheServerGoesOn() throws Exception {
        List<byte[]> bodies = new ArrayList<>(corpus());
        SplittableRandom random = new SplittableRandom(SEED + 1);
        List<byte[]> bases = bases();
        while (bodies.size() < 200) {
            byte[] b = mutate(bases.get(random.nextInt(bases.size())), random);
            if (!parsesOrRefusesCleanly(b)) bodies.add(b); // only refused ones: accepted mutations may ask for huge outputs
        }
        for (byte[] body : bodies) {
            for (String path : List.of("/v1/chat/completions", "/v1/completions")) {
                HttpResponse<String> r = server.http.send(server.request(path).POST(HttpRequest.BodyPublishers.ofByteArray(body)).build(),
                        HttpResponse.BodyHandlers.ofString());
                String shown = path + " " + new String(body, StandardCharsets.UTF_8);
                assertTrue(r.statusCode() == 200 || r.statusCode() == 400, r.statusCode() + " for " + shown + ": " + r.body());
                if (r.statusCode() == 400) OpenAiServerErrorsTest.error(r, 400);
            }
        }
        HttpResponse<String> ok = server.post("/v1/completions", "{\"model\": \"" + server.model() + "\", \"prompt\": \"hi\", \"max_tokens\": 2}");
        assertEquals(200, ok.statusCode(), ok.body());
        assertEquals(0, server.server.engine().stats().running());
    }

    // ---- mutations ----

    static byte[] mutate(byte[] base, SplittableRandom r) {
        if (r.nextInt(6) == 0) return mutateBytes(base, r);
        JsonNode root;
        try {
            root = JSON.readTree(base);
        } catch (IOException e) {
            return mutateBytes(base, r);
        }
        int n = 1 + r.nextInt(3);
        for (int i = 0; i < n; i++) root = mutateTree(root, r, 0);
        try {
            return JSON.writeValueAsBytes(root);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static JsonNode mutateTree(JsonNode node, SplittableRandom r, int depth) {
        if (node instanceof ObjectNode o && o.size() > 0 && r.nextInt(4) != 0) {
            List<String> names = new ArrayList<>();
            for (Iterator<String> it = o.fieldNames(); it.hasNext(); ) names.add(it.next());
            String name = names.get(r.nextInt(names.size()));
            switch (r.nextInt(4)) {
                case 0 -> o.remove(name);
                case 1 -> o.set(name, randomValue(r, 0));
                case 2 -> o.set(FIELDS[r.nextInt(FIELDS.length)], randomValue(r, 0));
                default -> o.set(name, mutateTree(o.get(name), r, depth + 1));
            }
            return o;
        }
        if (node instanceof ArrayNode a && a.size() > 0 && r.nextInt(4) != 0) {
            int i = r.nextInt(a.size());
            if (r.nextBoolean()) a.set(i, mutateTree(a.get(i), r, depth + 1));
            else if (r.nextBoolean()) a.remove(i);
            else a.add(randomValue(r, 0));
            return a;
        }
        return randomValue(r, 0);
    }

    static final String[] FIELDS = {"model", "messages", "prompt", "max_tokens", "max_completion_tokens", "temperature",
            "top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty", "frequency_penalty", "seed", "stop",
            "stop_token_ids", "n", "stream", "stream_options", "logprobs", "top_logprobs", "echo", "suffix", "best_of",
            "ignore_eos", "response_format", "tools", "chat_template_kwargs", "role", "content", "type", "text",
            "tool_choice", "parallel_tool_calls", "tool_calls", "function", "arguments", "name", "parameters"};

    private static JsonNode randomValue(SplittableRandom r, int depth) {
        JsonNodeFactory f = JsonNodeFactory.instance;
        return switch (r.nextInt(depth > 3 ? 8 : 11)) {
            case 0 -> f.nullNode();
            case 1 -> f.booleanNode(r.nextBoolean());
            case 2 -> f.numberNode(r.nextInt(-3, 40));
            case 3 -> f.numberNode(switch (r.nextInt(4)) {
                case 0 -> Long.MAX_VALUE;
                case 1 -> Long.MIN_VALUE;
                case 2 -> (long) Integer.MAX_VALUE + 1;
                default -> -r.nextLong(1, 1_000_000);
            });
            case 4 -> f.numberNode(switch (r.nextInt(4)) {
                case 0 -> 1e300;
                case 1 -> -0.0;
                case 2 -> 2.5;
                default -> r.nextDouble() * 3;
            });
            case 5, 6 -> f.textNode(randomString(r));
            case 7 -> f.textNode(FIELDS[r.nextInt(FIELDS.length)]);
            case 8 -> {
                ArrayNode a = f.arrayNode();
                for (int i = r.nextInt(4); i > 0; i--) a.add(randomValue(r, depth + 1));
                yield a;
            }
            case 9 -> {
                ObjectNode o = f.objectNode();
                for (int i = r.nextInt(4); i > 0; i--) o.set(FIELDS[r.nextInt(FIELDS.length)], randomValue(r, depth + 1));
                yield o;
            }
            default -> {
                ObjectNode m = f.objectNode();
                m.put("role", List.of("user", "system", "assistant", "tool", "developer", "").get(r.nextInt(6)));
                m.set("content", r.nextInt(3) == 0 ? randomValue(r, depth + 1) : f.textNode(randomString(r)));
                yield f.arrayNode().add(m);
            }
        };
    }

    private static String randomString(SplittableRandom r) {
        StringBuilder s = new StringBuilder();
        int n = r.nextInt(5) == 0 ? r.nextInt(2000) : r.nextInt(12);
        for (int i = 0; i < n; i++) {
            s.append(switch (r.nextInt(7)) {
                case 0 -> (char) r.nextInt(0, 32);
                case 1 -> (char) r.nextInt(0xD800, 0xE000); // lone surrogates
                case 2 -> List.of("<|im_end|>", "<|im_start|>", "{{", "}}", "{%", "%}", "\\", "\"", "👋").get(r.nextInt(9));
                case 3 -> (char) r.nextInt(0x80, 0x3000);
                default -> (char) r.nextInt(32, 127);
            });
        }
        return s.toString();
    }

    private static byte[] mutateBytes(byte[] base, SplittableRandom r) {
        byte[] b = base.clone();
        switch (r.nextInt(3)) {
            case 0 -> {
                return Arrays.copyOf(b, r.nextInt(b.length + 1)); // truncated
            }
            case 1 -> {
                for (int i = 1 + r.nextInt(4); i > 0; i--) b[r.nextInt(b.length)] = (byte) r.nextInt(256);
                return b;
            }
            default -> {
                int at = r.nextInt(b.length + 1);
                byte[] out = new byte[b.length + 1];
                System.arraycopy(b, 0, out, 0, at);
                out[at] = (byte) "{}[],:\"\\0".charAt(r.nextInt(9));
                System.arraycopy(b, at, out, at + 1, b.length - at);
                return out;
            }
        }
    }
}
