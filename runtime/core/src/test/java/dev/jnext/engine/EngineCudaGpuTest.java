package dev.jnext.engine;

import dev.jnext.backend.KvBudget;
import dev.jnext.backend.PrefillMode;
import dev.jnext.backend.DeviceChoice;

import dev.jnext.backend.SamplingParams;

import dev.jnext.model.DType;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.SyntheticCheckpoint;
import dev.jnext.tokenizer.TestTokenizers;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The engine on the CUDA backend: continuous batching of concurrent requests (prefill chunks beside decode tokens,
 * decode graphs for pure-decode steps, piecewise prefill graphs) gives each greedy request what it gets alone, up to
 * bf16 differences between batch compositions; sampled requests stay reproducible per seed.
 */
@Tag("gpu")
class EngineCudaGpuTest {

    private static Path checkpoint() throws Exception {
        ModelConfig c = SyntheticCheckpoint.preset("gpu-small", 4, null, DType.BF16);
        Path dir = Files.createTempDirectory("jnext-engine-cuda");
        Files.delete(dir);
        SyntheticCheckpoint.write(dir, new SyntheticCheckpoint.Options(c, DType.BF16, 3, 1L << 30, SyntheticCheckpoint.ExpertLayout.HUB,
                5f, SyntheticCheckpoint.ConfigStyle.V5), b -> {});
        return dir;
    }

    @Test
    void batchedRequestsMatchEachAloneOnCuda() throws Exception {
        Path model = checkpoint();
        Random rnd = new Random(1);
        List<int[]> prompts = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            int[] ids = new int[5 + rnd.nextInt(300)];
            for (int t = 0; t < ids.length; t++) ids[t] = rnd.nextInt(150000);
            prompts.add(ids);
        }
        for (PrefillMode graphs : PrefillMode.values()) {
            EngineOptions options = EngineOptions.defaults().withDevice(DeviceChoice.CUDA).withMaxSequences(8).withMaxStepTokens(512)
                    .withKvBudget(new KvBudget.Tokens(64 * 1024)).withPrefillMode(graphs).withTokenizer(TestTokenizers.qwen3Dir());
            List<int[]> alone = new ArrayList<>(), together = new ArrayList<>();
            try (Engine engine = Engine.open(model, options)) {
                assertTrue(engine.deviceName().startsWith("cuda:0"), engine.deviceName());
                assertEquals(dev.jnext.backend.DeviceChoice.CUDA, engine.device());
                for (int[] p : prompts) alone.add(engine.generate(GenerationRequest.tokens(p).greedy().maxTokens(24).build()).tokenIds());
                List<GenerationHandle> handles = new ArrayList<>();
                for (int[] p : prompts) handles.add(engine.submit(GenerationRequest.tokens(p).greedy().maxTokens(24).build()));
                for (GenerationHandle h : handles) together.add(h.await().tokenIds());
                // a sampled request is reproducible from its seed
                SamplingParams s = new SamplingParams(0.8f, 40, 0.95f, 0, 1.1f, 0.2f, 1234);
                int[] a = engine.generate(GenerationRequest.tokens(prompts.getFirst()).sampling(s).maxTokens(16).build()).tokenIds();
                int[] b = engine.generate(GenerationRequest.tokens(prompts.getFirst()).sampling(s).maxTokens(16).build()).tokenIds();
                assertTrue(Arrays.equals(a, b), graphs + ": seeded sampling " + Arrays.toString(a) + " vs " + Arrays.toString(b));
            }
            int same = 0;
            for (int i = 0; i < prompts.size(); i++) {
                assertEquals(24, together.get(i).length, graphs + " request " + i);
                assertEquals(alone.get(i)[0], together.get(i)[0], graphs + " request " + i + ": first token");
                if (Arrays.equals(alone.get(i), together.get(i))) same++;
            }
            // greedy continuations of a random model fork where two logits sit within bf16 noise of each other (a batch
            // runs other GEMM shapes than a request alone); measured 8-12 of 12 identical over 24 tokens on H100 and H200
            assertTrue(same >= prompts.size() / 2, graphs + ": " + same + " of " + prompts.size() + " requests identical to their solo run");
        }
    }
}
