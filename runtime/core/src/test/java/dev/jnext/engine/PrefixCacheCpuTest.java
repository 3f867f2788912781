package dev.jnext.engine;

import dev.jnext.backend.DeviceChoice;
import dev.jnext.backend.PrefixCacheOptions;
import dev.jnext.backend.PrefixCacheStats;
import dev.jnext.backend.SamplingParams;
import dev.jnext.model.LayerType;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.TestCheckpoints;
import dev.jnext.model.TinyModels;
import dev.jnext.tokenizer.TestTokenizers;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Prefix caching on the CPU backend changes no bit of any result: requests sharing prefixes of mixed lengths, resumed
 * from cached snapshots, give the tokens and log-probabilities of a cold run with the cache off, bitwise.
 */
@Timeout(300)
class PrefixCacheCpuTest {
    static Path model;
    static int[] system;     // a shared "system prompt" of 200 tokens
    static int[] turn1;      // system + a user message: 270 tokens
    static Map<String, int[]> prompts = new HashMap<>();

    @BeforeAll
    static void setUp() {
        model = TestCheckpoints.tinyQwen();
        system = TinyModels.ids(200, 151_643, 1);
        turn1 = concat(system, TinyModels.ids(70, 151_643, 2));
        prompts.put("turn1", turn1);
        prompts.put("sibling", concat(system, TinyModels.ids(33, 151_643, 3)));                        // 233
        prompts.put("turn2", concat(turn1, TinyModels.ids(65, 151_643, 4)));                            // 335: the next turn
        prompts.put("repeat", turn1.clone());                                                           // the same prompt again
        prompts.put("branch100", concat(Arrays.copyOf(system, 100), TinyModels.ids(150, 151_643, 5)));  // leaves before 128
        prompts.put("branch150", concat(Arrays.copyOf(system, 150), TinyModels.ids(40, 151_643, 6)));   // mid-interval
        prompts.put("oneLeft", Arrays.copyOf(turn1, 129));   // resumes at 128: a one-token prompt chunk
        prompts.put("aligned", Arrays.copyOf(turn1, 256));   // a prompt of aligned length
        prompts.put("short", Arrays.copyOf(system, 3));
        prompts.put("fresh", TinyModels.ids(190, 151_643, 7));
    }

    private static int[] concat(int[] a, int[] b) {
        int[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    /** Cache on, a snapshot every 128 tokens (2 GDN chunks) so that short prompts have several. */
    private static PrefixCacheOptions cache() {
        return PrefixCacheOptions.on().withSnapshotInterval(128);
    }

    private static EngineOptions options(int slots, int stepTokens, PrefixCacheOptions cache) {
        return EngineOptions.defaults().withDevice(DeviceChoice.CPU).withMaxSequences(slots).withMaxStepTokens(stepTokens)
                .withTokenizer(TestTokenizers.qwen3Dir()).withPrefixCache(cache);
    }

    private static GenerationRequest request(String prompt, int i) {
        SamplingParams sampling = i % 3 == 1 ? new SamplingParams(0.9f, 40, 0.95f, 0, 1.3f, 0.2f, 11 + i) // penalties see the prompt
                : SamplingParams.greedy();
        return GenerationRequest.tokens(prompts.get(prompt)).sampling(sampling).maxTokens(3 + i % 4).topLogprobs(2).build();
    }

    private static void assertBitwise(GenerationResult cold, GenerationResult warm, String what) {
        assertArrayEquals(cold.tokenIds(), warm.tokenIds(), what);
        assertEquals(cold.finishReason(), warm.finishReason(), what);
        for (int t = 0; t < cold.tokens().size(); t++) {
            GeneratedToken a = cold.tokens().get(t), b = warm.tokens().get(t);
            assertEquals(Float.floatToIntBits(a.logprob()), Float.floatToIntBits(b.logprob()), what + " token " + t);
            assertArrayEquals(a.topIds(), b.topIds(), what + " token " + t);
            for (int k = 0; k < a.topIds().length; k++) {
                assertEquals(Float.floatToIntBits(a.topLogprobs()[k]), Float.floatToIntBits(b.topLogprobs()[k]), what + " token " + t);
            }
        }
    }

    /** The cold reference: each request alone, whole prompts, no cache. */
    private static List<GenerationResult> cold(List<GenerationRequest> requests) {
        List<GenerationResult> out = new ArrayList<>();
        try (Engine engine = Engine.open(model, options(1, 8192, PrefixCacheOptions.off()))) {
            for (GenerationRequest r : requests) out.add(engine.generate(r));
            assertEquals(PrefixCacheStats.DISABLED, engine.stats().prefixCache());
        }
        return out;
    }

    @Test
    void sixteenRequestsSharingPrefixesGiveTheBitsOfAColdRun() {
        List<String> names = List.of("turn1", "sibling", "turn2", "repeat", "branch100", "branch150", "oneLeft", "aligned",
                "short", "fresh", "turn2", "sibling", "branch150", "repeat", "aligned", "turn1");
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i = 0; i < names.size(); i++) requests.add(request(names.get(i), i));
        List<GenerationResult> cold = cold(requests);
        for (int slots : new int[]{1, 4}) {
            try (Engine engine = Engine.open(model, options(slots, 100, cache()))) {
                // 100-token steps: prompts cut into 64-token chunks beside other requests' decodes and chunks
                engine.generate(requests.get(0)); // a warm cache for the first wave
                List<GenerationHandle> handles = new ArrayList<>();
                for (GenerationRequest r : requests) handles.add(engine.submit(r));
                int cached = 0;
                for (int i = 0; i < requests.size(); i++) {
                    GenerationResult warm = handles.get(i).await();
                    assertBitwise(cold.get(i), warm, slots + " slots, request " + i + " (" + names.get(i) + ", "
                            + warm.cachedPromptTokens() + " cached)");
                    assertEquals(0, warm.cachedPromptTokens() % 64, "resumed at a multiple of the GDN chunk");
                    assertTrue(warm.cachedPromptTokens() < warm.promptTokens());
                    cached += warm.cachedPromptTokens();
                }
                PrefixCacheStats s = engine.stats().prefixCache();
                assertTrue(s.enabled());
                assertTrue(s.hits() >= 8, slots + " slots: " + s);
                assertEquals(17, s.hits() + s.misses());
                assertEquals(cached, s.cachedTokens());
                assertTrue(s.snapshots() > 0 && s.storedTokens() > 0);
            }
        }
    }

    @Test
    void aBranchInTheMiddleOfASnapshotIntervalResumesFromTheSnapshotBeforeIt() {
        List<String> names = List.of("turn1", "branch150", "branch100", "turn2", "repeat", "aligned", "oneLeft", "sibling");
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i = 0; i < names.size(); i++) requests.add(request(names.get(i), i));
        List<GenerationResult> cold = cold(requests);
        try (Engine engine = Engine.open(model, options(1, 8192, cache()))) {
            List<GenerationResult> warm = new ArrayList<>();
            for (GenerationRequest r : requests) warm.add(engine.generate(r));
            for (int i = 0; i < names.size(); i++) assertBitwise(cold.get(i), warm.get(i), names.get(i));
            // turn1 (270 tokens) leaves snapshots at 128 (the interval) and 256 (its last aligned position)
            assertEquals(0, warm.get(0).cachedPromptTokens());
            // branch150 leaves turn1's path at 150, between the snapshots at 128 and 256: it resumes at 128
            // (and leaves a snapshot at the branch point's aligned position, 128, which is there already)
            assertEquals(128, warm.get(1).cachedPromptTokens());
            // branch100 leaves it at 100, before the first snapshot: nothing to resume from
            assertEquals(0, warm.get(2).cachedPromptTokens());
            // the next turn of the chat resumes at turn1's end snapshot; the same prompt again too
            assertEquals(256, warm.get(3).cachedPromptTokens());
            assertEquals(256, warm.get(4).cachedPromptTokens());
            // a prompt of exactly 256 tokens computes its last token itself: it resumes at the snapshot before
            assertEquals(128, warm.get(5).cachedPromptTokens());
            // 129 tokens: resumes at 128 and computes one prompt token (run as a prompt chunk, bitwise as in the cold run)
            assertEquals(128, warm.get(6).cachedPromptTokens());
            // the sibling shares the 200-token system prompt, which the tree now holds with snapshots at 64 (branch100's
            // branch point), 128 and 192 (the aligned prompt's end): it resumes at 192
            assertEquals(192, warm.get(7).cachedPromptTokens());
            PrefixCacheStats s = engine.stats().prefixCache();
            assertEquals(6, s.hits());
            assertEquals(2, s.misses());
            assertEquals(128 + 256 + 256 + 128 + 128 + 192, s.cachedTokens());
        }
    }

