package dev.jnext.engine;

import dev.jnext.backend.ModelBackend;

import dev.jnext.JnextException;
import dev.jnext.tokenizer.QwenTokenizer;
import dev.jnext.tokenizer.TestTokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The engine and its scheduler over a scripted backend: stopping rules, streaming, admission, cancellation, failures. */
@Timeout(30)
class SchedulerTest {
    private final QwenTokenizer tok = TestTokenizers.qwen3();
    private final int eos = tok.idOf("<|im_end|>").orElseThrow();

    private Engine engine(ScriptedBackend backend, int queueLimit) {
        EngineOptions options = EngineOptions.defaults().withMaxSequences(backend.slots)
                .withMaxStepTokens(backend.stepTokens).withQueueLimit(queueLimit);
        return new Engine(backend, tok, TestTokenizers.qwen3Dir(), GenerationConfig.none(), Set.of(eos), options, "scripted");
    }

    private ScriptedBackend backend(int[] script, int context, int slots, int stepTokens) {
        return new ScriptedBackend(script, 151936, context, slots, stepTokens);
    }

    private static int[] concat(int[] a, int... b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    @Test
    void streamsTheScriptUntilEosAndFeedsEachTokenBack() throws Exception {
        int[] answer = tok.encode("Bonjour 👋 le monde");
        int[] script = concat(answer, eos);
        ScriptedBackend backend = backend(script, 1000, 1, 64);
        try (Engine engine = engine(backend, 4)) {
            int[] prompt = tok.encode("Say hello");
            GenerationHandle h = engine.submit(GenerationRequest.tokens(prompt).greedy().maxTokens(100).build());
            List<String> pieces = new ArrayList<>();
            GenerationEvent last = null;
            for (GenerationEvent e : h) {
                if (e instanceof GenerationEvent.Tokens t) pieces.add(t.text());
                last = e;
            }
            GenerationResult r = h.await();
            assertEquals("Bonjour 👋 le monde", r.text());
            assertEquals(String.join("", pieces), r.text());
            for (String p : pieces) assertTrue(p.indexOf('\uFFFD') < 0, "a streamed piece broke a character: " + pieces);
            assertEquals(FinishReason.EOS, r.finishReason());
            assertInstanceOf(GenerationEvent.Finished.class, last);
            assertEquals(script.length, ((GenerationEvent.Finished) last).completionTokens());
            assertArrayEquals(script, r.tokenIds());
            assertEquals(prompt.length + answer.length, backend.fed.get(0).size(), "every generated token but EOS is fed back");
            assertEquals(prompt.length, r.promptTokens());
            assertEquals(0, backend.openSlots(), "the slot is free once the request ended");
            assertEquals(h.next(), last, "after the end, next() repeats the terminal event");
        }
    }

    @Test
    void stopsOnAStopStringWithoutShowingItAndOnAStopTokenId() {
        int[] script = tok.encode("Answer: 42\nQuestion: more");
        try (Engine engine = engine(backend(script, 1000, 1, 64), 4)) {
            var r = engine.generate(GenerationRequest.text("Q").greedy().stop("\nQuestion:").build());
            assertEquals("Answer: 42", r.text());
            assertEquals(FinishReason.STOP_STRING, r.finishReason());
            int stopId = script[3];
            r = engine.generate(GenerationRequest.text("Q").greedy().stopTokenIds(stopId).build());
            assertEquals(FinishReason.STOP_TOKEN, r.finishReason());
            assertEquals(tok.decode(Arrays.copyOf(script, 3)), r.text());
            assertEquals(4, r.tokens().size());
        }
    }

    @Test
    void stopsAtTheTokenBudgetAndAtTheContextEndAndCanIgnoreEos() {
        int[] script = tok.encode("one two three four five six");
        try (Engine engine = engine(backend(script, 1000, 1, 64), 4)) {
            var r = engine.generate(GenerationRequest.text("x").greedy().maxTokens(3).build());
            assertEquals(3, r.tokenIds().length);
            assertEquals(FinishReason.MAX_TOKENS, r.finishReason());
            assertEquals("one two three", r.text());
        }
        int[] prompt = tok.encode("a b c d");
        try (Engine engine = engine(backend(script, prompt.length + 2, 1, 64), 4)) {
            var r = engine.generate(GenerationRequest.tokens(prompt).greedy().maxTokens(50).build());
            assertEquals(2, r.tokenIds().length);
            assertEquals(FinishReason.CONTEXT_FULL, r.finishReason());
        }
        try (Engine engine = engine(backend(new int[]{eos, eos, eos}, 1000, 1, 64), 4)) {
            var r = engine.generate(GenerationRequest.text("x").greedy().maxTokens(3).ignoreEos(true).build());
            assertEquals(FinishReason.MAX_TOKENS, r.finishReason());
            assertArrayEquals(new int[]{eos, eos, eos}, r.tokenIds());
        }
    }

    @Test
    void badPromptsAreRefusedBeforeTheModelRuns() {
        ScriptedBackend small = new ScriptedBackend(new int[]{1}, 256, 8, 1, 64);
        try (Engine engine = engine(small, 4)) {
            var e = assertThrows(JnextException.class, () -> engine.submit(GenerationRequest.text("Hello world").build()));
            assertTrue(e.getMessage().contains("vocab_size"), e.getMessage());
            e = assertThrows(JnextException.class, () -> engine.submit(GenerationRequest.tokens(new int[20]).build()));
            assertTrue(e.getMessage().contains("20 tokens") && e.getMessage().contains("context holds 8"), e.getMessage());
            e = assertThrows(JnextException.class, () -> engine.submit(GenerationRequest.text("").build()));
            assertTrue(e.getMessage().contains("empty"), e.getMessage());
            assertThrows(JnextException.class, () -> GenerationRequest.text("x").maxTokens(0).build());
            assertThrows(JnextException.class, () -> GenerationRequest.text("x").topLogprobs(21).build());
            assertTrue(small.steps.isEmpty());
            assertEquals(0, engine.stats().queued() + engine.stats().running());
        }
    }

    @Test
    void chatPromptsAreRenderedWithTheTemplate() {
        ScriptedBackend backend = backend(new int[]{eos}, 1000, 1, 64);
        try (Engine engine = engine(backend, 4)) {
            engine.generate(GenerationRequest.chat(List.of(dev.jnext.tokenizer.ChatMessage.user("Hi"))).build());
            String fed = tok.decode(backend.fed.get(0).stream().mapToInt(Integer::intValue).toArray());
            assertEquals("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", fed);
        }
    }

    @Test
    void cancellingEndsTheRequestAndFreesItsSlot() throws Exception {
        int[] script = tok.encode("word ".repeat(200));
        ScriptedBackend backend = backend(script, 100_000, 2, 64);
        try (Engine engine = engine(backend, 4)) {
            GenerationHandle h = engine.submit(GenerationRequest.text("go").greedy().maxTokens(10_000).build());
            for (int i = 0; i < 3; i++) assertInstanceOf(GenerationEvent.Tokens.class, h.next());
            h.cancel();
            GenerationEvent e;
            do e = h.next(); while (!e.isTerminal());
            assertEquals(FinishReason.CANCELLED, ((GenerationEvent.Finished) e).reason());
            assertEquals(0, backend.openSlots());
            assertEquals(FinishReason.CANCELLED, h.await().finishReason());
            assertTrue(h.await().tokens().size() < 10_000, "it stopped before its token budget");
            // the engine goes on serving
            assertEquals(FinishReason.MAX_TOKENS, engine.generate(GenerationRequest.text("go").maxTokens(2).build()).finishReason());
        }
    }

    @Test
    void closeGivesEveryUnfinishedRequestATerminalEvent() throws Exception {
        int[] script = tok.encode("word ".repeat(50));
        ScriptedBackend backend = backend(script, 100_000, 1, 64);
        backend.pauseInStep = new CountDownLatch(1);
        Engine engine = engine(backend, 8);
        GenerationHandle running = engine.submit(GenerationRequest.text("a").maxTokens(10_000).build());
        backend.paused.await();
        List<GenerationHandle> queued = new ArrayList<>();
        for (int i = 0; i < 3; i++) queued.add(engine.submit(GenerationRequest.text("b").maxTokens(10_000).build()));
        Thread closer = Thread.ofPlatform().start(engine::close);
        Thread.sleep(50);
        backend.pauseInStep.countDown();
        closer.join(10_000);
        assertTrue(backend.closed);
        for (GenerationHandle h : concatHandles(running, queued)) {
            GenerationEvent e;
            do e = h.next(); while (!e.isTerminal());
            var failed = assertInstanceOf(GenerationEvent.Failed.class, e);
            assertEquals(GenerationEvent.Failed.Kind.ENGINE_CLOSED, failed.kind());
            assertThrows(GenerationFailedException.class, h::await);
        }
        assertThrows(EngineClosedException.class, () -> engine.submit(GenerationRequest.text("c").build()));
        engine.close(); // idempotent
    }

    private static List<GenerationHandle> concatHandles(GenerationHandle first, List<GenerationHandle> rest) {
        List<GenerationHandle> all = new ArrayList<>(List.of(first));
        all.addAll(rest);
        return all;
    }

    @Test
    void pastTheQueueLimitRequestsAreRefusedAndQueuedOnesStillRun() throws Exception {
        int[] script = tok.encode("one two three");
        ScriptedBackend backend = backend(script, 1000, 1, 64);
        CountDownLatch gate = new CountDownLatch(1);
        backend.pauseInStep = gate;
        try (Engine engine = engine(backend, 2)) {
            GenerationHandle a = engine.submit(GenerationRequest.text("a").maxTokens(3).build());
            backend.paused.await();
            GenerationHandle b = engine.submit(GenerationRequest.text("b").maxTokens(3).build());
            GenerationHandle c = engine.submit(GenerationRequest.text("c").maxTokens(3).build());
            var e = assertThrows(EngineOverloadedException.class, () -> engine.submit(GenerationRequest.text("d").build()));
            assertTrue(e.getMessage().contains("queue limit"), e.getMessage());
            assertEquals(2, engine.stats().queued(), engine.stats().toString());
            assertEquals(1, engine.stats().running(), engine.stats().toString());
            backend.pauseInStep = null;
            gate.countDown();
            for (GenerationHandle h : List.of(a, b, c)) assertEquals("one two three", h.await().text());
            assertEquals("one two three", engine.generate(GenerationRequest.text("d").maxTokens(3).build()).text());
        }
    }

    @Test
    void admissionWaitsForKvSpaceAndRefusesWhatCanNeverFit() {
        int[] script = tok.encode("one two three four");
        ScriptedBackend backend = backend(script, 1000, 4, 64);
        backend.kvBudget = 30;
        try (Engine engine = engine(backend, 8)) {
            // each needs prompt 1 + 16 = 17 tokens of KV: two never run together
            List<GenerationHandle> hs = new ArrayList<>();
            for (int i = 0; i < 3; i++) hs.add(engine.submit(GenerationRequest.tokens(100 + i).maxTokens(16).build()));
            for (GenerationHandle h : hs) assertEquals(FinishReason.MAX_TOKENS, h.await().finishReason());
            for (List<ModelBackend.StepInput> step : backend.steps) assertEquals(1, step.size(), "KV budget exceeded in a step");
            GenerationHandle tooBig = engine.submit(GenerationRequest.tokens(7).maxTokens(40).build());
            var e = assertThrows(GenerationFailedException.class, tooBig::await);
            assertEquals(GenerationEvent.Failed.Kind.REJECTED, e.event().kind());
            assertTrue(e.getMessage().contains("41 tokens"), e.getMessage());
            assertEquals(FinishReason.MAX_TOKENS, engine.generate(GenerationRequest.tokens(7).maxTokens(4).build()).finishReason());
        }
    }

    @Test
    void aFailedStepEndsItsRequestsAndTheEngineGoesOn() {
        int[] script = tok.encode("one two three four");
        ScriptedBackend backend = backend(script, 1000, 2, 64);
        backend.failAtStep = 2;
        try (Engine engine = engine(backend, 8)) {
            var e = assertThrows(GenerationFailedException.class,
                    () -> engine.generate(GenerationRequest.text("a").maxTokens(10).build()));
            assertEquals(GenerationEvent.Failed.Kind.BACKEND_ERROR, e.event().kind());
            assertTrue(e.getMessage().contains("scripted failure"), e.getMessage());
            assertEquals(0, backend.openSlots());
            assertEquals("one two three four", engine.generate(GenerationRequest.text("a").maxTokens(4).build()).text());
        }
    }

    @Test
    void promptChunksEndWhereTheBackendSnapshotsState() {
        int[] script = tok.encode(" x".repeat(4));
        ScriptedBackend backend = backend(script, 10_000, 2, 512);
        backend.alignment = 64;
        backend.stops = new int[]{128, 320};
        try (Engine engine = engine(backend, 8)) {
            int[] prompt = new int[400];
            Arrays.fill(prompt, 150_001);
            assertEquals(4, engine.submit(GenerationRequest.tokens(prompt).maxTokens(4).build()).await().tokens().size());
        }
        // one 400-token prompt within a 512-token step: cut at 128 and at 320 (the backend's stops), then the rest
        List<Integer> chunks = new ArrayList<>();
        for (List<ModelBackend.StepInput> step : backend.steps) {
            for (ModelBackend.StepInput in : step) if (in.prompt()) chunks.add(in.tokens().length);
        }
        assertEquals(List.of(128, 192, 80), chunks);
        assertEquals(List.of(0, 128, 320), backend.stopQueries.stream().map(q -> q[1]).toList());
    }

    @Test
    void promptsAreChunkedWithinTheStepBudgetBesideRunningDecodes() {
        int[] script = tok.encode(" x".repeat(40));
        ScriptedBackend backend = backend(script, 10_000, 3, 40);
        try (Engine engine = engine(backend, 8)) {
            List<GenerationHandle> hs = new ArrayList<>();
            int[] lengths = {5, 150, 90, 33};
            for (int i = 0; i < lengths.length; i++) {
                int[] prompt = new int[lengths[i]];
                Arrays.fill(prompt, 150_000 + i);
                hs.add(engine.submit(GenerationRequest.tokens(prompt).maxTokens(20).build()));
            }
            for (GenerationHandle h : hs) assertEquals(20, h.await().tokens().size());
            for (List<ModelBackend.StepInput> step : backend.steps) {
                int tokens = step.stream().mapToInt(in -> in.tokens().length).sum();
                assertTrue(tokens <= 40, "step of " + tokens + " tokens");
                assertEquals(step.size(), step.stream().mapToInt(ModelBackend.StepInput::slot).distinct().count());
            }
            // every prompt was fed exactly once, in order, and sampled only at its end
            for (int i = 0; i < lengths.length; i++) {
                int marker = 150_000 + i;
                int fed = 0;
                for (List<ModelBackend.StepInput> step : backend.steps) {
                    for (ModelBackend.StepInput in : step) {
                        if (in.tokens()[0] != marker) continue;
                        fed += in.tokens().length;
                        assertEquals(fed == lengths[i], in.sample(), "only the prompt's last chunk samples");
                    }
                }
                assertEquals(lengths[i], fed);
            }
        }
    }

    @Test
    void manyConcurrentCallersEachGetTheirOwnCompleteResult() throws Exception {
        int[] script = tok.encode("alpha beta gamma delta epsilon");
        ScriptedBackend backend = backend(script, 10_000, 4, 64);
        try (Engine engine = engine(backend, 1000); ExecutorService pool = Executors.newFixedThreadPool(8)) {
            List<Future<GenerationResult>> futures = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                int n = 1 + i % 5;
                futures.add(pool.submit(() -> engine.generate(GenerationRequest.text("p" + n).maxTokens(n).build())));
            }
            for (int i = 0; i < futures.size(); i++) {
                GenerationResult r = futures.get(i).get();
                assertEquals(1 + i % 5, r.tokens().size());
                assertArrayEquals(Arrays.copyOf(script, 1 + i % 5), r.tokenIds());
            }
            assertEquals(0, engine.stats().running() + engine.stats().queued());
            assertEquals(0, backend.openSlots());
        }
    }

