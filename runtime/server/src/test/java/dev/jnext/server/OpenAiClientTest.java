package dev.jnext.server;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.errors.UnauthorizedException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import dev.jnext.engine.FinishReason;
import dev.jnext.engine.GenerationRequest;
import dev.jnext.engine.GenerationResult;
import dev.jnext.tokenizer.ChatMessage;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The server through the official OpenAI Java SDK: chat (streaming and not), completions, stop strings, logprobs, many streams. */
@Timeout(120)
class OpenAiClientTest {
    static TestServer server;
    static OpenAIClient client;

    @BeforeAll
    static void start() {
        server = TestServer.start(4, 64, TestServer.options());
        client = OpenAIOkHttpClient.builder().baseUrl(server.base + "/v1").apiKey(TestServer.KEY).maxRetries(0)
                .timeout(Duration.ofSeconds(60)).build();
    }

    @AfterAll
    static void stop() {
        client.close();
        server.close();
    }

    private static ChatCompletionCreateParams.Builder chat(String user, int maxTokens) {
        return ChatCompletionCreateParams.builder().model(server.model()).addSystemMessage("Be brief.").addUserMessage(user)
                .maxCompletionTokens(maxTokens).temperature(0.0);
    }

    /** The engine's own answer for the same conversation, greedy. */
    private static GenerationResult direct(String user, int maxTokens) {
        return server.server.engine().generate(GenerationRequest.chat(List.of(ChatMessage.system("Be brief."), ChatMessage.user(user)))
                .greedy().maxTokens(maxTokens).build());
    }

    private static String streamed(ChatCompletionCreateParams params, List<String> finishReasons, long[] usage) {
        StringBuilder text = new StringBuilder();
        try (StreamResponse<ChatCompletionChunk> stream = client.chat().completions().createStreaming(params)) {
            stream.stream().forEach(chunk -> {
                chunk.usage().ifPresent(u -> {
                    usage[0] = u.promptTokens();
                    usage[1] = u.completionTokens();
                });
                for (ChatCompletionChunk.Choice c : chunk.choices()) {
                    c.delta().content().ifPresent(text::append);
                    c.finishReason().ifPresent(r -> finishReasons.add(r.asString()));
                }
            });
        }
        return text.toString();
    }

    @Test
    void modelsListsTheCheckpoint() {
        var models = client.models().list().data();
        assertEquals(1, models.size());
        assertEquals(server.model(), models.getFirst().id());
    }

    @Test
    void chatCompletionIsTheEnginesGreedyAnswer() {
        GenerationResult expected = direct("Hello! Who are you?", 12);
        ChatCompletion c = client.chat().completions().create(chat("Hello! Who are you?", 12).build());
        assertEquals(expected.text(), c.choices().getFirst().message().content().orElse(""));
        String reason = c.choices().getFirst().finishReason().asString();
        assertEquals(expected.finishReason().openAiName(), reason);
        var usage = c.usage().orElseThrow();
        assertEquals(expected.promptTokens(), usage.promptTokens());
        assertEquals(expected.tokens().size(), usage.completionTokens());
        assertEquals(usage.promptTokens() + usage.completionTokens(), usage.totalTokens());
    }

    @Test
    void streamingChatGivesTheSameTextAndUsage() {
        GenerationResult expected = direct("Tell me a story.", 16);
        List<String> reasons = new ArrayList<>();
        long[] usage = new long[2];
        String text = streamed(chat("Tell me a story.", 16)
                .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build()).build(), reasons, usage);
        assertEquals(expected.text(), text);
        assertEquals(List.of(expected.finishReason().openAiName()), reasons);
        assertEquals(expected.promptTokens(), usage[0]);
        assertEquals(expected.tokens().size(), usage[1]);
    }

    @Test
    void stopStringsEndTheTextBeforeThem() {
        GenerationResult free = direct("Count with me.", 24);
        String text = free.text();
        assertTrue(text.length() > 6, "random weights give some text: " + text);
        // a stop string from the middle of the greedy answer (not at its very start)
        int at = Math.max(1, text.length() / 2);
        String stop = text.substring(at, Math.min(text.length(), at + 3));
        int first = text.indexOf(stop);
        ChatCompletion c = client.chat().completions().create(chat("Count with me.", 24).stop(stop).build());
        assertEquals(text.substring(0, first), c.choices().getFirst().message().content().orElse(""));
        assertEquals("stop", c.choices().getFirst().finishReason().asString());
        List<String> reasons = new ArrayList<>();
        assertEquals(text.substring(0, first), streamed(chat("Count with me.", 24).stop(stop).build(), reasons, new long[2]));
        assertEquals(List.of("stop"), reasons);
    }

    @Test
    void logprobsComeWithEachToken() {
        ChatCompletion c = client.chat().completions().create(chat("Hi", 5).logprobs(true).topLogprobs(2).build());
        var content = c.choices().getFirst().logprobs().orElseThrow().content().orElseThrow();
        assertEquals(c.usage().orElseThrow().completionTokens(), content.size());
        for (var t : content) {
            assertTrue(t.logprob() <= 0);
            assertEquals(2, t.topLogprobs().size());
            assertEquals(t.token(), t.topLogprobs().getFirst().token(), "greedy picks the most likely token");
        }
    }

    @Test
    void completionsEndpointContinuesAPrompt() {
        Completion c = client.completions().create(CompletionCreateParams.builder().model(server.model())
                .prompt("The weather today is").maxTokens(6).temperature(0.0).build());
        GenerationResult expected = server.server.engine().generate(GenerationRequest.text("The weather today is").greedy().maxTokens(6).build());
        assertEquals(expected.text(), c.choices().getFirst().text());
        assertEquals(expected.finishReason() == FinishReason.MAX_TOKENS ? "length" : "stop", c.choices().getFirst().finishReason().asString());
    }

    @Test
    void manyConcurrentStreamsEachGetTheirOwnAnswer() throws Exception {
        int n = 10;
        List<String> prompts = new ArrayList<>();
        for (int i = 0; i < n; i++) prompts.add("Question number " + i + ": what comes next?");
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<String>> streams = new ArrayList<>();
            List<Future<GenerationResult>> expected = new ArrayList<>();
            for (String p : prompts) {
                streams.add(pool.submit(() -> streamed(chat(p, 8).build(), new ArrayList<>(), new long[2])));
                expected.add(pool.submit(() -> direct(p, 8)));
            }
            for (int i = 0; i < n; i++) assertEquals(expected.get(i).get().text(), streams.get(i).get(), "stream " + i);
        }
        assertEquals(0, server.server.engine().stats().running());
    }

    @Test
    void aWrongKeyIsRefused() {
        OpenAIClient wrong = OpenAIOkHttpClient.builder().baseUrl(server.base + "/v1").apiKey("nope").maxRetries(0).build();
        try {
            var e = assertThrows(UnauthorizedException.class, () -> wrong.models().list());
            assertFalse(e.getMessage().contains(TestServer.KEY));
        } finally {
            wrong.close();
        }
    }
}
