package dev.jnext.engine;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jnext.JnextException;
import dev.jnext.backend.DeviceChoice;
import dev.jnext.backend.SamplingParams;
import dev.jnext.model.TestCheckpoints;
import dev.jnext.structured.SchemaCheck;
import dev.jnext.tokenizer.ChatMessage;
import dev.jnext.tokenizer.TestTokenizers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Structured output end to end on the CPU backend with the random tiny checkpoint: whatever the random weights
 * prefer, the answer is a JSON document of the schema, for several seeds, greedy and sampled, alone and batched.
 */
@Timeout(300)
class StructuredOutputCpuTest {
    static final String SCHEMA = """
            {"type": "object", "additionalProperties": false, "required": ["id", "ok", "level", "tags"],
             "properties": {
               "id": {"type": "integer"},
               "ok": {"type": "boolean"},
               "level": {"enum": ["low", "mid", "high"]},
               "tags": {"type": "array", "items": {"enum": ["a", "b", 3]}, "minItems": 1, "maxItems": 3},
               "ratio": {"type": ["number", "null"]},
               "inner": {"type": "object", "properties": {"x": {"const": true}}, "required": ["x"], "additionalProperties": false}
             }}""";
    static Engine engine;

    @BeforeAll
    static void open() {
        engine = Engine.open(TestCheckpoints.tinyQwen(), EngineOptions.defaults().withDevice(DeviceChoice.CPU)
                .withMaxSequences(4).withMaxStepTokens(512).withTokenizer(TestTokenizers.qwen3Dir()));
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    private static GenerationRequest request(ResponseFormat format, SamplingParams sampling, int maxTokens) {
        return GenerationRequest.chat(List.of(ChatMessage.user("Describe the item as JSON.")))
                .sampling(sampling).maxTokens(maxTokens).responseFormat(format).build();
    }

    @Test
    void theAnswerIsADocumentOfTheSchemaForEverySeed() throws Exception {
        List<GenerationRequest> requests = new ArrayList<>();
        requests.add(request(ResponseFormat.jsonSchema(SCHEMA), SamplingParams.greedy(), 160));
        for (long seed = 1; seed <= 5; seed++) {
            requests.add(request(ResponseFormat.jsonSchema(SCHEMA), SamplingParams.builder().temperature(1f).seed(seed).build(), 160));
        }
        List<GenerationHandle> handles = new ArrayList<>();
        for (GenerationRequest r : requests) handles.add(engine.submit(r)); // 6 requests, 4 slots: batched and queued
        for (int i = 0; i < handles.size(); i++) {
            GenerationResult r = handles.get(i).await();
            assertEquals(FinishReason.EOS, r.finishReason(), "request " + i + " ended its document: " + r.text());
            assertEquals(List.of(), SchemaCheck.violations(SCHEMA, r.text()), r.text());
            // alone, the same answer: the mask belongs to the sequence, not to the batch
            if (i < 2) assertArrayEquals(engine.generate(requests.get(i)).tokenIds(), r.tokenIds(), "request " + i);
        }
    }

    @Test
    void jsonObjectGivesAJsonObject() throws Exception {
        ObjectMapper json = new ObjectMapper();
        for (long seed = 1; seed <= 2; seed++) {
            GenerationResult r = engine.generate(request(ResponseFormat.jsonObject(),
                    SamplingParams.builder().temperature(0.8f).topP(0.9f).seed(seed).build(), 120));
            if (r.finishReason() == FinishReason.EOS) {
                assertTrue(json.readTree(r.text()).isObject(), r.text());
            } else { // random weights may write a long string: cut by max tokens, it is still a prefix of a document
                assertEquals(FinishReason.MAX_TOKENS, r.finishReason());
                assertTrue(r.text().strip().startsWith("{") || r.text().isBlank(), r.text());
            }
        }
        GenerationResult free = engine.generate(request(ResponseFormat.TEXT, SamplingParams.greedy(), 12));
        GenerationResult constrained = engine.generate(request(ResponseFormat.jsonObject(), SamplingParams.greedy(), 12));
        assertTrue(!free.text().equals(constrained.text()), "the mask changes what greedy picks: " + free.text());
        // log-probabilities are those of the raw logits: the sampled token's is at most the most likely one's
        GenerationResult withLogprobs = engine.generate(GenerationRequest.chat(List.of(ChatMessage.user("x"))).greedy().maxTokens(4)
                .topLogprobs(3).responseFormat(ResponseFormat.jsonObject()).build());
        for (GeneratedToken t : withLogprobs.tokens()) assertTrue(t.logprob() <= t.topLogprobs()[0]);
    }

    @Test
    void requestsThatCannotBeHonouredAreRefused() {
        var e = assertThrows(JnextException.class, () -> GenerationRequest.text("x").ignoreEos(true)
                .responseFormat(ResponseFormat.jsonObject()).build());
        assertTrue(e.getMessage().contains("end-of-sequence"), e.getMessage());
        var unsupported = assertThrows(JnextException.class, () -> ResponseFormat.jsonSchema("{\"type\":\"string\",\"pattern\":\"a+\"}"));
        assertTrue(unsupported.getMessage().contains("\"pattern\" at / is not supported"), unsupported.getMessage());
        var noToken = assertThrows(JnextException.class, () -> engine.submit(GenerationRequest.text("x")
                .responseFormat(ResponseFormat.jsonObject().startingAfter("</nothink>")).build()));
        assertTrue(noToken.getMessage().contains("</nothink>"), noToken.getMessage());
    }

    @Test
    void theConstraintCanStartAfterTheReasoning() {
        // a thinking answer: free text until </think>, then the document (random weights rarely write </think> by
        // themselves, so the prompt's own answer is forced through stop ids: here only that the free part is free)
        GenerationResult r = engine.generate(request(ResponseFormat.jsonObject().startingAfter("</think>"), SamplingParams.greedy(), 8));
        GenerationResult free = engine.generate(request(ResponseFormat.TEXT, SamplingParams.greedy(), 8));
        assertEquals(free.text(), r.text(), "before </think> nothing is masked");
    }
}
