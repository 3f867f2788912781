package dev.jnext.engine;

import dev.jnext.backend.DeviceChoice;

import dev.jnext.backend.ModelBackend;
import dev.jnext.backend.SamplingParams;
import dev.jnext.cpu.CpuBackend;

import dev.jnext.model.TestCheckpoints;
import dev.jnext.model.TinyModels;
import dev.jnext.tokenizer.TestTokenizers;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The engine on the CPU backend with a random tiny checkpoint: continuous batching changes no bit of any result. */
@Timeout(120)
class EngineCpuTest {
    static Path model;
    static List<GenerationRequest> requests;

    @BeforeAll
    static void setUp() {
        model = TestCheckpoints.tinyQwen();
        requests = new ArrayList<>();
        int[] lengths = {3, 200, 70, 129, 17, 64};
        for (int i = 0; i < lengths.length; i++) {
            int[] prompt = TinyModels.ids(lengths[i], 151_643, 100 + i); // ordinary tokens, no special ones
            SamplingParams sampling = i % 3 == 2 ? new SamplingParams(0.9f, 40, 0.95f, 0, 1.1f, 0.2f, 7 + i)
                    : SamplingParams.greedy();
            requests.add(GenerationRequest.tokens(prompt).sampling(sampling).maxTokens(6 + 2 * i).topLogprobs(3).build());
        }
    }

    private static EngineOptions options(int slots, int stepTokens) {
        return EngineOptions.defaults().withDevice(DeviceChoice.CPU).withMaxSequences(slots)
                .withMaxStepTokens(stepTokens).withTokenizer(TestTokenizers.qwen3Dir());
    }

    @Test
    void batchedResultsAreBitwiseThoseOfEachRequestAlone() {
        List<GenerationResult> alone = new ArrayList<>();
        try (Engine engine = Engine.open(model, options(1, 8192))) {
            for (GenerationRequest r : requests) alone.add(engine.generate(r));
        }
        // 3 slots for 6 requests (queueing), 100-token steps: prompts cut into 64-token chunks beside other decodes
        List<GenerationHandle> handles = new ArrayList<>();
        try (Engine engine = Engine.open(model, options(3, 100))) {
            for (GenerationRequest r : requests) handles.add(engine.submit(r));
            for (int i = 0; i < requests.size(); i++) {
                GenerationResult batched = handles.get(i).await();
                GenerationResult solo = alone.get(i);
                assertArrayEquals(solo.tokenIds(), batched.tokenIds(), "request " + i);
                assertEquals(solo.text(), batched.text(), "request " + i);
                assertEquals(solo.finishReason(), batched.finishReason());
                for (int t = 0; t < solo.tokens().size(); t++) {
                    GeneratedToken a = solo.tokens().get(t), b = batched.tokens().get(t);
                    assertEquals(Float.floatToIntBits(a.logprob()), Float.floatToIntBits(b.logprob()), "request " + i + " token " + t);
                    assertArrayEquals(a.topIds(), b.topIds());
                    assertArrayEquals(a.topLogprobs(), b.topLogprobs());
                }
            }
            assertTrue(engine.stats().steps() > 0);
            assertEquals(0, engine.stats().running() + engine.stats().queued());
        }
    }

    @Test
    void logprobsAreALogSoftmaxAndGreedyPicksTheMostLikely() {
        try (Engine engine = Engine.open(model, options(2, 8192))) {
            GenerationResult r = engine.generate(requests.get(1));
            for (GeneratedToken t : r.tokens()) {
                assertEquals(3, t.topIds().length);
                assertEquals(t.id(), t.topIds()[0], "greedy takes the most likely token");
                assertEquals(t.logprob(), t.topLogprobs()[0]);
                assertTrue(t.topLogprobs()[0] >= t.topLogprobs()[1] && t.topLogprobs()[1] >= t.topLogprobs()[2]);
                assertTrue(t.logprob() <= 0 && t.logprob() > -100, "log-probability " + t.logprob());
            }
            assertEquals(dev.jnext.backend.DeviceChoice.CPU, engine.device());
            assertEquals("cpu", engine.deviceName());
            assertEquals(List.of(151645), List.copyOf(engine.eosTokenIds())); // config.json's, = the tokenizer's eos_token
        }
    }

    @Test
    void theCudaDeviceWithoutADriverIsRefusedClearly() {
        org.junit.jupiter.api.Assumptions.assumeFalse(dev.jnext.gpu.Cuda.driverPresent(), "a CUDA driver is present");
        var e = assertThrows(dev.jnext.JnextException.class,
                () -> Engine.open(model, options(1, 64).withDevice(DeviceChoice.CUDA)));
        assertTrue(e.getMessage().startsWith("no CUDA driver found"), e.getMessage());
    }

    @Test
    void logSoftmaxOfKnownLogits() {
        float[] logits = {1f, 3f, 3f, -2f, 0.5f};
        ModelBackend.StepOutput out = CpuBackend.logprobs(logits, 4, 2, 3);
        double z = Math.log(Math.exp(1) + 2 * Math.exp(3) + Math.exp(-2));
        assertEquals(3 - z, out.logprob(), 1e-6);
        assertArrayEquals(new int[]{1, 2, 0}, out.topIds(), "ties keep the lower id first; id 4 is past the limit");
        assertEquals(1 - z, out.topLogprobs()[2], 1e-6);
    }
}
