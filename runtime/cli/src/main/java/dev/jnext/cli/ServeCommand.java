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

/**
 * {@code jnext serve}: the OpenAI-compatible server until SIGTERM or Ctrl-C, which drain it and exit 0 — also when
 * they come while the model is still loading.
 */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve a model over an OpenAI-compatible HTTP API: /v1/chat/completions and /v1/completions (streaming or not), /v1/models, /health and /metrics (Prometheus). Loopback only unless --api-key is given. SIGTERM or Ctrl-C: new requests get 503, running ones may finish for --drain-timeout, the rest end with an error event; the process exits 0 (also when the signal comes during start-up). If the engine stops after repeated internal errors, the process exits 70 so that a supervisor can restart it.")
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
            description = "On SIGTERM, how long running requests may finish (default: ${DEFAULT-VALUE}); the process exits at most about 2 s after it.")
    long drainSeconds;

    @Option(names = "--idle-timeout", defaultValue = "" + ServerOptions.DEFAULT_IDLE_TIMEOUT_SECONDS, paramLabel = "SECONDS",
            description = "A connection that sends and receives nothing for this long is closed; a request that is generating does not count as idle (default: ${DEFAULT-VALUE}).")
    long idleSeconds;

    @Option(names = "--header-timeout", defaultValue = "" + ServerOptions.DEFAULT_HEADER_TIMEOUT_SECONDS, paramLabel = "SECONDS",
            description = "A request's line and headers must arrive within this many seconds of the connection opening (or of their first byte, on a kept-alive connection), else the connection is closed (default: ${DEFAULT-VALUE}).")
    long headerSeconds;

    @Option(names = "--max-connections", defaultValue = "" + ServerOptions.DEFAULT_MAX_CONNECTIONS, paramLabel = "N",
            description = "At most N open connections; past them new ones wait in the kernel's backlog (default: ${DEFAULT-VALUE}). Keep it below the open-file limit.")
    int maxConnections;

    @Mixin
    EngineOptionsMixin engineOptions = new EngineOptionsMixin();

    @Mixin
    DeviceOptions deviceOptions = new DeviceOptions();

    @Override
    public Integer call() {
        PrintWriter err = spec.commandLine().getErr();
        // first of all: SIGTERM or Ctrl-C from now on, even while the model loads, ends the process with status 0
        Termination termination = new Termination(err);
        Thread hook = new Thread(termination::onSignal, "jnext-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            ServerOptions serverOptions = ServerOptions.defaults().withHost(host).withPort(port).withApiKey(apiKey)
                    .withDefaultMaxTokens(defaultMaxTokens).withMaxRequestBytes(maxRequestBytes)
                    .withDrainTimeout(Duration.ofSeconds(drainSeconds)).withIdleTimeout(Duration.ofSeconds(idleSeconds))
                    .withHeaderTimeout(Duration.ofSeconds(headerSeconds)).withMaxConnections(maxConnections);
            serverOptions.checkExposure(); // before the model loads
            EngineOptions options = engineOptions.toOptions(deviceOptions, EngineOptions.DEFAULT_MAX_SEQUENCES, tokenizerDir, true);
            long t0 = System.nanoTime();
            err.printf("jnext: loading %s; Ctrl-C or SIGTERM stops it%n", model);
            err.flush();
            Engine engine = Engine.open(model, options);
            OpenAiServer server;
            try {
                server = OpenAiServer.start(engine, serverOptions);
            } catch (RuntimeException e) {
                engine.close();
                throw e;
            }
            if (!termination.serving(server)) { // a signal came while starting: drain (nothing is running) and stop
                server.awaitStopped();
                return 0;
            }
            watchEngine(engine, server, err, status -> Runtime.getRuntime().halt(status));
            err.printf("jnext: serving %s (%s, %s) on http://%s:%d/v1 after %.2f s; Ctrl-C or SIGTERM stops it%n",
                    engine.modelName(), engine.deviceName(), options.describe(), host, server.port(), (System.nanoTime() - t0) / 1e9);
            err.flush();
            server.awaitStopped();
            return 0;
        } catch (RuntimeException e) {
            // a start-up failure is reported by the caller with its own exit status: the hook must not turn it into 0
            if (termination.failed()) Runtime.getRuntime().removeShutdownHook(hook);
            throw e;
        }
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
     * What SIGTERM / Ctrl-C do, from the moment {@code serve} starts: once serving, drain and stop the server; before
     * (the model is loading), stop there. Either way the JVM ends with status 0 (a signal would otherwise give 143);
     * halting is the only way to choose the status once the JVM is shutting down.
     */
    static final class Termination {
        private final PrintWriter err;
        private OpenAiServer server;
        private boolean signalled;
        private boolean failed;

        Termination(PrintWriter err) {
            this.err = err;
        }

        /** Called once the server listens; false when a signal came first (the server is then being stopped). */
        synchronized boolean serving(OpenAiServer s) {
            server = s;
            if (signalled) {
                Thread.ofPlatform().name("jnext-shutdown-late").start(() -> onTerminate(s, err));
                return false;
            }
            return true;
        }

        /** Start-up failed: the hook is no longer wanted (unless a signal already started it). */
        synchronized boolean failed() {
            failed = true;
            return !signalled;
        }

        void onSignal() {
            OpenAiServer s;
            synchronized (this) {
                if (failed) return;
                signalled = true;
                s = server;
            }
            if (s != null) {
                onTerminate(s, err);
                return;
            }
            err.println("jnext: shutting down during start-up");
            err.println("jnext: stopped");
            err.flush();
            System.out.flush();
            Runtime.getRuntime().halt(0);
        }
    }

    /** Drains and stops the server, then ends the JVM with status 0. */
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
