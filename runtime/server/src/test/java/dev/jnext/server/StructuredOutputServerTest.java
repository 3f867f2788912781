package dev.jnext.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.errors.BadRequestException;
import com.openai.models.ResponseFormatJsonObject;
import com.openai.models.ResponseFormatJsonSchema;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.StructuredChatCompletion;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import dev.jnext.structured.SchemaCheck;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * response_format json_object and json_schema through the official OpenAI Java SDK, over the random tiny checkpoint on
 * the CPU backend: whatever the random weights prefer, the content is a document of the schema (the SDK's own
 * structured outputs, from a Java class, included); schemas outside the subset are 400s naming the keyword.
 */
@Timeout(300)
class StructuredOutputServerTest {
    static final String SCHEMA = """
            {"type": "object", "additionalProperties": false, "required": ["level", "ok", "count", "tags"],
             "properties": {"level": {"type": "string", "enum": ["low", "mid", "high"]}, "ok": {"type": "boolean"},
                            "count": {"type": "integer"},
                            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 1, "maxItems": 3}}}""";
    static final ObjectMapper JSON = new ObjectMapper();
    static TestServer server;
    static OpenAIClient client;

    @BeforeAll
    static void start() {
        server = TestServer.start(4, 64, TestServer.options());
        client = OpenAIOkHttpClient.builder().baseUrl(server.base + "/v1").apiKey(TestServer.KEY).maxRetries(0)
                .timeout(Duration.ofSeconds(120)).build();
    }

    @AfterAll
    static void stop() {
        client.close();
        server.close();
    }

    private static ResponseFormatJsonSchema schemaFormat(String schema) throws Exception {
        ResponseFormatJsonSchema.JsonSchema.Schema.Builder s = ResponseFormatJsonSchema.JsonSchema.Schema.builder();
        JSON.readTree(schema).properties().forEach(e -> s.putAdditionalProperty(e.getKey(), JsonValue.from(JSON.convertValue(e.getValue(), Object.class))));
        return ResponseFormatJsonSchema.builder().jsonSchema(ResponseFormatJsonSchema.JsonSchema.builder().name("item")
                .schema(s.build()).strict(true).build()).build();
    }

    private static ChatCompletionCreateParams.Builder chat(int maxTokens) {
        return ChatCompletionCreateParams.builder().model(server.model()).addUserMessage("Describe the item as JSON.")
                .maxCompletionTokens(maxTokens).temperature(0.0);
    }

    @Test
    void jsonSchemaIsEnforcedWholeAndStreamed() throws Exception {
        ChatCompletion c = client.chat().completions().create(chat(120).responseFormat(schemaFormat(SCHEMA)).build());
        String content = c.choices().getFirst().message().content().orElseThrow();
        assertEquals("stop", c.choices().getFirst().finishReason().asString(), content);
        assertEquals(List.of(), SchemaCheck.violations(SCHEMA, content), content);

        StringBuilder streamed = new StringBuilder();
        try (StreamResponse<ChatCompletionChunk> stream = client.chat().completions()
                .createStreaming(chat(120).responseFormat(schemaFormat(SCHEMA)).build())) {
            stream.stream().forEach(chunk -> chunk.choices().forEach(ch -> ch.delta().content().ifPresent(streamed::append)));
        }
        assertEquals(content, streamed.toString(), "streamed greedy = whole greedy");

        for (double seed = 1; seed <= 3; seed++) { // sampled: other documents, all of the schema
            ChatCompletion s = client.chat().completions().create(chat(120).temperature(1.0).seed((long) seed)
                    .responseFormat(schemaFormat(SCHEMA)).build());
            String text = s.choices().getFirst().message().content().orElseThrow();
            assertEquals("stop", s.choices().getFirst().finishReason().asString(), text);
            assertEquals(List.of(), SchemaCheck.violations(SCHEMA, text), text);
        }
    }

    /** A class the SDK turns into a strict JSON schema (victools) and parses the answer back into. */
    public static class Reading {
        public Level level;
        public boolean ok;
        public List<Level> history;

        public enum Level { LOW, HIGH }
    }

    @Test
    void theSdksStructuredOutputsFromAClassWork() {
        StructuredChatCompletion<Reading> c = client.chat().completions().create(ChatCompletionCreateParams.builder()
                .model(server.model()).addUserMessage("A reading, please.").maxCompletionTokens(200).temperature(0.0)
                .responseFormat(Reading.class).build());
        var choice = c.choices().getFirst();
        assertEquals("stop", choice.finishReason().asString());
        Reading r = choice.message().content().orElseThrow(); // the SDK parsed the content into the class
        assertTrue(r.level != null && r.history != null);
    }