    /** What a client may see of an engine failure: words, no exception or JVM class names. */
    private static void assertNoJvmDetails(String message) {
        for (String leak : List.of("java.", "Error", "Exception", "OutOfMemory", "heap", "StackOverflow")) {
            assertFalse(message.contains(leak), "\"" + leak + "\" reached the client: " + message);
        }
    }

    /** Issue 19: one OutOfMemoryError on the engine thread left a dead engine (503 forever) and its class name in replies. */
    @Test
    void anErrorOnTheEngineThreadFailsItsRequestsGenericallyAndTheEngineRestarts() throws Exception {
        int[] script = tok.encode("one two three four");
        ScriptedBackend backend = backend(script, 1000, 1, 64);
        backend.throwAtStep = i -> i == 1 ? new OutOfMemoryError("Java heap space") : null;
        try (Engine engine = engine(backend, 8)) {
            GenerationHandle a = engine.submit(GenerationRequest.text("a").maxTokens(10).build()); // its second step throws
            GenerationHandle b = engine.submit(GenerationRequest.text("b").maxTokens(4).build());  // waits for the one slot
            var e = assertThrows(GenerationFailedException.class, a::await);
            assertEquals(GenerationEvent.Failed.Kind.BACKEND_ERROR, e.event().kind());
            assertNoJvmDetails(e.getMessage());
            assertTrue(e.getMessage().contains("restarted"), e.getMessage());
            assertEquals("one two three four", b.await().text(), "the waiting request runs after the restart");
            assertTrue(engine.isRunning());
            assertFalse(engine.hasFailed());
            assertEquals("one two", engine.generate(GenerationRequest.text("c").maxTokens(2).build()).text());
            assertEquals(0, backend.openSlots(), "the failed request's slot was closed, once");
            assertEquals(0, engine.stats().running() + engine.stats().queued());
        }
    }

