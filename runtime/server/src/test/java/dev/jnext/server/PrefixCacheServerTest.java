package dev.jnext.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.completions.CompletionUsage;
import dev.jnext.backend.PrefixCacheOptions;
import dev.jnext.engine.EngineOptions;
import dev.jnext.model.TestCheckpoints;
import dev.jnext.model.TinyModels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.time.Duration;
import java.util.Arrays;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Prefix caching through the server: {@code usage.prompt_tokens_details.cached_tokens} in chat (OpenAI Java SDK, whole
 * and streamed) and completions (raw JSON), and the cache's counters in /metrics.
 */
@Timeout(120)
class PrefixCacheServerTest {
    static TestServer server;
    static OpenAIClient client;
    static final ObjectMapper json = new ObjectMapper();
    /** A system prompt of a few hundred tokens, shared by the chats. */
    static final String SYSTEM = "You are a careful assistant. " + "Answer in one short sentence, cite no sources, and "
            + "never repeat the question. ".repeat(40);

    @BeforeAll
    static void start() {
        server = new TestServer(TestCheckpoints.tinyQwen(), EngineOptions.defaults().withMaxSequences(2).withMaxStepTokens(256)
                .withPrefixCache(PrefixCacheOptions.on()), TestServer.options());
        client = OpenAIOkHttpClient.builder().baseUrl(server.base + "/v1").apiKey(TestServer.KEY).maxRetries(0)
                .timeout(Duration.ofSeconds(60)).build();
    }

    @AfterAll
    static void stop() {
        client.close();
        server.close();
    }

    private static ChatCompletionCreateParams.Builder chat(String user) {
        return ChatCompletionCreateParams.builder().model(server.model()).addSystemMessage(SYSTEM).addUserMessage(user)
                .maxCompletionTokens(3).temperature(0.0);
    }

    private static long cached(CompletionUsage u) {
        return u.promptTokensDetails().orElseThrow().cachedTokens().orElseThrow();
    }

    @Test
    void chatUsageReportsTheCachedPromptTokens() {
        ChatCompletion first = client.chat().completions().create(chat("What is two plus two?").build());
        CompletionUsage u1 = first.usage().orElseThrow();
        assertTrue(u1.promptTokens() > 200, "a long system prompt: " + u1.promptTokens());
        assertEquals(0, cached(u1));
        // another question after the same system prompt leaves the first's path where the user turns differ: it resumes
        // from a snapshot before that point if there is one, and leaves one at the branch point's 64-token boundary
        CompletionUsage u2 = client.chat().completions().create(chat("Name a colour.").build()).usage().orElseThrow();
        assertTrue(cached(u2) % 64 == 0 && cached(u2) < u2.promptTokens(), "cached " + cached(u2));
        // so a third question resumes there: the whole system prompt up to its last 64-token boundary
        CompletionUsage u3 = client.chat().completions().create(chat("Name an animal.").build()).usage().orElseThrow();
        assertTrue(cached(u3) >= 192 && cached(u3) % 64 == 0 && cached(u3) < u3.promptTokens(), "cached " + cached(u3));
        // the same conversation again, streamed with include_usage: the last chunk carries the field, and resumes further
        long streamed = -1;
        try (StreamResponse<ChatCompletionChunk> s = client.chat().completions().createStreaming(chat("Name an animal.")
                .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build()).build())) {
            for (ChatCompletionChunk c : s.stream().toList()) {
                if (c.usage().isPresent()) streamed = cached(c.usage().get());
            }
        }
        assertEquals(u3.promptTokens() / 64 * 64 == u3.promptTokens() ? u3.promptTokens() - 64 : u3.promptTokens() / 64 * 64,
                streamed, "the same prompt resumes at its last 64-token boundary before its end");
    }

    @Test
    void completionsUsageAndMetrics() throws Exception {
        int[] ids = TinyModels.ids(150, 151_643, 9);
        String prompt = Arrays.stream(ids).mapToObj(Integer::toString).collect(Collectors.joining(","));
        String body = "{\"model\": \"" + server.model() + "\", \"prompt\": [" + prompt + "], \"max_tokens\": 2}";
        JsonNode first = json.readTree(server.post("/v1/completions", body).body());
        assertEquals(0, first.at("/usage/prompt_tokens_details/cached_tokens").asInt(-1), first.toString());
        JsonNode second = json.readTree(server.post("/v1/completions", body).body());
        // 150 tokens: the first left a snapshot at 128, its last aligned position
        assertEquals(128, second.at("/usage/prompt_tokens_details/cached_tokens").asInt(-1), second.toString());
        assertEquals(150, second.at("/usage/prompt_tokens").asInt());

        String m = server.get("/metrics").body();
        for (String name : new String[]{"jnext_prefix_cache_hits_total", "jnext_prefix_cache_misses_total",
                "jnext_prefix_cache_evictions_total", "jnext_prefix_cache_cached_tokens_total", "jnext_prefix_cache_stored_tokens",
                "jnext_prefix_cache_snapshots", "jnext_prefix_cache_bytes{kind=\"kv\"}", "jnext_prefix_cache_bytes{kind=\"snapshot\"}",
                "jnext_prefix_cache_budget_bytes{kind=\"kv\"}"}) {
            assertTrue(m.contains(name), name + " missing:\n" + m);
        }
        assertTrue(metric(m, "jnext_prefix_cache_hits_total") >= 1, m);
        assertTrue(metric(m, "jnext_prefix_cache_misses_total") >= 1, m);
        assertTrue(metric(m, "jnext_prefix_cache_cached_tokens_total") >= 128, m);
        assertTrue(metric(m, "jnext_prefix_cache_snapshots") >= 1, m);
    }

    private static double metric(String text, String name) {
        return text.lines().filter(l -> l.startsWith(name + " ")).mapToDouble(l -> Double.parseDouble(l.substring(name.length() + 1)))
                .findFirst().orElseThrow(() -> new AssertionError(name + " missing:\n" + text));
    }
}
