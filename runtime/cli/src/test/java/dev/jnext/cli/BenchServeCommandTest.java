package dev.jnext.cli;

import dev.jnext.backend.DeviceChoice;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jnext.engine.Engine;
import dev.jnext.engine.EngineOptions;
import dev.jnext.model.TestCheckpoints;
import dev.jnext.server.OpenAiServer;
import dev.jnext.server.ServerOptions;
import dev.jnext.tokenizer.TestTokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code jnext bench serve}: in-process and against a running server, a short soak, and its argument checks. */
@Timeout(120)
class BenchServeCommandTest {
    private final String model = TestCheckpoints.tinyQwen().toString();
    private final String tokenizer = TestTokenizers.qwen3Dir().toString();

    @Test
    void inProcessLoadReportsThroughputAndLatencies(@TempDir Path tmp) throws Exception {
        Path json = tmp.resolve("bench.json");
        CliRun r = CliRun.run("", "bench", "serve", "--model", model, "--tokenizer", tokenizer, "--requests", "6",
                "--concurrency", "3", "--max-tokens", "4", "--max-sequences", "4", "--graphs", "piecewise", "--decode-graphs", "off", "--json", json.toString());
        assertEquals(0, r.exitCode(), r.err());
        for (String s : new String[]{"6 requests, 0 failed", "tok/s", "time to first token", "inter-token latency", "request latency"}) {
            assertTrue(r.out().contains(s), s + " missing: " + r.out());
        }
        JsonNode record = new ObjectMapper().readTree(json.toFile());
        assertEquals(24, record.at("/report/output_tokens").asInt());
        assertEquals(0, record.at("/report/failed").asInt());
        assertEquals("cpu", record.at("/report/device").asText());
        assertTrue(record.at("/report/ttft_ms/p99").asDouble() >= record.at("/report/ttft_ms/p50").asDouble());
        assertTrue(record.at("/engine_options").asText().contains("prefill-mode=piecewise decode-graphs=off"), record.toString());
        assertTrue(record.at("/engine_options").asText().contains("prefix-cache=on(kv=1g,snapshots=1g,interval=512)"),
                "on by default, as in serve: " + record);
    }

    @Test
    void loadOnARunningServerWithAKeyAndAShortSoak() {
        Engine engine = Engine.open(TestCheckpoints.tinyQwen(), EngineOptions.defaults().withDevice(DeviceChoice.CPU)
                .withMaxSequences(4).withTokenizer(TestTokenizers.qwen3Dir()));
        try (OpenAiServer server = OpenAiServer.start(engine, ServerOptions.defaults().withPort(0).withApiKey("k1")
                .withDrainTimeout(Duration.ZERO))) {
            String url = "http://127.0.0.1:" + server.port();
            CliRun r = CliRun.run("", "bench", "serve", "--url", url, "--api-key", "k1", "--requests", "4", "--concurrency", "4",
                    "--max-tokens", "3", "--completions", "--rate", "50");
            assertEquals(0, r.exitCode(), r.err());
            assertTrue(r.out().contains("4 requests, 0 failed"), r.out());
            CliRun wrongKey = CliRun.run("", "bench", "serve", "--url", url, "--api-key", "nope", "--requests", "1");
            assertEquals(Main.EXIT_USER_ERROR, wrongKey.exitCode());
            assertTrue(wrongKey.err().contains("401"), wrongKey.err());
            CliRun soak = CliRun.run("", "bench", "serve", "--url", url, "--api-key", "k1", "--requests", "4",
                    "--concurrency", "4", "--max-tokens", "3", "--soak", "2s");
            assertEquals(0, soak.exitCode(), soak.out() + soak.err());
            assertTrue(soak.out().contains("soak: nothing grew"), soak.out());
            assertTrue(soak.err().contains("heap after GC"), soak.err());
        }
    }