    @Test
    void anEngineThatKeepsFailingStopsForGoodWithAGenericMessage() throws Exception {
        ScriptedBackend backend = backend(tok.encode("one two"), 1000, 2, 64);
        backend.throwAtStep = i -> new StackOverflowError();
        try (Engine engine = engine(backend, 16)) {
            int failures = 0;
            for (int i = 0; i < 10 && engine.isRunning(); i++) {
                try {
                    engine.generate(GenerationRequest.text("x" + i).maxTokens(3).build());
                } catch (GenerationFailedException | EngineClosedException e) {
                    assertNoJvmDetails(e.getMessage());
                    failures++;
                }
            }
            engine.awaitStopped();
            assertEquals(Engine.MAX_RESTARTS + 1, backend.steps.size(), "one restart too many stops the engine");
            assertTrue(failures >= Engine.MAX_RESTARTS + 1);
            assertTrue(engine.hasFailed());
            assertFalse(engine.isRunning());
            var closed = assertThrows(EngineClosedException.class, () -> engine.submit(GenerationRequest.text("y").build()));
            assertNoJvmDetails(closed.getMessage());
            assertEquals(0, backend.openSlots());
        }
    }

    @Test
    void aStepFailingWithoutAMessageFailsItsRequestsWithoutItsClassName() {
        ScriptedBackend backend = backend(tok.encode("one two"), 1000, 1, 64);
        backend.throwAtStep = i -> i == 0 ? new IllegalStateException() : null;
        try (Engine engine = engine(backend, 8)) {
            var e = assertThrows(GenerationFailedException.class, () -> engine.generate(GenerationRequest.text("a").maxTokens(2).build()));
            assertNoJvmDetails(e.getMessage());
            assertTrue(e.getMessage().contains("internal error"), e.getMessage());
            assertEquals("one two", engine.generate(GenerationRequest.text("a").maxTokens(2).build()).text());
        }
    }

