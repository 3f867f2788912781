package dev.jnext.cli;

import dev.jnext.engine.Engine;
import dev.jnext.engine.EngineOptions;
import dev.jnext.server.OpenAiServer;
import dev.jnext.server.ServerOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.function.IntConsumer;

/** {@code jnext serve}: the OpenAI-compatible server until SIGTERM or Ctrl-C, which drain it and exit 0. */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve a model over an OpenAI-compatible HTTP API: /v1/chat/completions and /v1/completions (streaming or not), /v1/models, /health and /metrics (Prometheus). Loopback only unless --api-key is given. SIGTERM or Ctrl-C: new requests get 503, running ones may finish for --drain-timeout, the rest end with an error event; the process exits 0. If the engine stops after repeated internal errors, the process exits 70 so that a supervisor can restart it.")
public final class ServeCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Hugging Face checkpoint folder (config.json + safetensors).")
    Path model;

    @Option(names = "--tokenizer", paramLabel = "DIR", description = "Folder with tokenizer.json (+ tokenizer_config.json); default: --model.")
    Path tokenizerDir;

    @Option(names = "--host", paramLabel = "HOST", defaultValue = ServerOptions.DEFAULT_HOST,
            description = "Address to bind (default: ${DEFAULT-VALUE}); any other than loopback needs --api-key.")
    String host;

    @Option(names = "--port", paramLabel = "PORT", defaultValue = "" + ServerOptions.DEFAULT_PORT, description = "TCP port, 0 = any free one (default: ${DEFAULT-VALUE}).")
    int port;

    @Option(names = "--api-key", defaultValue = "${env:JNEXT_API_KEY}", paramLabel = "KEY",
            description = "Clients must send \"Authorization: Bearer KEY\" (default: the JNEXT_API_KEY environment variable).")
    String apiKey;

    @Option(names = "--default-max-tokens", defaultValue = "8192", paramLabel = "N",
            description = "Chat completions without max_tokens stop after N tokens (default: ${DEFAULT-VALUE}).")
    int defaultMaxTokens;

    @Option(names = "--max-request-bytes", defaultValue = "4194304", paramLabel = "N",
            description = "Larger request bodies are refused with 400 (default: ${DEFAULT-VALUE}).")
    long maxRequestBytes;

    @Option(names = "--drain-timeout", defaultValue = "30", paramLabel = "SECONDS",
            description = "On SIGTERM, how long running requests may finish (default: ${DEFAULT-VALUE}).")
    long drainSeconds;

    @Mixin
    EngineOptionsMixin engineOptions = new EngineOptionsMixin();

    @Mixin
    DeviceOptions deviceOptions = new DeviceOptions();

    @Override
    public Integer call() {
        PrintWriter err = spec.commandLine().getErr();
        ServerOptions serverOptions = ServerOptions.defaults().withHost(host).withPort(port).withApiKey(apiKey)
                .withDefaultMaxTokens(defaultMaxTokens).withMaxRequestBytes(maxRequestBytes)
                .withDrainTimeout(Duration.ofSeconds(drainSeconds));
        serverOptions.checkExposure(); // before the model loads
        EngineOptions options = engineOptions.toOptions(deviceOptions, EngineOptions.DEFAULT_MAX_SEQUENCES, tokenizerDir, true);
        long t0 = System.nanoTime();
        Engine engine = Engine.open(model, options);
        OpenAiServer server;
        try {
            server = OpenAiServer.start(engine, serverOptions);
        } catch (RuntimeException e) {
            engine.close();
            throw e;
        }
        Runtime.getRuntime().addShutdownHook(new Thread(() -> onTerminate(server, err), "jnext-shutdown"));
        watchEngine(engine, server, err, status -> Runtime.getRuntime().halt(status));
        err.printf("jnext: serving %s (%s, %s) on http://%s:%d/v1 after %.2f s; Ctrl-C or SIGTERM stops it%n",
                engine.modelName(), engine.deviceName(), options.describe(), host, server.port(), (System.nanoTime() - t0) / 1e9);
        err.flush();
        server.awaitStopped();
        return 0;
    }

    /** The exit status when the engine stopped after repeated internal errors (sysexits' EX_SOFTWARE). */
    static final int EXIT_ENGINE_FAILED = 70;

    /**
     * When the engine stops on its own ({@link Engine#hasFailed()}: its loop kept failing, see {@link Engine}), the server
     * is stopped and the process ends with {@link #EXIT_ENGINE_FAILED}, so that a supervisor (systemd, Kubernetes)
     * restarts it instead of a process that answers 503 for ever. {@code exit} halts (the shutdown hook would exit 0).
     */
    static Thread watchEngine(Engine engine, OpenAiServer server, PrintWriter err, IntConsumer exit) {
        return Thread.ofPlatform().name("jnext-engine-watch").daemon().start(() -> {
            try {
                engine.awaitStopped();
            } catch (InterruptedException e) {
                return;
            }
            if (!engine.hasFailed()) return; // closed by a shutdown
            err.println("jnext: the engine stopped after repeated internal errors (the log above has them); exiting with status "
                    + EXIT_ENGINE_FAILED + " so that a supervisor restarts the server");
            err.flush();
            server.close();
            exit.accept(EXIT_ENGINE_FAILED);
        });
    }

    /**
     * What SIGTERM / Ctrl-C do: drain and stop the server, then end the JVM with status 0 (a signal would otherwise
     * give 143); halting is the only way to choose the status once the JVM is shutting down.
     */
    static void onTerminate(OpenAiServer server, PrintWriter err) {
        err.println("jnext: shutting down");
        err.flush();
        server.close();
        err.println("jnext: stopped");
        err.flush();
        System.out.flush();
        Runtime.getRuntime().halt(0);
    }
}