    @Test
    void aSoakWithToolsCancelsAndAbandonedRequestsDrainsToNothing(@TempDir Path tmp) throws Exception {
        Path json = tmp.resolve("soak.json");
        CliRun r = CliRun.run("", "bench", "serve", "--model", model, "--tokenizer", tokenizer, "--requests", "12",
                "--concurrency", "4", "--max-tokens", "400", "--ignore-eos", "--max-sequences", "4", "--soak", "4s",
                "--sample-every", "500ms", "--mix", "tools=0.25,cancel=0.25,disconnect=0.25", "--json", json.toString());
        assertEquals(0, r.exitCode(), r.out() + r.err());
        assertTrue(r.out().contains("soak: nothing grew") && r.out().contains("no KV reservation"), r.out());
        JsonNode soak = new ObjectMapper().readTree(json.toFile()).path("soak");
        assertTrue(soak.path("ok").asBoolean(), soak.toString());
        assertTrue(soak.path("samples").size() >= 4, soak.toString());
        assertEquals(0, soak.at("/failed").asInt(), soak.toString());
        assertTrue(soak.at("/tool_requests").asInt() > 0, soak.toString());
        assertTrue(soak.at("/cancelled").asInt() > 0, soak.toString());
        assertTrue(soak.at("/abandoned").asInt() > 0, soak.toString());
        assertEquals(0, soak.at("/drained/running").asInt(), soak.toString());
        assertEquals(0, soak.at("/drained/kvTokensReserved").asInt(), soak.toString());
        assertTrue(soak.at("/samples/0/kvTokensReserved").asLong() >= 0, soak.toString());
    }

    @Test
    void multiTurnAndSystemPromptWorkloadsShowThePrefixCacheGain(@TempDir Path tmp) throws Exception {
        Path json = tmp.resolve("multi.json");
        CliRun r = CliRun.run("", "bench", "serve", "--model", model, "--tokenizer", tokenizer, "--workload", "multi-turn",
                "--turns", "3", "--requests", "6", "--concurrency", "2", "--max-tokens", "4", "--max-sequences", "4",
                "--compare-prefix-cache", "--json", json.toString());
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().contains("--- prefix cache on:") && r.out().contains("--- prefix cache off:"), r.out());
        assertTrue(r.out().contains("prefix cache gain: TTFT p50"), r.out());
        JsonNode rec = new ObjectMapper().readTree(json.toFile());
        assertEquals("multi-turn (3 turns)", rec.at("/workload").asText());
        assertEquals(6, rec.at("/prefix_cache_on/requests").asInt());
        assertEquals(0, rec.at("/prefix_cache_on/failed").asInt());
        // turns 2 and 3 of each conversation resend turn 1's prompt: the cache serves it; with the cache off nothing is cached
        assertTrue(rec.at("/prefix_cache_on/cached_prompt_tokens").asLong() > 0, rec.toString());
        assertEquals(0, rec.at("/prefix_cache_off/cached_prompt_tokens").asLong(), rec.toString());
        assertEquals(rec.at("/prefix_cache_off/prompt_tokens").asLong(), rec.at("/prefix_cache_on/prompt_tokens").asLong(),
                "the same conversations (greedy, the same answers) in both runs: " + rec);
        assertTrue(rec.at("/prefix_cache_on_engine_options").asText().contains("prefix-cache=on"), rec.toString());
        assertTrue(rec.at("/prefix_cache_off_engine_options").asText().contains("prefix-cache=off"), rec.toString());

        json = tmp.resolve("system.json");
        r = CliRun.run("", "bench", "serve", "--model", model, "--tokenizer", tokenizer, "--workload", "system-prompt",
                "--system-tokens", "600", "--requests", "4", "--concurrency", "1", "--max-tokens", "2", "--max-sequences", "2",
                "--json", json.toString());
        assertEquals(0, r.exitCode(), r.err());
        rec = new ObjectMapper().readTree(json.toFile());
        assertEquals("system-prompt (600 tokens)", rec.at("/workload").asText());
        // requests 2..4 share request 1's system message (one at a time, so each finds the previous one's snapshot)
        assertTrue(rec.at("/report/cached_prompt_tokens").asLong() >= 3 * 500, rec.toString());
        assertTrue(rec.at("/report/prompt_tokens").asLong() >= 4 * 500, rec.toString());
    }

    @Test
    void badArgumentsAreClearErrors() {
        CliRun r = CliRun.run("", "bench", "serve", "--requests", "1");
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode());
        assertTrue(r.err().contains("--url") && r.err().contains("--model"), r.err());
        r = CliRun.run("", "bench", "serve", "--model", model, "--tokenizer", tokenizer, "--soak", "ten minutes");
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode());
        assertTrue(r.err().contains("--soak"), r.err());
        r = CliRun.run("", "bench", "serve", "--model", model, "--tokenizer", tokenizer, "--workload", "chat");
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode());
        assertTrue(r.err().contains("--workload must be single, multi-turn or system-prompt"), r.err());
        r = CliRun.run("", "bench", "serve", "--url", "http://127.0.0.1:9", "--compare-prefix-cache");
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode());
        assertTrue(r.err().contains("--compare-prefix-cache needs --model"), r.err());
        r = CliRun.run("", "bench");
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode());
        assertTrue(r.err().contains("serve"), r.err());
    }
}