    @Test
    void jsonObjectGivesAnObjectAndCompletionsTakeResponseFormatToo() throws Exception {
        ChatCompletion c = client.chat().completions().create(chat(60).responseFormat(ResponseFormatJsonObject.builder().build()).build());
        String content = c.choices().getFirst().message().content().orElseThrow();
        if (c.choices().getFirst().finishReason().asString().equals("stop")) assertTrue(JSON.readTree(content).isObject(), content);
        else assertTrue(content.strip().startsWith("{"), content); // cut by max tokens inside a long string

        Completion done = client.completions().create(CompletionCreateParams.builder().model(server.model()).prompt("Item:")
                .maxTokens(120).temperature(0.0).putAdditionalBodyProperty("response_format",
                        JsonValue.from(Map.of("type", "json_schema", "json_schema", Map.of("name", "item", "schema", JSON.readValue(SCHEMA, Map.class)))))
                .build());
        String text = done.choices().getFirst().text();
        assertEquals("stop", done.choices().getFirst().finishReason().asString(), text);
        assertEquals(List.of(), SchemaCheck.violations(SCHEMA, text), text);
    }

    /** A template that opens a think block: the reasoning stays free, the document is constrained after </think>. */
    @Test
    void aThinkBlockOpenedByTheTemplateLeavesTheReasoningFree() throws Exception {
        java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("jnext-think-tokenizer");
        for (String f : List.of("tokenizer.json", "tokenizer_config.json")) {
            java.nio.file.Files.copy(dev.jnext.tokenizer.TestTokenizers.qwen3Dir().resolve(f), dir.resolve(f));
        }
        try (var in = StructuredOutputServerTest.class.getResourceAsStream("/dev/jnext/server/tools/xml-thinking-template.jinja")) {
            java.nio.file.Files.write(dir.resolve("chat_template.jinja"), in.readAllBytes());
        }
        try (dev.jnext.engine.Engine engine = dev.jnext.engine.Engine.open(dev.jnext.model.TestCheckpoints.tinyQwen(),
                dev.jnext.engine.EngineOptions.defaults().withDevice(dev.jnext.backend.DeviceChoice.CPU).withMaxSequences(1)
                        .withTokenizer(dir))) {
            String body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":6,"
                    + "\"temperature\":0,\"response_format\":{\"type\":\"json_object\"}}";
            OpenAiRequest request = OpenAiRequest.parse(body.getBytes(java.nio.charset.StandardCharsets.UTF_8),
                    OpenAiRequest.Endpoint.CHAT, engine.generationConfig(), 8);
            ChatOutput output = ChatOutput.prepare(engine, request);
            assertEquals("</think>", output.generation().responseFormat().startAfter());
            var free = engine.generate(output.generation().withResponseFormat(dev.jnext.engine.ResponseFormat.TEXT));
            assertEquals(free.text(), engine.generate(output.generation()).text(), "before </think> nothing is masked");
        } finally {
            try (var files = java.nio.file.Files.walk(dir)) {
                files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
            }
        }
    }

    @Test
    void schemasOutsideTheSubsetAndImpossibleCombinationsAreRefused() throws Exception {
        var e = assertThrows(BadRequestException.class, () -> client.chat().completions().create(chat(8)
                .responseFormat(schemaFormat("{\"type\":\"object\",\"properties\":{\"mail\":{\"type\":\"string\",\"format\":\"email\"}}}")).build()));
        assertTrue(e.getMessage().contains("\"format\" at /properties/mail is not supported"), e.getMessage());

        String chat = "{\"model\":\"" + server.model() + "\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],";
        Object[][] cases = {
                {"\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\",\"schema\":{\"anyOf\":[]}}}}",
                        "response_format.json_schema.schema", "\"anyOf\" at / is not supported"},
                {"\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\"}}}", "response_format.json_schema.schema", "is required"},
                {"\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{\"enum\":[]}}}}", "response_format.json_schema.schema", "allows no value"},
                {"\"response_format\":{\"type\":\"regex\"}}", "response_format.type", "got \"regex\""},
                {"\"response_format\":\"json\"}", "response_format", "must be an object"},
                {"\"response_format\":{\"type\":\"json_object\"},\"ignore_eos\":true}", "ignore_eos", "cannot be combined"},
                {"\"response_format\":{\"type\":\"json_object\"},\"tool_choice\":\"required\",\"tools\":[{\"type\":\"function\","
                        + "\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}]}", "tool_choice", "cannot be combined"},
        };
        for (Object[] c : cases) {
            HttpResponse<String> r = server.post("/v1/chat/completions", chat + c[0]);
            assertEquals(400, r.statusCode(), r.body());
            JsonNode error = JSON.readTree(r.body()).get("error");
            assertEquals(c[1], error.get("param").asText(), r.body());
            assertTrue(error.get("message").asText().contains((String) c[2]), r.body());
        }
        // text is free text, as before
        HttpResponse<String> text = server.post("/v1/chat/completions", chat + "\"max_tokens\":2,\"response_format\":{\"type\":\"text\"}}");
        assertEquals(200, text.statusCode(), text.body());
    }
}