    /** Issue 19: a 100,000-token prompt took every step's budget; a 2-token request sent after it waited for all of it. */
    @Test
    void aShortRequestFinishesWhileALongPromptIsStillBeingRead() throws Exception {
        ScriptedBackend backend = backend(tok.encode(" x".repeat(10)), 200_000, 4, 8192);
        backend.alignment = 64;
        backend.pauseInStep = new CountDownLatch(1);
        EngineOptions options = EngineOptions.defaults().withMaxSequences(4).withMaxStepTokens(8192).withMaxPrefillChunk(2000)
                .withQueueLimit(8);
        try (Engine engine = new Engine(backend, tok, TestTokenizers.qwen3Dir(), GenerationConfig.none(), Set.of(eos), options, "scripted")) {
            int[] longPrompt = new int[100_000];
            Arrays.fill(longPrompt, 150_001);
            GenerationHandle big = engine.submit(GenerationRequest.tokens(longPrompt).maxTokens(2).build());
            backend.paused.await(); // the engine is inside its first step: the short request arrives behind the long prompt
            GenerationHandle small = engine.submit(GenerationRequest.tokens(new int[] {150_002, 150_003}).maxTokens(3).build());
            backend.pauseInStep.countDown();
            assertEquals(3, small.await().tokens().size());
            assertEquals(2, big.await().tokens().size());

            int bigSlot = -1, smallSlot = -1, bigPromptEnd = -1, smallDone = -1, smallSampled = 0;
            for (int s = 0; s < backend.steps.size(); s++) {
                List<ModelBackend.StepInput> step = backend.steps.get(s);
                assertTrue(step.stream().mapToInt(in -> in.tokens().length).sum() <= 8192);
                for (ModelBackend.StepInput in : step) {
                    if (in.tokens()[0] == 150_001) bigSlot = in.slot();
                    if (in.tokens()[0] == 150_002) smallSlot = in.slot();
                    if (in.slot() == bigSlot && in.tokens()[0] == 150_001) {
                        if (in.sample()) bigPromptEnd = s;
                        else assertTrue(in.tokens().length <= 2000 && in.tokens().length % 64 == 0,
                                "a chunk of the long prompt: " + in.tokens().length + " tokens (cap 2000, alignment 64)");
                    }
                    if (in.slot() == smallSlot && in.sample() && ++smallSampled == 3) smallDone = s;
                }
            }
            assertTrue(bigPromptEnd > 0 && smallDone > 0);
            assertTrue(smallDone < bigPromptEnd, "the short request finished in step " + smallDone
                    + ", the long prompt was read by step " + bigPromptEnd);
            assertEquals(1984, backend.steps.get(0).getFirst().tokens().length, "2000 rounded down to a multiple of 64");
        }
    }
}
