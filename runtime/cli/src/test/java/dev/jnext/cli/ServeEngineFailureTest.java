package dev.jnext.cli;

import dev.jnext.engine.Engine;
import dev.jnext.engine.ScriptedEngines;
import dev.jnext.server.OpenAiServer;
import dev.jnext.server.ServerOptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 19: after an OutOfMemoryError on the engine thread the server answered 503 for ever and showed the JVM's class
 * name. Now every reply is generic, the engine restarts its loop, and an engine that keeps failing ends the process
 * with status 70 (a supervisor restarts it).
 */
class ServeEngineFailureTest {

    @Test
    @Timeout(60)
    void repliesAreGenericAndAnEngineThatKeepsFailingEndsTheProcessWithStatus70() throws Exception {
        Engine engine = ScriptedEngines.failingOnEveryStep();
        OpenAiServer server = OpenAiServer.start(engine, ServerOptions.defaults().withPort(0).withDrainTimeout(Duration.ofSeconds(1)));
        CompletableFuture<Integer> exit = new CompletableFuture<>();
        StringWriter err = new StringWriter();
        ServeCommand.watchEngine(engine, server, new PrintWriter(err, true), exit::complete);
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        String base = "http://127.0.0.1:" + server.port();
        int errors = 0;
        for (int i = 0; i < 20 && !exit.isDone(); i++) {
            HttpResponse<String> r;
            try {
                r = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/completions"))
                        .header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString("{\"model\": \"scripted\", \"prompt\": \"hi\", \"max_tokens\": 2}"))
                        .timeout(Duration.ofSeconds(20)).build(), HttpResponse.BodyHandlers.ofString());
            } catch (java.io.IOException e) {
                break; // the server is stopping
            }
            assertTrue(r.statusCode() == 500 || r.statusCode() == 503, r.statusCode() + " " + r.body());
            for (String leak : new String[] {"java.", "Error", "OutOfMemory", "heap"}) {
                assertFalse(r.body().contains(leak), "\"" + leak + "\" reached the client: " + r.body());
            }
            errors++;
        }
        assertEquals(70, exit.get(30, TimeUnit.SECONDS));
        assertTrue(errors >= Engine.MAX_RESTARTS, errors + " failed requests before the engine gave up");
        assertTrue(engine.hasFailed());
        assertTrue(err.toString().contains("exiting with status 70"), err.toString());
        server.awaitStopped();
        engine.close();
    }
}
