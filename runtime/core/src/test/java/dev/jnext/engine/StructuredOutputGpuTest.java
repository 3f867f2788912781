package dev.jnext.engine;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jnext.backend.DeviceChoice;
import dev.jnext.backend.KvBudget;
import dev.jnext.backend.SamplingParams;
import dev.jnext.model.DType;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.SyntheticCheckpoint;
import dev.jnext.structured.SchemaCheck;
import dev.jnext.tokenizer.TestTokenizers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Structured output on the CUDA backend (issue 18.3): the masks computed on the host are applied on the device before
 * the sampler, so whatever the random weights prefer, a greedy or sampled answer is a document of the schema (or, cut by
 * max tokens, a prefix of one), batched or alone; log-probabilities stay those of the raw logits.
 */
@Tag("gpu")
class StructuredOutputGpuTest {
    static Engine engine;

    @BeforeAll
    static void open() throws Exception {
        System.setProperty(dev.jnext.cuda.CudaBackend.TOKEN_MASKS_PROPERTY, "true"); // the path this test verifies
        ModelConfig c = SyntheticCheckpoint.preset("gpu-small", 4, null, DType.BF16);
        Path dir = Files.createTempDirectory("jnext-structured-cuda");
        Files.delete(dir);
        SyntheticCheckpoint.write(dir, new SyntheticCheckpoint.Options(c, DType.BF16, 5, 1L << 30, SyntheticCheckpoint.ExpertLayout.HUB,
                5f, SyntheticCheckpoint.ConfigStyle.V5), b -> {});
        engine = Engine.open(dir, EngineOptions.defaults().withDevice(DeviceChoice.CUDA).withMaxSequences(4).withMaxStepTokens(512)
                .withKvBudget(new KvBudget.Tokens(16 * 1024)).withTokenizer(TestTokenizers.qwen3Dir()));
    }

    @AfterAll
    static void close() {
        if (engine != null) engine.close();
    }

    // plain text prompts: the GPU host's jlinked runtime has no java.desktop, which the chat template engine needs
    private static GenerationRequest request(ResponseFormat format, SamplingParams sampling, int maxTokens) {
        return GenerationRequest.text("Describe the item as JSON.\n").sampling(sampling).maxTokens(maxTokens)
                .responseFormat(format).build();
    }

    @Test
    void answersAreDocumentsOfTheSchemaBatchedAsAlone() throws Exception {
        List<GenerationRequest> requests = new ArrayList<>();
        requests.add(request(ResponseFormat.jsonSchema(StructuredOutputCpuTest.SCHEMA), SamplingParams.greedy(), 160));
        for (long seed = 1; seed <= 5; seed++) {
            requests.add(request(ResponseFormat.jsonSchema(StructuredOutputCpuTest.SCHEMA),
                    SamplingParams.builder().temperature(1f).seed(seed).build(), 160));
        }
        List<GenerationHandle> handles = new ArrayList<>();
        for (GenerationRequest r : requests) handles.add(engine.submit(r));
        for (int i = 0; i < handles.size(); i++) {
            GenerationResult r = handles.get(i).await();
            if (r.finishReason() == FinishReason.EOS) {
                assertEquals(List.of(), SchemaCheck.violations(StructuredOutputCpuTest.SCHEMA, r.text()), r.text());
            } else {
                assertEquals(FinishReason.MAX_TOKENS, r.finishReason());
                assertTrue(r.text().strip().startsWith("{"), "request " + i + ": a prefix of a document: " + r.text());
            }
            // greedy alone: the same first token (a batch runs other GEMM shapes, so later tokens may fork where two
            // logits sit within bf16 noise, as EngineCudaGpuTest measures), and a document of the schema too
            if (i == 0) {
                GenerationResult alone = engine.generate(requests.get(0));
                assertEquals(alone.tokenIds()[0], r.tokenIds()[0], "greedy: the first token batched = alone");
                if (alone.finishReason() == FinishReason.EOS) {
                    assertEquals(List.of(), SchemaCheck.violations(StructuredOutputCpuTest.SCHEMA, alone.text()), alone.text());
                }
            }
        }
    }

    @Test
    void jsonObjectAndRawLogprobs() throws Exception {
        GenerationResult r = engine.generate(request(ResponseFormat.jsonObject(), SamplingParams.greedy(), 120));
        if (r.finishReason() == FinishReason.EOS) assertTrue(new ObjectMapper().readTree(r.text()).isObject(), r.text());
        else assertTrue(r.text().strip().startsWith("{"), r.text());
        GenerationResult free = engine.generate(request(ResponseFormat.TEXT, SamplingParams.greedy(), 12));
        GenerationResult constrained = engine.generate(request(ResponseFormat.jsonObject(), SamplingParams.greedy(), 12));
        assertTrue(!free.text().equals(constrained.text()), "the mask changes what greedy picks: " + free.text());
        GenerationResult withLogprobs = engine.generate(GenerationRequest.text("x").greedy().maxTokens(4)
                .topLogprobs(3).responseFormat(ResponseFormat.jsonObject()).build());
        for (GeneratedToken t : withLogprobs.tokens()) {
            assertTrue(Float.isFinite(t.logprob()) && t.logprob() <= t.topLogprobs()[0], "raw log-probabilities: " + t);
        }
    }
}
