package dev.jnext.structured;

import dev.jnext.backend.TokenMask;
import dev.jnext.tokenizer.QwenTokenizer;
import dev.jnext.tokenizer.TestTokenizers;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Token masks over the real Qwen3 vocabulary (151,669 ids): equal to feeding every id's bytes, EOS only at the end. */
class TokenMasksTest {
    static QwenTokenizer tokenizer;
    static TokenMasks masks;
    static final int VOCAB = 151_936; // the model's (padded) vocabulary: ids past the tokenizer's are never allowed
    static int eos;

    @BeforeAll
    static void load() {
        tokenizer = TestTokenizers.qwen3();
        long t0 = System.nanoTime();
        masks = new TokenMasks(tokenizer, VOCAB);
        System.out.printf("TokenMasks over %d ids built in %.0f ms%n", tokenizer.vocabSize(), (System.nanoTime() - t0) / 1e6);
        eos = tokenizer.idOf("<|im_end|>").orElseThrow();
    }

    /** The mask by brute force: every id whose whole byte string the automaton takes from this state. */
    static TokenMask bruteForce(JsonGrammar g, long[] st, int size) {
        List<Integer> ids = new ArrayList<>();
        for (int id = 0; id < VOCAB; id++) {
            byte[] b = masks.bytes(id);
            if (b == null) continue;
            long[] copy = st.clone();
            int s = size;
            for (byte x : b) {
                s = JsonAutomaton.feed(g, copy, s, x & 0xFF);
                if (s < 0) break;
            }
            if (s >= 0) ids.add(id);
        }
        return TokenMask.of(VOCAB, ids.stream().mapToInt(Integer::intValue).toArray());
    }

    @Test
    void masksEqualFeedingEveryIdsBytes() {
        JsonGrammar person = JsonGrammar.compile(JsonAutomatonTest.PERSON);
        JsonGrammar any = JsonGrammar.anyObject();
        String[][] cases = {
                {"any", ""}, {"any", "{"}, {"any", "{\""}, {"any", "{\"a"}, {"any", "{\"a\":"}, {"any", "{\"a\": \"x"},
                {"any", "{\"a\": \"x\\"}, {"any", "{\"a\":1"}, {"any", "{\"a\":[1,"}, {"any", "{\"a\":tr"}, {"any", "{\"a\":{}}"},
                {"person", ""}, {"person", "{"}, {"person", "{\""}, {"person", "{\"na"}, {"person", "{\"name\":\"x"},
                {"person", "{\"name\":\"x\","}, {"person", "{\"name\":\"x\",\"age\":12"}, {"person", "{\"kind\":"},
                {"person", "{\"tags\":[\"a\""}, {"person", "{\"age\":1,\"name\":\"n\"}"},
        };
        for (String[] c : cases) {
            JsonGrammar g = c[0].equals("any") ? any : person;
            int[] size = new int[1];
            long[] st = JsonAutomatonTest.run(g, c[1].getBytes(StandardCharsets.UTF_8), size);
            assertNotNull(st, c[1]);
            TokenMask expected = bruteForce(g, st, size[0]);
            TokenMask actual = masks.compute(g, st, size[0]);
            assertEquals(expected, actual, c[0] + " after " + c[1]);
            for (int id = tokenizer.vocabSize(); id < VOCAB; id++) assertFalse(actual.allows(id));
            assertFalse(actual.allows(eos), "a special token is never JSON text");
        }
        // a UTF-8 character cut between tokens: only its continuation bytes go on
        byte[] cut = JsonAutomatonTest.concat("{\"a\":\"".getBytes(StandardCharsets.UTF_8), new byte[]{(byte) 0xE4});
        int[] size = new int[1];
        long[] st = JsonAutomatonTest.run(any, cut, size);
        TokenMask m = masks.compute(any, st, size[0]);
        assertEquals(bruteForce(any, st, size[0]), m);
        assertTrue(m.count() > 0 && m.count() < 5000, m.toString());
    }

    @Test
    void theEndOfSequenceIsAllowedOnlyOnceTheDocumentIsWhole() {
        JsonConstraint c = new JsonConstraint(masks, JsonGrammar.anyObject(), new int[]{eos}, -1);
        for (int id : tokenizer.encode("{\"a\": [1, 2]")) {
            assertFalse(c.mask().allows(eos));
            assertTrue(c.advance(id));
        }
        assertFalse(c.complete());
        int close = tokenizer.encode("}")[0];
        assertTrue(c.mask().allows(close));
        assertTrue(c.advance(close));
        assertTrue(c.complete());
        assertEquals(TokenMask.of(VOCAB, eos), c.mask(), "a whole document: only the end");
        assertFalse(c.advance(tokenizer.encode(" ")[0]), "nothing after the document");
        // a top-level number may end or go on: both its digits and the end
        JsonConstraint n = new JsonConstraint(masks, JsonGrammar.compile("{\"type\":\"integer\"}"), new int[]{eos}, -1);
        assertTrue(n.advance(tokenizer.encode("7")[0]));
        assertTrue(n.mask().allows(eos) && n.mask().allows(tokenizer.encode("3")[0]));
    }

