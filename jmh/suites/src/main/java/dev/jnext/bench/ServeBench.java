package dev.jnext.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jnext.JnextException;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.stream.Stream;

/**
 * A load generator for an OpenAI-compatible server: {@code requests} streaming chat (or completion) requests, at most
 * {@code concurrency} at once, optionally started at a Poisson {@code rate}; reports output tokens per second and the
 * p50/p90/p99 of time to first token, inter-token latency and request latency. Token counts come from the server's
 * {@code usage}; times are measured when each SSE chunk arrives.
 */
public final class ServeBench {
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * @param rate       requests started per second (Poisson arrivals), or 0 to start the next as soon as one of the
     *                   {@code concurrency} slots is free
     * @param ignoreEos  ask the server to generate exactly {@code maxTokens} (vLLM's ignore_eos)
     */
    public record Options(URI base, String apiKey, int requests, int concurrency, double rate, int maxTokens,
                          List<String> prompts, boolean chat, boolean ignoreEos, long seed, Duration timeout, Workload workload,
                          ServeMix mix) {
        /** Plain streaming requests ({@link ServeMix#NONE}). */
        public Options(URI base, String apiKey, int requests, int concurrency, double rate, int maxTokens, List<String> prompts,
                       boolean chat, boolean ignoreEos, long seed, Duration timeout, Workload workload) {
            this(base, apiKey, requests, concurrency, rate, maxTokens, prompts, chat, ignoreEos, seed, timeout, workload, ServeMix.NONE);
        }

        /** The single-turn workload. */
        public Options(URI base, String apiKey, int requests, int concurrency, double rate, int maxTokens, List<String> prompts,
                       boolean chat, boolean ignoreEos, long seed, Duration timeout) {
            this(base, apiKey, requests, concurrency, rate, maxTokens, prompts, chat, ignoreEos, seed, timeout, Workload.SINGLE);
        }

        public Options {
            if (requests < 1) throw new JnextException("--requests must be at least 1, got " + requests);
            if (concurrency < 1) throw new JnextException("--concurrency must be at least 1, got " + concurrency);
            if (rate < 0 || !Double.isFinite(rate)) throw new JnextException("--rate must be >= 0 (0 = no pacing), got " + rate);
            if (maxTokens < 1) throw new JnextException("--max-tokens must be at least 1, got " + maxTokens);
            if (prompts.isEmpty()) throw new JnextException("no prompts to send");
            if (workload == null) throw new NullPointerException("workload");
            if (mix == null) throw new NullPointerException("mix");
            if (mix.tools() > 0 && !chat) throw new JnextException("--mix tools=... needs the chat endpoint (tools are a chat feature)");
            prompts = List.copyOf(prompts);
        }
    }

    /**
     * What one request measured. {@code cut}: the client cancelled or abandoned it on purpose ({@link ServeMix}), so its
     * times and tokens are not the server's.
     */
    record Sample(boolean ok, String error, long ttftNanos, long[] gapsNanos, int promptTokens, int cachedTokens, int outputTokens,
                  long latencyNanos, String text, ServeMix.Kind kind, boolean cut) {
        Sample(boolean ok, String error, long ttftNanos, long[] gapsNanos, int promptTokens, int cachedTokens, int outputTokens,
               long latencyNanos, String text) {
            this(ok, error, ttftNanos, gapsNanos, promptTokens, cachedTokens, outputTokens, latencyNanos, text, ServeMix.Kind.PLAIN, false);
        }

        Sample as(ServeMix.Kind k, boolean wasCut) {
            return new Sample(ok, error, ttftNanos, gapsNanos, promptTokens, cachedTokens, outputTokens, latencyNanos, text, k, wasCut);
        }
    }

    /**
     * What the requests look like. {@code SINGLE}: one user message per request (the prompts in turn).
     * {@code SYSTEM_PROMPT}: every request opens with the same system message of {@link #systemTokens} tokens or so,
     * then its own question (what a shared prefix saves). {@code MULTI_TURN}: conversations of {@link #turns} turns,
     * each turn resending the whole conversation so far (its questions and the model's answers) plus a new question;
     * a conversation's turns run one after another, conversations side by side.
     */
    public record Workload(Kind kind, int turns, int systemTokens) {
        public enum Kind { SINGLE, SYSTEM_PROMPT, MULTI_TURN }

        public static final Workload SINGLE = new Workload(Kind.SINGLE, 1, 0);

        /** Checks the counts. */
        public Workload {
            if (kind == null) throw new NullPointerException("kind");
            if (turns < 1) throw new JnextException("turns must be at least 1, got " + turns);
            if (systemTokens < 0) throw new JnextException("system prompt tokens must not be negative, got " + systemTokens);
        }

        public static Workload systemPrompt(int tokens) {
            return new Workload(Kind.SYSTEM_PROMPT, 1, tokens);
        }

        public static Workload multiTurn(int turns) {
            return new Workload(Kind.MULTI_TURN, turns, 0);
        }
    }

    /** One chat message. */
    record Message(String role, String content) {}

    /** p50/p90/p99 and the mean, in milliseconds. */
    public record Percentiles(double p50, double p90, double p99, double mean) {
        static Percentiles of(long[] nanos) {
            if (nanos.length == 0) return new Percentiles(Double.NaN, Double.NaN, Double.NaN, Double.NaN);
            long[] s = nanos.clone();
            Arrays.sort(s);
            return new Percentiles(rank(s, 0.50), rank(s, 0.90), rank(s, 0.99), Arrays.stream(s).average().orElse(0) / 1e6);
        }

        /** Nearest-rank percentile. */
        private static double rank(long[] sorted, double q) {
            int i = (int) Math.ceil(q * sorted.length) - 1;
            return sorted[Math.max(0, Math.min(sorted.length - 1, i))] / 1e6;
        }
    }

    /**
     * A load's figures. {@code toolRequests}, {@code cancelled} and {@code abandoned} count the {@link ServeMix} requests
     * (tool requests, streams cancelled after the first chunk, non-streaming requests abandoned); the times and tokens
     * count only the requests that ran to their end.
     */
    public record Report(String model, String device, int requests, int failed, List<String> errors, double seconds,
                         long promptTokens, long cachedTokens, long outputTokens, Percentiles ttft, Percentiles interToken,
                         Percentiles latency, int toolRequests, int cancelled, int abandoned) {
        /** Prompt tokens the server prefilled (the rest came from its prefix cache). */
        public long computedPromptTokens() {
            return promptTokens - cachedTokens;
        }

        public double outputTokensPerSecond() {
            return outputTokens / seconds;
        }

        public double requestsPerSecond() {
            return (requests - failed) / seconds;
        }

        public String table() {
            StringBuilder s = new StringBuilder();
            s.append(String.format(Locale.ROOT, "model %s on %s: %d requests, %d failed, %.2f s; output %d tokens = %.1f tok/s; "
                            + "%.2f req/s; prompts %d tokens, %d of them from the prefix cache (%d prefilled)%n", model, device,
                    requests, failed, seconds, outputTokens, outputTokensPerSecond(), requestsPerSecond(), promptTokens,
                    cachedTokens, computedPromptTokens()));
            s.append("| ms | p50 | p90 | p99 | mean |\n|---|---|---|---|---|\n");
            row(s, "time to first token", ttft);
            row(s, "inter-token latency", interToken);
            row(s, "request latency", latency);
            if (toolRequests + cancelled + abandoned > 0) {
                s.append(String.format(Locale.ROOT, "mixed in: %d tool requests, %d streams cancelled after the first chunk, "
                        + "%d non-streaming requests abandoned%n", toolRequests, cancelled, abandoned));
            }
            for (String e : errors.stream().distinct().limit(5).toList()) s.append("error: ").append(e).append('\n');
            return s.toString();
        }

        private static void row(StringBuilder s, String name, Percentiles p) {
            s.append(String.format(Locale.ROOT, "| %s | %.1f | %.1f | %.1f | %.1f |%n", name, p.p50(), p.p90(), p.p99(), p.mean()));
        }

        public Map<String, Object> toMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("model", model);
            m.put("device", device);
            m.put("requests", requests);
            m.put("failed", failed);
            m.put("seconds", seconds);
            m.put("cached_prompt_tokens", cachedTokens);
            m.put("computed_prompt_tokens", computedPromptTokens());
            m.put("prompt_tokens", promptTokens);
            m.put("output_tokens", outputTokens);
            m.put("output_tokens_per_second", outputTokensPerSecond());
            m.put("requests_per_second", requestsPerSecond());
            m.put("ttft_ms", ttft);
            m.put("inter_token_ms", interToken);
            m.put("latency_ms", latency);
            m.put("tool_requests", toolRequests);
            m.put("cancelled", cancelled);
            m.put("abandoned", abandoned);
            m.put("errors", errors.stream().distinct().limit(20).toList());
            return m;
        }
    }