    @Test
    void underBudgetPressureResultsStayExact() {
        ModelConfig c = TestCheckpoints.tinyQwenConfig();
        long snapshot = 0, kvPerToken = 0;
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            if (c.layerType(l) == LayerType.LINEAR_ATTENTION) {
                snapshot += 4L * ((long) c.convDim() * (c.linearConvKernelDim() - 1)
                        + (long) c.linearNumValueHeads() * c.linearKeyHeadDim() * c.linearValueHeadDim());
            } else {
                kvPerToken += 4L * 2 * c.numKeyValueHeads() * c.headDim();
            }
        }
        // room for 3 snapshots and 700 tokens of KV: 4 running requests keep evicting each other's entries
        PrefixCacheOptions tight = cache().withSnapshotBytes(3 * snapshot).withKvBytes(700 * kvPerToken);
        List<String> names = List.of("turn1", "turn2", "fresh", "sibling", "branch150", "repeat", "aligned", "branch100",
                "turn2", "oneLeft", "fresh", "turn1");
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i = 0; i < names.size(); i++) requests.add(request(names.get(i), i));
        List<GenerationResult> cold = cold(requests);
        try (Engine engine = Engine.open(model, options(4, 100, tight))) {
            List<GenerationHandle> handles = new ArrayList<>();
            for (GenerationRequest r : requests) handles.add(engine.submit(r));
            for (int i = 0; i < requests.size(); i++) assertBitwise(cold.get(i), handles.get(i).await(), names.get(i));
            PrefixCacheStats s = engine.stats().prefixCache();
            assertTrue(s.evictions() > 0, s.toString());
            assertTrue(s.snapshotBytes() <= s.snapshotBudgetBytes() && s.kvBytes() <= s.kvBudgetBytes(), s.toString());
        }
    }

    @Test
    void aOneTokenLastPromptChunkGivesTheBitsOfTheUncutPrompt() {
        // 129 tokens fed 64 at a time: the last chunk is one token, run through the chunked delta rule as a prompt chunk
        GenerationRequest r = request("oneLeft", 0);
        GenerationResult whole = cold(List.of(r)).getFirst();
        try (Engine engine = Engine.open(model, options(1, 8192, PrefixCacheOptions.off()).withMaxPrefillChunk(64))) {
            assertBitwise(whole, engine.generate(r), "129 tokens in chunks of 64, 64, 1");
        }
    }
}