    @Test
    void theConstraintStartsAfterItsToken() {
        int endThink = tokenizer.idOf("</think>").orElseThrow();
        JsonConstraint c = new JsonConstraint(masks, JsonGrammar.anyObject(), new int[]{eos}, endThink);
        assertNull(c.mask());
        for (int id : tokenizer.encode("Let me think. [not json")) assertTrue(c.advance(id));
        assertNull(c.mask());
        assertTrue(c.advance(endThink));
        assertTrue(c.started());
        TokenMask m = c.mask();
        assertTrue(m.allows(tokenizer.encode("{")[0]) && !m.allows(tokenizer.encode("[")[0]) && !m.allows(eos));
    }

    @Test
    void masksAreCachedByState() {
        JsonGrammar g = JsonGrammar.compile(JsonAutomatonTest.PERSON);
        int[] size = new int[1];
        long[] st = JsonAutomatonTest.run(g, "{\"name\":\"abc".getBytes(StandardCharsets.UTF_8), size);
        TokenMask first = masks.mask(g, st, size[0]);
        long[] other = JsonAutomatonTest.run(g, "{\"name\":\"some other text".getBytes(StandardCharsets.UTF_8), size);
        assertSame(first, masks.mask(g, other, size[0]), "inside the same string: the same state, one mask");
    }

    /**
     * Decoding with a "model" that picks uniformly among the allowed ids (a random checkpoint does about that): the
     * mask is never empty, and every text that ends with EOS parses and satisfies the schema. Prints the cost of masks.
     */
    @Test
    void randomDecodingAlwaysEndsInValidDocuments() {
        String[] schemas = {JsonAutomatonTest.PERSON, "{\"type\":\"object\"}",
                "{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"},"
                        + "\"ok\":{\"type\":\"boolean\"}},\"required\":[\"id\",\"ok\"],\"additionalProperties\":false},\"maxItems\":3}"};
        SplittableRandom random = new SplittableRandom(11);
        long maskNanos = 0;
        int steps = 0, documents = 0;
        for (String schema : schemas) {
            JsonGrammar g = schema.equals("{\"type\":\"object\"}") ? JsonGrammar.anyObject() : JsonGrammar.compile(schema);
            for (int run = 0; run < 6; run++) {
                JsonConstraint c = new JsonConstraint(masks, g, new int[]{eos}, -1);
                List<Integer> out = new ArrayList<>();
                boolean ended = false;
                for (int step = 0; step < 400 && !ended; step++) {
                    long t0 = System.nanoTime();
                    TokenMask m = c.mask();
                    maskNanos += System.nanoTime() - t0;
                    steps++;
                    assertTrue(m.count() > 0, "an empty mask after " + tokenizer.decode(toArray(out)));
                    // past 40 tokens, prefer ids that close things (what a trained model does by then), to end runs
                    int id = step > 40 && random.nextInt(2) == 0 ? closer(m, random) : nth(m, random.nextInt(m.count()));
                    assertTrue(c.advance(id));
                    if (id == eos) ended = true;
                    else out.add(id);
                }
                if (!ended) continue;
                String text = tokenizer.decode(toArray(out));
                documents++;
                assertEquals(List.of(), SchemaCheck.violations(schema, text, !schema.equals("{\"type\":\"object\"}")), text);
            }
        }
        assertTrue(documents >= 12, documents + " of 18 runs ended within 400 tokens");
        System.out.printf("random decoding: %d documents, %d masks, %.3f ms each on average (cache: %s hits/misses)%n", documents, steps,
                maskNanos / 1e6 / steps, java.util.Arrays.toString(masks.cacheCounts()));
    }

    private static int closer(TokenMask m, SplittableRandom random) {
        for (String s : new String[]{"}", "]", "\"", "\"}", "0", "1", "true", "null", "\",", ","}) {
            int id = tokenizer.encode(s)[0];
            if (m.allows(id) && (random.nextInt(3) > 0)) return id;
        }
        if (m.allows(eos)) return eos;
        return nth(m, random.nextInt(m.count()));
    }

    private static int nth(TokenMask m, int n) {
        int id = m.nextAllowed(0);
        for (int i = 0; i < n; i++) id = m.nextAllowed(id + 1);
        return id;
    }

    private static int[] toArray(List<Integer> ids) {
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }
}