    private final Options options;
    private final HttpClient http;
    private final String model;
    private final String device;

    public ServeBench(Options options) {
        this.options = options;
        this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build();
        JsonNode models = getJson("/v1/models");
        JsonNode first = models.path("data").path(0);
        if (!first.path("id").isTextual()) throw new JnextException(options.base() + "/v1/models lists no model: " + models);
        this.model = first.get("id").asText();
        this.device = first.path("device").asText("unknown device");
    }

    public String model() {
        return model;
    }

    /** GETs a JSON document from the server. */
    JsonNode getJson(String path) {
        try {
            HttpResponse<String> r = http.send(request(path).GET().build(), HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 200) throw new JnextException(options.base() + path + ": HTTP " + r.statusCode() + " " + r.body());
            return JSON.readTree(r.body());
        } catch (IOException e) {
            throw new JnextException(options.base() + path + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new JnextException("interrupted", e);
        }
    }

    /** GETs a text document (e.g. /metrics). */
    String getText(String path) {
        try {
            HttpResponse<String> r = http.send(request(path).GET().build(), HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 200) throw new JnextException(options.base() + path + ": HTTP " + r.statusCode());
            return r.body();
        } catch (IOException e) {
            throw new JnextException(options.base() + path + ": " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new JnextException("interrupted", e);
        }
    }

    private HttpRequest.Builder request(String path) {
        HttpRequest.Builder b = HttpRequest.newBuilder(options.base().resolve(path)).timeout(options.timeout());
        if (options.apiKey() != null) b.header("Authorization", "Bearer " + options.apiKey());
        return b;
    }

    /**
     * Runs the requests and measures them: {@code requests} requests (for {@code MULTI_TURN}, {@code requests / turns}
     * conversations of {@code turns} requests each, rounded up), at most {@code concurrency} in flight.
     */
    public Report run() {
        SplittableRandom arrivals = new SplittableRandom(options.seed());
        Semaphore slots = new Semaphore(options.concurrency());
        List<Future<List<Sample>>> futures = new ArrayList<>();
        Workload w = options.workload();
        String system = w.kind() == Workload.Kind.SYSTEM_PROMPT ? systemPrompt(w.systemTokens(), options.seed()) : null;
        int units = w.kind() == Workload.Kind.MULTI_TURN ? (options.requests() + w.turns() - 1) / w.turns() : options.requests();
        long start = System.nanoTime();
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            long next = start;
            for (int i = 0; i < units; i++) {
                if (options.rate() > 0) {
                    next += (long) (-Math.log(1 - arrivals.nextDouble()) / options.rate() * 1e9);
                    long wait = next - System.nanoTime();
                    if (wait > 0) Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
                }
                slots.acquire();
                final int unit = i;
                futures.add(pool.submit(() -> {
                    try {
                        return w.kind() == Workload.Kind.MULTI_TURN ? conversation(unit, w.turns()) : List.of(one(firstTurn(system, unit)));
                    } finally {
                        slots.release();
                    }
                }));
            }
            List<Sample> samples = new ArrayList<>();
            for (Future<List<Sample>> f : futures) samples.addAll(f.get());
            return report(samples, (System.nanoTime() - start) / 1e9);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new JnextException("interrupted", e);
        } catch (java.util.concurrent.ExecutionException e) {
            throw new JnextException("a request task failed: " + e.getCause(), e.getCause());
        }
    }

    /** The messages of a single-turn request: the shared system prompt (if any) and prompt {@code i}. */
    private List<Message> firstTurn(String system, int i) {
        List<Message> m = new ArrayList<>(2);
        if (system != null) m.add(new Message("system", system));
        m.add(new Message("user", options.prompts().get(i % options.prompts().size())));
        return m;
    }

    /**
     * Conversation {@code c}: {@code turns} requests, each the whole conversation so far (questions and answers) and a
     * new question; stops at the first failed turn.
     */
    private List<Sample> conversation(int c, int turns) {
        List<Message> history = new ArrayList<>();
        List<Sample> out = new ArrayList<>(turns);
        for (int t = 0; t < turns; t++) {
            history.add(new Message("user", options.prompts().get((c * turns + t) % options.prompts().size())));
            Sample s = one(history);
            out.add(s);
            if (!s.ok()) break;
            history.add(new Message("assistant", s.text()));
        }
        return out;
    }

    private Report report(List<Sample> samples, double seconds) {
        List<Long> ttft = new ArrayList<>(), gaps = new ArrayList<>(), latency = new ArrayList<>();
        List<String> errors = new ArrayList<>();
        long prompt = 0, cached = 0, output = 0;
        int failed = 0, tools = 0, cancelled = 0, abandoned = 0;
        for (Sample s : samples) {
            if (s.kind() == ServeMix.Kind.TOOLS) tools++;
            if (!s.ok()) {
                failed++;
                errors.add(s.error());
                continue;
            }
            if (s.cut()) {
                if (s.kind() == ServeMix.Kind.CANCEL) cancelled++;
                else abandoned++;
                continue;
            }
            prompt += s.promptTokens();
            cached += Math.max(0, s.cachedTokens());
            output += s.outputTokens();
            if (s.ttftNanos() > 0) ttft.add(s.ttftNanos());
            for (long g : s.gapsNanos()) gaps.add(g);
            latency.add(s.latencyNanos());
        }
        return new Report(model, device, samples.size(), failed, errors, seconds, prompt, cached, output,
                Percentiles.of(ttft.stream().mapToLong(Long::longValue).toArray()),
                Percentiles.of(gaps.stream().mapToLong(Long::longValue).toArray()),
                Percentiles.of(latency.stream().mapToLong(Long::longValue).toArray()), tools, cancelled, abandoned);
    }

    private final java.util.concurrent.atomic.AtomicLong drawn = new java.util.concurrent.atomic.AtomicLong();

    /** One request of the load: plain, or of the kind the mix draws for it. */
    private Sample one(List<Message> messages) {
        long n = drawn.getAndIncrement();
        ServeMix.Kind kind = options.mix().equals(ServeMix.NONE) ? ServeMix.Kind.PLAIN
                : options.mix().kind(new SplittableRandom(options.seed() * 0x9E3779B97F4A7C15L + n).nextDouble());
        return switch (kind) {
            case PLAIN -> streamed(messages, false, false).as(kind, false);
            case TOOLS -> streamed(messages, true, false).as(kind, false);
            case CANCEL -> {
                Sample s = streamed(messages, false, true);
                yield s.as(kind, s.ok());
            }
            case DISCONNECT -> abandoned(messages);
        };
    }

    /** Two functions in the OpenAI form, offered with {@code tool_choice: auto}. */
    private static void addTools(ObjectNode body) {
        var tools = body.putArray("tools");
        for (String[] f : new String[][]{{"get_weather", "city"}, {"calculate", "expression"}}) {
            ObjectNode fn = tools.addObject().put("type", "function").putObject("function");
            fn.put("name", f[0]).put("description", "a " + f[0].replace('_', ' ') + " tool");
            ObjectNode params = fn.putObject("parameters").put("type", "object");
            params.putObject("properties").putObject(f[1]).put("type", "string");
            params.putArray("required").add(f[1]);
        }
        body.put("tool_choice", "auto");
    }

    /**
     * A non-streaming request the client gives up on after {@link ServeMix#ABANDON_AFTER_MS} ms (the connection closes);
     * one that is answered sooner counts as an ordinary request.
     */
    private Sample abandoned(List<Message> messages) {
        ObjectNode body = body(messages);
        body.put("stream", false);
        long t0 = System.nanoTime();
        try {
            HttpResponse<String> r = http.send(request(options.chat() ? "/v1/chat/completions" : "/v1/completions")
                            .timeout(Duration.ofMillis(ServeMix.ABANDON_AFTER_MS))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body))).build(), HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 200) return failed("HTTP " + r.statusCode() + ": " + r.body()).as(ServeMix.Kind.DISCONNECT, false);
            JsonNode answer = JSON.readTree(r.body());
            long t = System.nanoTime() - t0;
            return new Sample(true, null, t, new long[0], answer.at("/usage/prompt_tokens").asInt(),
                    answer.at("/usage/prompt_tokens_details/cached_tokens").asInt(0), answer.at("/usage/completion_tokens").asInt(), t,
                    answer.at(options.chat() ? "/choices/0/message/content" : "/choices/0/text").asText(""), ServeMix.Kind.DISCONNECT, false);
        } catch (java.net.http.HttpTimeoutException e) {
            return new Sample(true, null, 0, new long[0], 0, 0, 0, System.nanoTime() - t0, "", ServeMix.Kind.DISCONNECT, true);
        } catch (IOException e) {
            return failed(e.toString()).as(ServeMix.Kind.DISCONNECT, false);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return failed("interrupted").as(ServeMix.Kind.DISCONNECT, false);
        }
    }

    /** The request body every kind starts from: model, messages or prompt, max tokens, greedy. */
    private ObjectNode body(List<Message> messages) {
        ObjectNode body = JSON.createObjectNode();
        body.put("model", model);
        if (options.chat()) {
            var array = body.putArray("messages");
            for (Message m : messages) array.addObject().put("role", m.role()).put("content", m.content());
        } else {
            body.put("prompt", completionPrompt(messages));
        }
        body.put("max_tokens", options.maxTokens());
        body.put("temperature", 0.0);
        body.put("ignore_eos", options.ignoreEos());
        return body;
    }

    /**
     * One streaming request: the time of its first content chunk, the gaps between chunks, the usage. {@code tools}:
     * offer functions; {@code cancel}: close the stream after its first chunk (the sample then counts what came).
     */
    private Sample streamed(List<Message> messages, boolean tools, boolean cancel) {
        ObjectNode body = body(messages);
        if (tools) addTools(body);
        body.put("stream", true);
        body.putObject("stream_options").put("include_usage", true);
        long t0 = System.nanoTime();
        try {
            HttpResponse<Stream<String>> r = http.send(request(options.chat() ? "/v1/chat/completions" : "/v1/completions")
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(body))).build(), HttpResponse.BodyHandlers.ofLines());
            if (r.statusCode() != 200) {
                String text = String.join("\n", r.body().toList());
                return failed("HTTP " + r.statusCode() + ": " + text);
            }
            long first = 0, last = 0;
            List<Long> gaps = new ArrayList<>();
            int promptTokens = -1, cachedTokens = 0, outputTokens = -1;
            StringBuilder reply = new StringBuilder();
            String error = null;
            try (Stream<String> lines = r.body()) {
                for (String line : (Iterable<String>) lines::iterator) {
                    if (!line.startsWith("data: ") || line.equals("data: [DONE]")) continue;
                    long now = System.nanoTime();
                    JsonNode chunk = JSON.readTree(line.substring(6));
                    if (chunk.has("error")) error = chunk.at("/error/message").asText();
                    if (chunk.path("usage").isObject()) {
                        promptTokens = chunk.at("/usage/prompt_tokens").asInt();
                        outputTokens = chunk.at("/usage/completion_tokens").asInt();
                        cachedTokens = chunk.at("/usage/prompt_tokens_details/cached_tokens").asInt(0);
                    }
                    JsonNode choice = chunk.path("choices").path(0);
                    String text = options.chat() ? choice.path("delta").path("content").asText("") : choice.path("text").asText("");
                    if (cancel) {           // the client walks away: closing the stream closes the connection
                        return new Sample(true, null, now - t0, new long[0], 0, 0, 0, now - t0, "");
                    }
                    if (text.isEmpty()) continue;
                    reply.append(text);
                    if (first == 0) first = now;
                    else gaps.add(now - last);
                    last = now;
                }
            }
            if (error != null) return failed(error);
            if (outputTokens < 0) return failed("the stream ended without usage");
            return new Sample(true, null, first == 0 ? 0 : first - t0, gaps.stream().mapToLong(Long::longValue).toArray(),
                    promptTokens, cachedTokens, outputTokens, System.nanoTime() - t0, reply.toString());
        } catch (IOException e) {
            return failed(e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return failed("interrupted");
        }
    }

    private static Sample failed(String why) {
        return new Sample(false, why, 0, new long[0], 0, 0, 0, 0, "");
    }

    /** A conversation as one /v1/completions prompt (no chat template): the turns as "role: text" paragraphs. */
    static String completionPrompt(List<Message> messages) {
        if (messages.size() == 1) return messages.getFirst().content();
        StringBuilder b = new StringBuilder();
        for (Message m : messages) b.append(m.role()).append(": ").append(m.content()).append("\n\n");
        return b.append("assistant:").toString();
    }

    /**
     * A deterministic system prompt of about {@code tokens} tokens (≈ 0.75 English words per token in the Qwen
     * tokenizer): assistant rules, numbered, so a shared prefix is long and not repetitive.
     */
    public static String systemPrompt(int tokens, long seed) {
        String[] subjects = {"arithmetic", "units", "fractions", "percentages", "rates", "ages", "money", "time", "geometry",
                "probability", "tables", "ratios"};
        String[] verbs = {"check", "state", "round", "explain", "verify", "convert", "simplify", "label", "restate", "justify"};
        String[] objects = {"every intermediate result", "the final answer", "each assumption", "the units of each quantity",
                "any rounding", "the order of operations", "the question's numbers", "edge cases", "the method used"};
        SplittableRandom r = new SplittableRandom(seed ^ 0x5eedL);
        StringBuilder b = new StringBuilder("You are a careful assistant for grade-school mathematics. Follow these rules.");
        int words = (int) Math.round(tokens * 0.75);
        for (int i = 1; b.length() / 6 < words; i++) {
            b.append(String.format(Locale.ROOT, " Rule %d: in %s problems, %s %s before you %s %s.", i,
                    subjects[r.nextInt(subjects.length)], verbs[r.nextInt(verbs.length)], objects[r.nextInt(objects.length)],
                    verbs[r.nextInt(verbs.length)], objects[r.nextInt(objects.length)]));
        }
        return b.toString();
    }

    /**
     * Deterministic prompts in the manner of grade-school word problems (gsm8k-like; 40–80 tokens each), so a run
     * needs no data set.
     */
    public static List<String> syntheticPrompts(int n, long seed) {
        String[] names = {"Natalia", "Weng", "Betty", "Julie", "James", "Mark", "Albert", "Ken", "Alexis", "Tina"};
        String[] things = {"clips", "apples", "books", "pencils", "stamps", "cookies", "marbles", "tickets"};
        String[] verbs = {"sold", "bought", "collected", "gave away", "found", "baked"};
        SplittableRandom r = new SplittableRandom(seed);
        List<String> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            String who = names[r.nextInt(names.length)], what = things[r.nextInt(things.length)];
            int a = r.nextInt(2, 99), b = r.nextInt(2, 12), c = r.nextInt(1, 30);
            out.add(String.format(Locale.ROOT, "Question %d: %s %s %d %s in April, and then %s %d times as many in May "
                            + "before losing %d of them. How many %s does %s have at the end of May? Think step by step and "
                            + "give the final answer as a number.", i + 1, who, verbs[r.nextInt(verbs.length)], a, what,
                    verbs[r.nextInt(verbs.length)], b, c, what, who));
        }
        return out;
    }
}
