package dev.jnext.server;

import dev.jnext.backend.DeviceChoice;

import dev.jnext.engine.Engine;
import dev.jnext.engine.EngineOptions;
import dev.jnext.model.TestCheckpoints;
import dev.jnext.tokenizer.TestTokenizers;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;

/** A server over the tiny random checkpoint on a free loopback port, and a plain HTTP client for it. */
final class TestServer implements AutoCloseable {
    static final String KEY = "test-key-123";
    final OpenAiServer server;
    final String base;
    final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();

    TestServer(Path model, EngineOptions engine, ServerOptions options) {
        Engine e = Engine.open(model, engine.withTokenizer(TestTokenizers.qwen3Dir()).withDevice(DeviceChoice.CPU));
        this.server = OpenAiServer.start(e, options.withPort(0));
        this.base = "http://127.0.0.1:" + server.port();
    }

    static TestServer start(int slots, int queueLimit, ServerOptions options) {
        return new TestServer(TestCheckpoints.tinyQwen(),
                EngineOptions.defaults().withMaxSequences(slots).withMaxStepTokens(256).withQueueLimit(queueLimit), options);
    }

    /** Default test options: the key set, small default max tokens, 200 ms keep-alive, 64 KiB bodies. */
    static ServerOptions options() {
        return ServerOptions.defaults().withApiKey(KEY).withDefaultMaxTokens(8).withKeepAlive(Duration.ofMillis(200))
                .withMaxRequestBytes(64 << 10).withDrainTimeout(Duration.ofSeconds(2));
    }

    String model() {
        return server.engine().modelName();
    }

    HttpResponse<String> post(String path, String body) throws IOException, InterruptedException {
        return http.send(request(path).POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    HttpResponse<String> get(String path) throws IOException, InterruptedException {
        return http.send(request(path).GET().build(), HttpResponse.BodyHandlers.ofString());
    }

    HttpRequest.Builder request(String path) {
        return HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(60))
                .header("Authorization", "Bearer " + KEY).header("Content-Type", "application/json");
    }

    @Override
    public void close() {
        server.shutdown(Duration.ZERO);
    }
}
