package dev.jnext.engine;

import dev.jnext.JnextException;
import dev.jnext.backend.DeviceChoice;
import dev.jnext.backend.SamplingParams;
import dev.jnext.tokenizer.QwenTokenizer;
import dev.jnext.tokenizer.TestTokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The API contract an application relies on (issue 17, point 6): futures, threads, timeouts, values, nulls. */
@Timeout(30)
class EngineApiTest {
    private final QwenTokenizer tok = TestTokenizers.qwen3();

    private Engine engine(ScriptedBackend backend) {
        EngineOptions options = EngineOptions.defaults().withMaxSequences(backend.slots).withMaxStepTokens(backend.stepTokens);
        return new Engine(backend, tok, TestTokenizers.qwen3Dir(), GenerationConfig.none(), Set.of(), options, "scripted");
    }

    @Test
    void cancellingTheResultFutureCancelsTheRequestAndFreesItsSlot() throws Exception {
        ScriptedBackend backend = new ScriptedBackend(new int[]{100, 101, 102}, 151936, 100_000, 1, 64);
        try (Engine engine = engine(backend)) {
            GenerationHandle h = engine.submit(GenerationRequest.tokens(1, 2, 3).greedy().maxTokens(50_000).build());
            CompletableFuture<GenerationResult> f = h.result();
            assertSame(f, h.result(), "one future per request");
            assertTrue(f.cancel(true));
            assertThrows(CancellationException.class, f::join);
            GenerationResult r = h.await();   // the request itself ends, cancelled, at the next step
            assertEquals(FinishReason.CANCELLED, r.finishReason());
            assertTrue(r.tokens().size() < 50_000);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (backend.openSlots() != 0 && System.nanoTime() < deadline) Thread.sleep(5);
            assertEquals(0, backend.openSlots(), "the slot is free");
            assertThrows(UnsupportedOperationException.class, () -> f.complete(null), "only the engine completes it");
        }
    }

    @Test
    void callbacksNeverRunOnTheEngineThreadAndASlowOneDelaysNoOtherRequest() throws Exception {
        ScriptedBackend backend = new ScriptedBackend(new int[]{100, 101, 102}, 151936, 1000, 2, 64);
        try (Engine engine = engine(backend)) {
            AtomicReference<String> callbackThread = new AtomicReference<>();
            CountDownLatch release = new CountDownLatch(1);
            GenerationHandle slow = engine.submit(GenerationRequest.tokens(1, 2).greedy().maxTokens(3).build());
            slow.result().thenRun(() -> {
                callbackThread.set(Thread.currentThread().getName());
                try {
                    release.await(20, TimeUnit.SECONDS);   // a callback that blocks
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            slow.await();
            GenerationResult other = engine.submit(GenerationRequest.tokens(5, 6).greedy().maxTokens(3).build())
                    .await(Duration.ofSeconds(10));   // served while the first request's callback still blocks
            assertEquals(3, other.tokens().size());
            release.countDown();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (callbackThread.get() == null && System.nanoTime() < deadline) Thread.sleep(5);
            assertTrue(callbackThread.get() != null && !callbackThread.get().equals("jnext-engine"), callbackThread.get());
        }
    }

    @Test
    void awaitWithATimeoutThrowsAndLeavesTheRequestRunning() throws Exception {
        ScriptedBackend backend = new ScriptedBackend(new int[]{100}, 151936, 100_000, 1, 64);
        backend.pauseInStep = new CountDownLatch(1);
        try (Engine engine = engine(backend)) {
            GenerationHandle h = engine.submit(GenerationRequest.tokens(1, 2).greedy().maxTokens(4).build());
            assertThrows(TimeoutException.class, () -> h.await(Duration.ofMillis(50)));
            assertFalse(h.isDone());
            backend.pauseInStep.countDown();
            assertEquals(4, h.await(Duration.ofSeconds(10)).tokens().size());
            assertThrows(NullPointerException.class, () -> h.await(null));
        }
    }

    @Test
    void generatedTokensAreValues() {
        GeneratedToken a = new GeneratedToken(7, -0.5f, new int[]{7, 3}, new float[]{-0.5f, -1f});
        GeneratedToken b = new GeneratedToken(7, -0.5f, new int[]{7, 3}, new float[]{-0.5f, -1f});
        assertEquals(a, b);
        assertEquals(a.hashCode(), b.hashCode());
        assertEquals("GeneratedToken[id=7, logprob=-0.5, topIds=[7, 3], topLogprobs=[-0.5, -1.0]]", a.toString());
        a.topIds()[0] = 99;
        assertEquals(7, a.topId(0), "the arrays are copied out");
        assertNotEquals(a, new GeneratedToken(7, -0.5f, new int[]{7, 4}, new float[]{-0.5f, -1f}));
        assertThrows(IllegalArgumentException.class, () -> new GeneratedToken(1, 0, new int[1], new float[2]));
    }

    @Test
    void samplingParamsByNameAndWithers() {
        SamplingParams p = SamplingParams.builder().temperature(0.7f).topK(20).topP(0.8f).minP(0.05f).seed(42).build();
        assertEquals(new SamplingParams(0.7f, 20, 0.8f, 0.05f, 1, 0, 42), p);
        assertEquals(new SamplingParams(0.7f, 20, 0.9f, 0.05f, 1, 0, 42), p.withTopP(0.9f));
        assertEquals(SamplingParams.greedy(), SamplingParams.builder().build());
        assertThrows(JnextException.class, () -> p.withTopP(1.5f));
    }

    @Test
    void nullArgumentsAreRefusedNamingTheParameter() {
        assertEquals("texts", assertThrows(NullPointerException.class,
                () -> GenerationRequest.text("x").stop((String[]) null)).getMessage());
        assertEquals("a stop string", assertThrows(NullPointerException.class,
                () -> GenerationRequest.text("x").stop("a", null)).getMessage());
        assertEquals("text", assertThrows(NullPointerException.class, () -> GenerationRequest.text(null)).getMessage());
        assertEquals("messages", assertThrows(NullPointerException.class, () -> GenerationRequest.chat(null)).getMessage());
        assertEquals("prompt", assertThrows(NullPointerException.class, () -> GenerationRequest.of(null)).getMessage());
        // tools and template variables: null means none (documented)
        var chat = new GenerationRequest.Prompt.Chat(List.of(Map.of("role", "user", "content", "hi")), null, null);
        assertEquals(Map.of(), chat.templateVariables());
        assertEquals("device", assertThrows(NullPointerException.class,
                () -> EngineOptions.defaults().withDevice(null)).getMessage());
    }

    @Test
    void deviceChoicesCarryAGpuIndex() {
        assertEquals(DeviceChoice.cuda(1), DeviceChoice.parse("cuda:1"));
        assertEquals(DeviceChoice.CUDA, DeviceChoice.parse("CUDA"));
        assertEquals("cuda:3", DeviceChoice.cuda(3).toString());
        assertEquals("auto", DeviceChoice.parse(" auto ").toString());
        for (String bad : new String[]{"gpu", "cuda:", "cuda:-1", "cuda:x", ""}) {
            assertTrue(assertThrows(JnextException.class, () -> DeviceChoice.parse(bad)).getMessage().contains("auto, cpu, cuda or cuda:N"));
        }
        assertThrows(IllegalArgumentException.class, () -> new DeviceChoice(DeviceChoice.Kind.CPU, 1));
    }
}
