package dev.jnext.engine;

import dev.jnext.JnextException;
import dev.jnext.tokenizer.QwenTokenizer;
import dev.jnext.tokenizer.TestTokenizers;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GeneratorTest {
    private final QwenTokenizer tok = TestTokenizers.qwen3();

    /** A model whose logits always favour the next id of a fixed script, recording what it was fed. */
    private static final class ScriptedModel implements SequenceModel {
        final int[] script;
        final int vocab, context;
        final List<Integer> fed = new ArrayList<>();
        int step;

        ScriptedModel(int[] script, int vocab, int context) {
            this.script = script;
            this.vocab = vocab;
            this.context = context;
        }

        private float[] logitsFor(int id) {
            float[] l = new float[vocab];
            for (int i = 0; i < vocab; i++) l[i] = (float) Math.sin(i); // random-looking, never NaN
            l[id] = 50f;
            return l;
        }

        @Override
        public float[] prefill(int[] promptIds) {
            for (int id : promptIds) fed.add(id);
            return logitsFor(script[step++]);
        }

        @Override
        public float[] decode(int id) {
            fed.add(id);
            return logitsFor(script[Math.min(step++, script.length - 1)]);
        }

        @Override
        public int vocabSize() {
            return vocab;
        }

        @Override
        public int contextLength() {
            return context;
        }
    }

    private Generator.Options options(int max, Set<Integer> eos, List<String> stops) {
        return new Generator.Options(SamplingParams.greedy(), max, eos, stops);
    }

    @Test
    void streamsTheScriptUntilEosAndFeedsEachTokenBack() {
        int[] answer = tok.encode("Bonjour 👋 le monde");
        int eos = tok.idOf("<|im_end|>").orElseThrow();
        int[] script = java.util.Arrays.copyOf(answer, answer.length + 1);
        script[answer.length] = eos;
        ScriptedModel model = new ScriptedModel(script, 151936, 1000);
        List<String> pieces = new ArrayList<>();
        int[] prompt = tok.encode("Say hello");
        var r = new Generator(tok).generate(model, prompt, options(100, Set.of(eos), List.of()), pieces::add);
        assertEquals("Bonjour 👋 le monde", r.text());
        assertEquals(String.join("", pieces), r.text());
        for (String p : pieces) assertTrue(p.indexOf('\uFFFD') < 0, "a streamed piece broke a character: " + pieces);
        assertEquals(Generator.FinishReason.EOS, r.finishReason());
        assertArrayEquals(script, r.tokenIds());
        assertEquals(prompt.length + answer.length, model.fed.size(), "every generated token but EOS is fed back");
        assertEquals(answer.length, r.timings().decodeSteps());
        assertEquals(prompt.length, r.timings().promptTokens());
    }

    @Test
    void stopsOnAStopStringWithoutShowingIt() {
        int[] script = tok.encode("Answer: 42\nQuestion: more");
        var r = new Generator(tok).generate(new ScriptedModel(script, 151936, 1000), tok.encode("Q"),
                options(100, Set.of(), List.of("\nQuestion:")), s -> {});
        assertEquals("Answer: 42", r.text());
        assertEquals(Generator.FinishReason.STOP_STRING, r.finishReason());
    }

    @Test
    void stopsAtTheTokenBudgetAndAtTheContextEnd() {
        int[] script = tok.encode("one two three four five six");
        var r = new Generator(tok).generate(new ScriptedModel(script, 151936, 1000), tok.encode("x"), options(3, Set.of(), List.of()), s -> {});
        assertEquals(3, r.tokenIds().length);
        assertEquals(Generator.FinishReason.MAX_TOKENS, r.finishReason());
        assertEquals("one two three", r.text());
        int[] prompt = tok.encode("a b c d");
        r = new Generator(tok).generate(new ScriptedModel(script, 151936, prompt.length + 2), prompt, options(50, Set.of(), List.of()), s -> {});
        assertEquals(2, r.tokenIds().length);
        assertEquals(Generator.FinishReason.CONTEXT_FULL, r.finishReason());
    }

    @Test
    void badPromptsAreRefusedBeforeTheModelRuns() {
        ScriptedModel small = new ScriptedModel(new int[] {1}, 256, 8);
        var e = assertThrows(JnextException.class, () -> new Generator(tok).generate(small, tok.encode("Hello world"), options(5, Set.of(), List.of()), s -> {}));
        assertTrue(e.getMessage().contains("vocab_size"), e.getMessage());
        e = assertThrows(JnextException.class, () -> new Generator(tok).generate(small, new int[20], options(5, Set.of(), List.of()), s -> {}));
        assertTrue(e.getMessage().contains("context"), e.getMessage());
        e = assertThrows(JnextException.class, () -> new Generator(tok).generate(small, new int[0], options(5, Set.of(), List.of()), s -> {}));
        assertTrue(e.getMessage().contains("empty"), e.getMessage());
        assertTrue(small.fed.isEmpty());
    }
}
