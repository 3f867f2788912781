package dev.jnext.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jnext.JnextException;
import dev.jnext.bench.ServeBench;
import dev.jnext.bench.ServeMix;
import dev.jnext.bench.ServeSoak;
import dev.jnext.backend.PrefixCacheOptions;
import dev.jnext.engine.Engine;
import dev.jnext.engine.EngineOptions;
import dev.jnext.server.OpenAiServer;
import dev.jnext.server.ServerOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** {@code jnext bench serve}: load on an OpenAI-compatible server (a running one, or one started here), or a soak run. */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Send N streaming requests at a concurrency (or a Poisson rate) to an OpenAI-compatible server and",
                "report output tok/s and p50/p90/p99 of time to first token, inter-token latency and request latency.",
                "--url hits a running server; --model starts one in this process with the engine options given.",
                "--soak DURATION repeats the load, sampling the server's metrics every --sample-every, and fails (exit 1) if its heap, threads or device memory grow, or if once drained it still runs a request or holds KV; --mix adds tool requests, cancelled streams and abandoned requests."})
public final class BenchServeCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--url", description = "a running server, e.g. http://127.0.0.1:8000")
    URI url;

    @Option(names = "--model", description = "start a server in this process over this checkpoint folder")
    Path model;

    @Option(names = "--tokenizer", description = "with --model: folder with tokenizer.json; default: --model")
    Path tokenizerDir;

    @Option(names = "--api-key", defaultValue = "${env:JNEXT_API_KEY}", paramLabel = "KEY", description = "bearer token for --url")
    String apiKey;

    @Option(names = "--requests", defaultValue = "200", description = "requests to send (per round when soaking) (default: ${DEFAULT-VALUE})")
    int requests;

    @Option(names = "--concurrency", defaultValue = "16", description = "most requests in flight (default: ${DEFAULT-VALUE})")
    int concurrency;

    @Option(names = "--rate", defaultValue = "0", description = "requests started per second, Poisson arrivals; 0 = as fast as --concurrency allows (default: ${DEFAULT-VALUE})")
    double rate;

    @Option(names = "--max-tokens", defaultValue = "256", description = "new tokens per request (default: ${DEFAULT-VALUE})")
    int maxTokens;

    @Option(names = "--ignore-eos", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "generate exactly --max-tokens per request (default: on)")
    boolean ignoreEos;

    @Option(names = "--prompts", description = "a file of prompts, one per line (default: synthetic gsm8k-like questions)")
    Path prompts;

    @Option(names = "--completions", description = "use /v1/completions instead of /v1/chat/completions")
    boolean completions;

    @Option(names = "--seed", defaultValue = "0", description = "seed of the synthetic prompts and the arrivals (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--timeout", defaultValue = "600", paramLabel = "SECONDS", description = "per request (default: ${DEFAULT-VALUE})")
    long timeoutSeconds;

    @Option(names = "--soak", paramLabel = "DURATION", description = "repeat the load for this long (e.g. 30s, 10m, 1h) and check for growth")
    String soak;

    @Option(names = "--sample-every", paramLabel = "DURATION",
            description = "with --soak: read the server's metrics this often (default: 10s, or an eighth of a shorter soak)")
    String sampleEvery;

    @Option(names = "--mix", paramLabel = "tools=F,cancel=F,disconnect=F", defaultValue = "none",
            description = "fractions of the requests that offer tools, that cancel their stream after the first chunk, and "
                    + "that are non-streaming and abandoned after 150 ms (default: ${DEFAULT-VALUE})")
    String mix;

    @Option(names = "--workload", defaultValue = "single", paramLabel = "single|multi-turn|system-prompt",
            description = "single: one user message per request; multi-turn: conversations of --turns requests, each resending "
                    + "the whole conversation plus a new question; system-prompt: every request opens with the same system "
                    + "message of --system-tokens tokens (default: ${DEFAULT-VALUE})")
    String workload;

    @Option(names = "--turns", defaultValue = "4", description = "turns per conversation of --workload multi-turn (default: ${DEFAULT-VALUE})")
    int turns;

    @Option(names = "--system-tokens", defaultValue = "2000",
            description = "about how many tokens the shared system message of --workload system-prompt has (default: ${DEFAULT-VALUE})")
    int systemTokens;

    @Option(names = "--compare-prefix-cache",
            description = "with --model: run the load twice, the server's prefix cache on, then off, and report the gain")
    boolean comparePrefixCache;

    @Option(names = "--json", description = "also write the figures to this JSON file")
    Path json;

    @Mixin
    EngineOptionsMixin engineOptions = new EngineOptionsMixin();

    @Mixin
    DeviceOptions deviceOptions = new DeviceOptions();

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        if ((url == null) == (model == null)) throw new JnextException("give either --url (a running server) or --model (start one here)");
        Duration soakFor = soak == null ? null : parseDuration(soak, "--soak");
        if (sampleEvery != null && soakFor == null) throw new JnextException("--sample-every goes with --soak");
        List<String> texts = prompts != null ? readPrompts(prompts) : ServeBench.syntheticPrompts(Math.max(requests, 1), seed);
        ServeBench.Workload load = workload();
        if (comparePrefixCache && model == null) throw new JnextException("--compare-prefix-cache needs --model (a server started here)");
        if (comparePrefixCache && soakFor != null) throw new JnextException("--compare-prefix-cache and --soak do not go together");
        Map<String, Object> record = new LinkedHashMap<>();
        record.put("requests", requests);
        record.put("concurrency", concurrency);
        record.put("rate", rate);
        record.put("max_tokens", maxTokens);
        record.put("ignore_eos", ignoreEos);
        record.put("endpoint", completions ? "/v1/completions" : "/v1/chat/completions");
        record.put("mix", ServeMix.parse(mix).toString());
        record.put("workload", workload + (load.kind() == ServeBench.Workload.Kind.MULTI_TURN ? " (" + turns + " turns)"
                : load.kind() == ServeBench.Workload.Kind.SYSTEM_PROMPT ? " (" + systemTokens + " tokens)" : ""));
        record.put("host_cpus", Runtime.getRuntime().availableProcessors());
        int status = 0;
        if (comparePrefixCache) {
            EngineOptions on = engineOptions.toOptions(deviceOptions, EngineOptions.DEFAULT_MAX_SEQUENCES, tokenizerDir, true);
            if (!on.prefixCache().enabled()) on = on.withPrefixCache(PrefixCacheOptions.on());
            ServeBench.Report cached = runInProcess(on, texts, load, null, record, "prefix_cache_on", out, err).report();
            ServeBench.Report cold = runInProcess(on.withPrefixCache(PrefixCacheOptions.off()), texts, load, null, record,
                    "prefix_cache_off", out, err).report();
            String gain = String.format(Locale.ROOT, "prefix cache gain: TTFT p50 %.1f -> %.1f ms (%.2fx), mean %.1f -> %.1f ms; "
                            + "prompt tokens prefilled %d -> %d (%.1f%% from the cache)", cold.ttft().p50(), cached.ttft().p50(),
                    cold.ttft().p50() / cached.ttft().p50(), cold.ttft().mean(), cached.ttft().mean(), cold.computedPromptTokens(),
                    cached.computedPromptTokens(), 100.0 * cached.cachedTokens() / Math.max(1, cached.promptTokens()));
            out.println(gain);
            record.put("gain", gain);
            if (cached.failed() > 0 || cold.failed() > 0) status = 1;
        } else if (model != null) {
            EngineOptions options = engineOptions.toOptions(deviceOptions, EngineOptions.DEFAULT_MAX_SEQUENCES, tokenizerDir, true);
            status = runInProcess(options, texts, load, soakFor, record, "report", out, err).ok() ? 0 : 1;
        } else {
            record.put("url", url.toString());
            status = measure(new ServeBench(benchOptions(url, apiKey, texts, load)), soakFor, false, record, "report", out, err)
                    .ok() ? 0 : 1;
        }
        out.flush();
        if (json != null) {
            new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), record);
        }
        return status;
    }

    private ServeBench.Workload workload() {
        return switch (workload) {
            case "single" -> ServeBench.Workload.SINGLE;
            case "multi-turn" -> ServeBench.Workload.multiTurn(turns);
            case "system-prompt" -> ServeBench.Workload.systemPrompt(systemTokens);
            default -> throw new JnextException("--workload must be single, multi-turn or system-prompt, got \"" + workload + "\"");
        };
    }

    private ServeBench.Options benchOptions(URI base, String key, List<String> texts, ServeBench.Workload load) {
        return new ServeBench.Options(base, key, requests, concurrency, rate, maxTokens, texts, !completions, ignoreEos, seed,
                Duration.ofSeconds(timeoutSeconds), load, ServeMix.parse(mix));
    }

    /** A load's (last round's) report; {@code ok} false when a soak found growth. */
    private record Measured(ServeBench.Report report, boolean ok) {}

    /** Starts a server over {@code --model} with {@code options}, measures it into {@code record.key} and stops it. */
    private Measured runInProcess(EngineOptions options, List<String> texts, ServeBench.Workload load, Duration soakFor,
                                           Map<String, Object> record, String key, PrintWriter out, PrintWriter err) {
        Engine engine = Engine.open(model, options);
        try (OpenAiServer server = OpenAiServer.start(engine, ServerOptions.defaults().withPort(0).withApiKey(null)
                .withDefaultMaxTokens(maxTokens))) {
            URI base = URI.create("http://127.0.0.1:" + server.port());
            err.println("jnext: serving " + engine.modelName() + " in process on " + base + " (" + options.describe() + ")");
            err.flush();
            record.put(key.equals("report") ? "engine_options" : key + "_engine_options", options.describe());
            record.put("url", base.toString());
            ServeBench bench = new ServeBench(benchOptions(base, null, texts, load));
            return measure(bench, soakFor, true, record, key, out, err);
        }
    }

    /** One load (or soak) on {@code bench} into {@code record.key}. */
    private Measured measure(ServeBench bench, Duration soakFor, boolean inProcess, Map<String, Object> record, String key,
                        PrintWriter out, PrintWriter err) {
        if (soakFor == null) {
            ServeBench.Report report = bench.run();
            if (!key.equals("report")) out.println("--- " + key.replace('_', ' ') + ":");
            out.print(report.table());
            record.put(key, report.toMap());
            return new Measured(report, true);
        }
        Duration every = sampleEvery == null ? ServeSoak.defaultEvery(soakFor) : parseDuration(sampleEvery, "--sample-every");
        ServeSoak.Result result = ServeSoak.run(bench, soakFor, every, inProcess, line -> {
            err.println("jnext: " + line);
            err.flush();
        });
        ServeBench.Report last = result.rounds().getLast();
        out.print(last.table());
        out.println(result.verdict().ok() ? "soak: nothing grew over " + result.samples().size() + " samples, and the drained server "
                + "held no request and no KV reservation"
                : "soak FAILED: " + String.join("; ", result.verdict().problems()));
        record.put(key, last.toMap());
        record.put("soak", result.toMap());
        return new Measured(last, result.verdict().ok());
    }

    private static List<String> readPrompts(Path file) throws IOException {
        if (!Files.isRegularFile(file)) throw new JnextException("--prompts " + file + ": no such file");
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8).stream().filter(l -> !l.isBlank()).toList();
        if (lines.isEmpty()) throw new JnextException("--prompts " + file + ": the file holds no prompt");
        return lines;
    }

    /** {@code 500ms}, {@code 30s}, {@code 10m}, {@code 2h}. */
    static Duration parseDuration(String s, String option) {
        Matcher m = Pattern.compile("(\\d+)(ms|s|m|h)").matcher(s.trim().toLowerCase(Locale.ROOT));
        if (!m.matches()) throw new JnextException(option + " must be a duration like 30s, 10m or 1h, got \"" + s + "\"");
        long n = Long.parseLong(m.group(1));
        if (n == 0) throw new JnextException(option + " must be longer than 0, got \"" + s + "\"");
        return switch (m.group(2)) {
            case "ms" -> Duration.ofMillis(n);
            case "s" -> Duration.ofSeconds(n);
            case "m" -> Duration.ofMinutes(n);
            default -> Duration.ofHours(n);
        };
    }
}
