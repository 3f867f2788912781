package dev.jnext.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.helpers.ChatCompletionAccumulator;
import com.openai.models.FunctionDefinition;
import com.openai.models.FunctionParameters;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionMessage;
import com.openai.models.chat.completions.ChatCompletionMessageFunctionToolCall;
import com.openai.models.chat.completions.ChatCompletionNamedToolChoice;
import com.openai.models.chat.completions.ChatCompletionToolChoiceOption;
import com.openai.models.chat.completions.ChatCompletionToolMessageParam;
import dev.jnext.engine.Engine;
import dev.jnext.engine.ScriptedAnswers;
import dev.jnext.tokenizer.TestTokenizers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Tool calls and reasoning end to end, through the official OpenAI Java SDK: an engine over {@link ScriptedAnswers}
 * (the model "writes" a given answer, token by token through the real Qwen3 tokenizer) behind the real server, once
 * with the Qwen3 chat template (Hermes JSON calls, think blocks the model opens) and once with an XML-style template
 * that opens the think block in the prompt (Qwen3.5 / Qwen3-Coder style). Non-streaming and streaming answers, the
 * tool_choice modes, parallel_tool_calls, malformed calls, and tool conversations rendered back into the prompt.
 */
@Timeout(120)
class ToolCallsServerTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    @TempDir
    static Path xmlTokenizer;

    static Served qwen3, xml;

    /** A server over a scripted engine, and an SDK client for it. */
    record Served(ScriptedAnswers model, OpenAiServer server, OpenAIClient client, String base) {
        static Served start(Path tokenizerDir) {
            ScriptedAnswers model = new ScriptedAnswers(TestTokenizers.qwen3(), 4);
            Engine engine = ScriptedAnswers.engine(model, tokenizerDir, "scripted");
            OpenAiServer server = OpenAiServer.start(engine, TestServer.options().withPort(0));
            String base = "http://127.0.0.1:" + server.port();
            OpenAIClient client = OpenAIOkHttpClient.builder().baseUrl(base + "/v1").apiKey(TestServer.KEY).maxRetries(0)
                    .timeout(Duration.ofSeconds(60)).build();
            return new Served(model, server, client, base);
        }

        void close() {
            client.close();
            server.shutdown(Duration.ZERO);
        }
    }

    @BeforeAll
    static void start() throws IOException {
        qwen3 = Served.start(TestTokenizers.qwen3Dir());
        // the Qwen3 tokenizer with an XML-style template of jnext's own (chat_template.jinja wins over the config's)
        Files.copy(TestTokenizers.qwen3Dir().resolve("tokenizer.json"), xmlTokenizer.resolve("tokenizer.json"));
        Files.copy(TestTokenizers.qwen3Dir().resolve("tokenizer_config.json"), xmlTokenizer.resolve("tokenizer_config.json"));
        try (InputStream in = ToolCallsServerTest.class.getResourceAsStream("/dev/jnext/server/tools/xml-thinking-template.jinja")) {
            Files.write(xmlTokenizer.resolve("chat_template.jinja"), in.readAllBytes());
        }
        xml = Served.start(xmlTokenizer);
    }

    @AfterAll
    static void stop() {
        if (qwen3 != null) qwen3.close();
        if (xml != null) xml.close();
    }

    static FunctionDefinition function(String name, String description, Map<String, Object> properties) {
        return FunctionDefinition.builder().name(name).description(description).parameters(FunctionParameters.builder()
                .putAdditionalProperty("type", JsonValue.from("object"))
                .putAdditionalProperty("properties", JsonValue.from(properties))
                .putAdditionalProperty("required", JsonValue.from(List.copyOf(properties.keySet().stream().limit(1).toList())))
                .build()).build();
    }

    static final FunctionDefinition WEATHER = function("get_weather", "Current weather in a city",
            Map.of("location", Map.of("type", "string")));
    static final FunctionDefinition SEARCH = function("search", "Search the catalogue",
            Map.of("query", Map.of("type", "string"), "limit", Map.of("type", "integer"), "in_stock", Map.of("type", "boolean"),
                    "filters", Map.of("type", "object")));
    static final FunctionDefinition TIME = function("get_time", "Current time in a time zone", Map.of("timezone", Map.of("type", "string")));

    static ChatCompletionCreateParams.Builder ask(Served s, String user) {
        return ChatCompletionCreateParams.builder().model("scripted").addUserMessage(user).maxCompletionTokens(400)
                .addFunctionTool(WEATHER).addFunctionTool(SEARCH).addFunctionTool(TIME);
    }

    static final String TWO_CALLS = "I'll check both cities.\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
            + "{\"location\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
            + "{\"location\": \"London\"}}\n</tool_call>";

    static ChatCompletionMessageFunctionToolCall call(ChatCompletionMessage m, int i) {
        return m.toolCalls().orElseThrow().get(i).asFunction();
    }

    static JsonNode args(ChatCompletionMessageFunctionToolCall c) throws IOException {
        return JSON.readTree(c.function().arguments());
    }

    /** Streams a request; returns the accumulated completion and every chunk. */
    static ChatCompletion streamed(Served s, ChatCompletionCreateParams params, List<ChatCompletionChunk> chunks) {
        ChatCompletionAccumulator acc = ChatCompletionAccumulator.create();
        try (StreamResponse<ChatCompletionChunk> stream = s.client().chat().completions().createStreaming(params)) {
            stream.stream().forEach(chunk -> {
                chunks.add(chunk);
                acc.accumulate(chunk);
            });
        }
        return acc.chatCompletion();
    }

    static String reasoning(Map<String, JsonValue> extra) {
        JsonValue v = extra.get("reasoning_content");
        return v == null || v.isNull() ? null : v.convert(String.class);
    }

    @Test
    void hermesCallsComeAsToolCallsWithTheTextBeforeThemAsContent() throws IOException {
        qwen3.model().answer(TWO_CALLS);
        ChatCompletion c = qwen3.client().chat().completions().create(ask(qwen3, "Weather in Paris and London?").build());
        var choice = c.choices().getFirst();
        assertEquals("tool_calls", choice.finishReason().asString());
        ChatCompletionMessage m = choice.message();
        assertEquals("I'll check both cities.", m.content().orElseThrow());
        assertEquals(2, m.toolCalls().orElseThrow().size());
        assertEquals("get_weather", call(m, 0).function().name());
        assertEquals(JSON.readTree("{\"location\": \"Paris\"}"), args(call(m, 0)));
        assertEquals(JSON.readTree("{\"location\": \"London\"}"), args(call(m, 1)));
        assertTrue(call(m, 0).id().startsWith("call_") && !call(m, 0).id().equals(call(m, 1).id()));
        // the tools were offered through the Qwen3 template
        String prompt = qwen3.model().lastPrompt();
        assertTrue(prompt.contains("<tools>") && prompt.contains("\"name\": \"get_weather\"") && prompt.contains("\"name\": \"search\""), prompt);
    }

    @Test
    void streamedCallsAddUpToTheWholeAnswer() throws IOException {
        qwen3.model().answer(TWO_CALLS);
        List<ChatCompletionChunk> chunks = new ArrayList<>();
        ChatCompletion acc = streamed(qwen3, ask(qwen3, "Weather in Paris and London?").build(), chunks);
        ChatCompletionMessage m = acc.choices().getFirst().message();
        assertEquals("I'll check both cities.", m.content().orElseThrow());
        assertEquals(2, m.toolCalls().orElseThrow().size());
        assertEquals(JSON.readTree("{\"location\": \"Paris\"}"), args(call(m, 0)));
        assertEquals(JSON.readTree("{\"location\": \"London\"}"), args(call(m, 1)));
        assertEquals("tool_calls", acc.choices().getFirst().finishReason().asString());
        // each call: a first delta with index, id, type and name, then its arguments; no tag reaches the content
        List<Long> firsts = new ArrayList<>();
        for (ChatCompletionChunk chunk : chunks) {
            for (var ch : chunk.choices()) {
                ch.delta().content().ifPresent(t -> assertFalse(t.contains("<"), "a tag leaked into the content: " + t));
                for (var t : ch.delta().toolCalls().orElse(List.of())) {
                    if (t.id().isPresent()) {
                        firsts.add(t.index());
                        assertEquals("get_weather", t.function().orElseThrow().name().orElseThrow());
                        assertTrue(t.type().isPresent());
                    } else {
                        assertTrue(firsts.contains(t.index()), "arguments before the call's first delta");
                    }
                }
            }
        }
        assertEquals(List.of(0L, 1L), firsts);
    }

    @Test
    void aThinkBlockTheModelWritesIsReasoningContent() {
        qwen3.model().answer("<think>\nParis is the capital of France.\n</think>\n\nIt is Paris.");
        ChatCompletion c = qwen3.client().chat().completions().create(ChatCompletionCreateParams.builder().model("scripted")
                .addUserMessage("Capital of France?").maxCompletionTokens(100).build());
        ChatCompletionMessage m = c.choices().getFirst().message();
        assertEquals("It is Paris.", m.content().orElseThrow());
        assertEquals("Paris is the capital of France.", reasoning(m._additionalProperties()));
        assertEquals("stop", c.choices().getFirst().finishReason().asString());

        List<ChatCompletionChunk> chunks = new ArrayList<>();
        streamed(qwen3, ChatCompletionCreateParams.builder().model("scripted").addUserMessage("Capital of France?")
                .maxCompletionTokens(100).build(), chunks);
        StringBuilder reasoning = new StringBuilder(), content = new StringBuilder();
        for (ChatCompletionChunk chunk : chunks) {
            for (var ch : chunk.choices()) {
                ch.delta().content().ifPresent(content::append);
                String r = reasoning(ch.delta()._additionalProperties());
                if (r != null) reasoning.append(r);
            }
        }
        assertEquals("Paris is the capital of France.", reasoning.toString());
        assertEquals("It is Paris.", content.toString());
    }

    @Test
    void aToolConversationRendersBackIntoTheTemplate() throws IOException {
        qwen3.model().answer(TWO_CALLS);
        ChatCompletion first = qwen3.client().chat().completions().create(ask(qwen3, "Weather in Paris and London?").build());
        ChatCompletionMessage assistant = first.choices().getFirst().message();
        qwen3.model().answer("Paris is sunny and London is rainy.");
        ChatCompletion second = qwen3.client().chat().completions().create(ask(qwen3, "Weather in Paris and London?")
                .addMessage(assistant)
                .addMessage(ChatCompletionToolMessageParam.builder().toolCallId(call(assistant, 0).id()).content("sunny, 24 °C").build())
                .addMessage(ChatCompletionToolMessageParam.builder().toolCallId(call(assistant, 1).id()).content("rain, 14 °C").build())
                .build());
        assertEquals("Paris is sunny and London is rainy.", second.choices().getFirst().message().content().orElseThrow());
        assertEquals("stop", second.choices().getFirst().finishReason().asString());
        String prompt = qwen3.model().lastPrompt();
        // the arguments string came back as a mapping: the template wrote it with tojson
        assertTrue(prompt.contains("<|im_start|>assistant\nI'll check both cities.\n<tool_call>\n{\"name\": \"get_weather\", "
                + "\"arguments\": {\"location\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", "
                + "\"arguments\": {\"location\": \"London\"}}\n</tool_call><|im_end|>"), prompt);
        assertTrue(prompt.contains("<|im_start|>user\n<tool_response>\nsunny, 24 °C\n</tool_response>\n<tool_response>\n"
                + "rain, 14 °C\n</tool_response><|im_end|>\n<|im_start|>assistant\n"), prompt);
    }

    @Test
    void toolChoiceNoneOffersNoToolAndParsesNoCall() {
        qwen3.model().answer(TWO_CALLS);
        ChatCompletion c = qwen3.client().chat().completions().create(ask(qwen3, "Weather?")
                .toolChoice(ChatCompletionToolChoiceOption.Auto.NONE).build());
        assertEquals(TWO_CALLS, c.choices().getFirst().message().content().orElseThrow());
        assertTrue(c.choices().getFirst().message().toolCalls().isEmpty() || c.choices().getFirst().message().toolCalls().get().isEmpty());
        assertEquals("stop", c.choices().getFirst().finishReason().asString());
        assertFalse(qwen3.model().lastPrompt().contains("<tools>"), qwen3.model().lastPrompt());
    }

    @Test
    void requiredWithoutACallReturnsTheText() {
        qwen3.model().answer("I don't need a tool for that: it's 4.");
        ChatCompletion c = qwen3.client().chat().completions().create(ask(qwen3, "2 + 2?")
                .toolChoice(ChatCompletionToolChoiceOption.Auto.REQUIRED).build());
        assertEquals("I don't need a tool for that: it's 4.", c.choices().getFirst().message().content().orElseThrow());
        assertEquals("stop", c.choices().getFirst().finishReason().asString());
    }

    @Test
    void aNamedChoiceOffersOnlyThatToolAndParsesOnlyItsCalls() throws IOException {
        qwen3.model().answer("<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"timezone\": \"UTC\"}}\n</tool_call>");
        var named = ChatCompletionNamedToolChoice.builder()
                .function(ChatCompletionNamedToolChoice.Function.builder().name("get_time").build()).build();
        ChatCompletion c = qwen3.client().chat().completions().create(ask(qwen3, "Time?").toolChoice(named).build());
        ChatCompletionMessage m = c.choices().getFirst().message();
        assertEquals("get_time", call(m, 0).function().name());
        assertEquals(JSON.readTree("{\"timezone\": \"UTC\"}"), args(call(m, 0)));
        assertTrue(m.content().isEmpty());
        String prompt = qwen3.model().lastPrompt();
        assertTrue(prompt.contains("\"name\": \"get_time\"") && !prompt.contains("\"name\": \"get_weather\""), prompt);

        qwen3.model().answer("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Oslo\"}}\n</tool_call>");
        m = qwen3.client().chat().completions().create(ask(qwen3, "Time?").toolChoice(named).build()).choices().getFirst().message();
        assertTrue(m.toolCalls().isEmpty() || m.toolCalls().get().isEmpty(), "a call of another function is text");
        assertTrue(m.content().orElseThrow().contains("get_weather"));
    }

    @Test
    void parallelToolCallsFalseKeepsTheFirstCall() throws IOException {
        qwen3.model().answer(TWO_CALLS);
        ChatCompletion c = qwen3.client().chat().completions().create(ask(qwen3, "Weather?").parallelToolCalls(false).build());
        ChatCompletionMessage m = c.choices().getFirst().message();
        assertEquals(1, m.toolCalls().orElseThrow().size());
        assertEquals(JSON.readTree("{\"location\": \"Paris\"}"), args(call(m, 0)));
        List<ChatCompletionChunk> chunks = new ArrayList<>();
        ChatCompletion acc = streamed(qwen3, ask(qwen3, "Weather?").parallelToolCalls(false).build(), chunks);
        assertEquals(1, acc.choices().getFirst().message().toolCalls().orElseThrow().size());
    }

    @Test
    void aMalformedCallIsReturnedAsTextNeverAnError() {
        String bad = "Checking.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}\n</tool_call>";
        qwen3.model().answer(bad);
        ChatCompletion c = qwen3.client().chat().completions().create(ask(qwen3, "Weather?").build());
        assertEquals(bad, c.choices().getFirst().message().content().orElseThrow());
        assertEquals("stop", c.choices().getFirst().finishReason().asString());
        ChatCompletion s = streamed(qwen3, ask(qwen3, "Weather?").build(), new ArrayList<>());
        assertEquals(bad, s.choices().getFirst().message().content().orElseThrow());
        // cut by max_tokens inside a call: the text so far, finish_reason length
        qwen3.model().answer(TWO_CALLS);
        c = qwen3.client().chat().completions().create(ask(qwen3, "Weather?").maxCompletionTokens(12).build());
        assertEquals("length", c.choices().getFirst().finishReason().asString());
        assertTrue(c.choices().getFirst().message().content().orElseThrow().contains("<tool_call>"));
    }

    @Test
    void theXmlTemplateGivesTypedArgumentsAndStartsInReasoning() throws IOException {
        String answer = "The user wants tents in stock; search takes a query, a limit and filters.\n</think>\n\n"
                + "Let me search.\n\n<tool_call>\n<function=search>\n<parameter=query>\ntents\n</parameter>\n"
                + "<parameter=limit>\n5\n</parameter>\n<parameter=in_stock>\ntrue\n</parameter>\n"
                + "<parameter=filters>\n{\"brand\": \"Acme\"}\n</parameter>\n</function>\n</tool_call>";
        xml.model().answer(answer);
        ChatCompletion c = xml.client().chat().completions().create(ask(xml, "Tents in stock?").build());
        ChatCompletionMessage m = c.choices().getFirst().message();
        assertEquals("tool_calls", c.choices().getFirst().finishReason().asString());
        assertEquals("Let me search.", m.content().orElseThrow());
        assertEquals("The user wants tents in stock; search takes a query, a limit and filters.", reasoning(m._additionalProperties()));
        assertEquals("search", call(m, 0).function().name());
        assertEquals(JSON.readTree("{\"query\": \"tents\", \"limit\": 5, \"in_stock\": true, \"filters\": {\"brand\": \"Acme\"}}"),
                args(call(m, 0)));
        assertTrue(xml.model().lastPrompt().endsWith("<|im_start|>assistant\n<think>\n"), xml.model().lastPrompt());

        ChatCompletion s = streamed(xml, ask(xml, "Tents in stock?").build(), new ArrayList<>());
        ChatCompletionMessage sm = s.choices().getFirst().message();
        assertEquals("Let me search.", sm.content().orElseThrow());
        assertEquals(args(call(m, 0)), args(call(sm, 0)));

        // the call sent back: its arguments as a mapping, through the template's |items
        xml.model().answer("Found 3.\n</think>\n\nThree tents are in stock.");
        ChatCompletion next = xml.client().chat().completions().create(ask(xml, "Tents in stock?").addMessage(m)
                .addMessage(ChatCompletionToolMessageParam.builder().toolCallId(call(m, 0).id()).content("[3 results]").build()).build());
        assertEquals("Three tents are in stock.", next.choices().getFirst().message().content().orElseThrow());
        assertEquals("Found 3.", reasoning(next.choices().getFirst().message()._additionalProperties()));
        String prompt = xml.model().lastPrompt();
        assertTrue(prompt.contains("<tool_call>\n<function=search>\n<parameter=query>\ntents\n</parameter>\n<parameter=limit>\n5\n"
                + "</parameter>\n"), prompt);
        assertTrue(prompt.contains("<parameter=filters>\n{\"brand\": \"Acme\"}\n</parameter>"), prompt);
        assertTrue(prompt.contains("<tool_response>\n[3 results]\n</tool_response>"), prompt);
    }

    @Test
    void theFormatCanBeOverridden() throws IOException {
        qwen3.model().answer("<tool_call>\n<function=get_time>\n<parameter=timezone>\nUTC\n</parameter>\n</function>\n</tool_call>");
        System.setProperty(ChatOutput.FORMAT_PROPERTY, "xml");
        try {
            ChatCompletionMessage m = qwen3.client().chat().completions().create(ask(qwen3, "Time?").build()).choices().getFirst().message();
            assertEquals(JSON.readTree("{\"timezone\": \"UTC\"}"), args(call(m, 0)));
        } finally {
            System.clearProperty(ChatOutput.FORMAT_PROPERTY);
        }
    }

    HttpResponse<String> post(Served s, String body) throws IOException, InterruptedException {
        return HTTP.send(HttpRequest.newBuilder(URI.create(s.base() + "/v1/chat/completions"))
                .header("Authorization", "Bearer " + TestServer.KEY).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void badToolFieldsAre400sNamingTheField() throws Exception {
        String tools = "\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_time\", \"parameters\": {\"type\": \"object\"}}}]";
        String msgs = "\"model\": \"scripted\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]";
        Map<String, String> cases = Map.of(
                "{" + msgs + ", \"tool_choice\": \"required\"}", "tool_choice",
                "{" + msgs + ", " + tools + ", \"tool_choice\": {\"type\": \"function\", \"function\": {\"name\": \"nope\"}}}", "tool_choice",
                "{" + msgs + ", " + tools + ", \"tool_choice\": \"sometimes\"}", "tool_choice",
                "{" + msgs + ", \"tools\": [{\"type\": \"custom\", \"custom\": {\"name\": \"x\"}}]}", "tools[0].type",
                "{" + msgs + ", \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"a b\"}}]}", "tools[0].function.name",
                "{" + msgs + ", " + tools + ", \"parallel_tool_calls\": \"no\"}", "parallel_tool_calls",
                "{\"model\": \"scripted\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": null, "
                        + "\"tool_calls\": [{\"id\": \"c\", \"type\": \"function\", \"function\": {\"name\": \"get_time\", \"arguments\": \"{oops\"}}]}, "
                        + "{\"role\": \"tool\", \"tool_call_id\": \"c\", \"content\": \"x\"}]}", "messages[1].tool_calls[0].function.arguments",
                "{" + msgs + ", \"functions\": [{\"name\": \"f\"}]}", "functions");
        for (var e : cases.entrySet()) {
            HttpResponse<String> r = post(qwen3, e.getKey());
            assertEquals(400, r.statusCode(), e.getKey() + " -> " + r.body());
            assertEquals(e.getValue(), JSON.readTree(r.body()).path("error").path("param").asText(), r.body());
        }
    }

    @Test
    void theRawBodiesHaveOpenAisShape() throws Exception {
        qwen3.model().answer("<think>\nHmm.\n</think>\n\n" + TWO_CALLS);
        String body = "{\"model\": \"scripted\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], "
                + "\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"get_weather\"}}], \"max_tokens\": 200}";
        JsonNode whole = JSON.readTree(post(qwen3, body).body());
        JsonNode m = whole.at("/choices/0/message");
        assertEquals("Hmm.", m.get("reasoning_content").asText());
        assertEquals("I'll check both cities.", m.get("content").asText());
        assertEquals("function", m.at("/tool_calls/0/type").asText());
        assertTrue(m.at("/tool_calls/1/function/arguments").isTextual());
        // streamed: reasoning deltas, content deltas, then per call a head chunk and an arguments chunk, then finish_reason
        String events = post(qwen3, body.replace("{\"model\"", "{\"stream\": true, \"model\"")).body();
        List<JsonNode> deltas = new ArrayList<>();
        String finish = null;
        for (String line : events.split("\n")) {
            if (!line.startsWith("data: {")) continue;
            JsonNode chunk = JSON.readTree(line.substring(6));
            deltas.add(chunk.at("/choices/0/delta"));
            if (chunk.at("/choices/0/finish_reason").isTextual()) finish = chunk.at("/choices/0/finish_reason").asText();
        }
        assertEquals("tool_calls", finish);
        List<String> heads = new ArrayList<>();
        for (JsonNode d : deltas) {
            JsonNode t = d.path("tool_calls").path(0);
            if (t.has("id")) {
                assertEquals("function", t.get("type").asText());
                assertEquals("", t.at("/function/arguments").asText());
                heads.add(t.get("index").asText() + ":" + t.at("/function/name").asText());
            }
        }
        assertEquals(List.of("0:get_weather", "1:get_weather"), heads);
    }
}
