package dev.jnext.structured;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jnext.JnextException;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The JSON automaton on bytes: documents and prefixes it takes or refuses, the schema subset, and the refusals. */
class JsonAutomatonTest {
    static final String PERSON = """
            {"type": "object", "additionalProperties": false, "required": ["name", "age"],
             "properties": {
               "name": {"type": "string", "description": "a name"},
               "age": {"type": "integer"},
               "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
               "kind": {"enum": ["a", "b\\"c", 1, 2.5, true, null]},
               "score": {"type": ["number", "null"]}
             }}""";

    /** The state after {@code bytes}, or null once a byte is refused. */
    static long[] run(JsonGrammar g, byte[] bytes, int[] size) {
        long[] st = JsonAutomaton.newStack();
        int s = JsonAutomaton.start(g, st);
        for (byte b : bytes) {
            s = JsonAutomaton.feed(g, st, s, b & 0xFF);
            if (s < 0) return null;
        }
        size[0] = s;
        return st;
    }

    static boolean alive(JsonGrammar g, String prefix) {
        return run(g, prefix.getBytes(StandardCharsets.UTF_8), new int[1]) != null;
    }

    static boolean accepts(JsonGrammar g, String doc) {
        return accepts(g, doc.getBytes(StandardCharsets.UTF_8));
    }

    static boolean accepts(JsonGrammar g, byte[] doc) {
        int[] size = new int[1];
        long[] st = run(g, doc, size);
        return st != null && JsonAutomaton.canEnd(g, st, size[0]);
    }

    @Test
    void anyObjectTakesJsonObjects() {
        JsonGrammar g = JsonGrammar.anyObject();
        for (String doc : List.of("{}", "{\"a\":1}", " {\n  \"a\" : [1, -2.5e+3, 0, -0, 1E9, {\"b\": null}],\t\"c\": \"x\\u00e9\\\"\\\\\\/\\n\"}",
                "{\"é😀\":\"ünïcödé 😀 \\ud83d\\ude00\"}", "{\"a\":{\"a\":{\"a\":[[[]]]}}}", "{\"t\":true,\"f\":false,\"n\":null}",
                "{\"a\":1,\"a\":2}")) {
            assertTrue(accepts(g, doc), doc);
        }
    }

    @Test
    void anyObjectRefusesWhatIsNotAJsonObject() {
        JsonGrammar g = JsonGrammar.anyObject();
        for (String doc : List.of("[]", "1", "\"s\"", "null", "{\"a\":01}", "{\"a\":1,}", "{,}", "{\"a\" 1}", "{\"a\":1.}",
                "{\"a\":-}", "{\"a\":1e}", "{\"a\":.5}", "{\"a\":+1}", "{\"a\":tru}", "{\"a\":nul }", "{a:1}", "{'a':1}",
                "{\"a\":\"\t\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12G4\"}", "{} ", "{}{}", "{\"a\":[1 2]}", "{\"a\":[,1]}",
                "{\"a\":[1,]}", "{\"a\":NaN}", "{\"a\":Infinity}", "{\"a\":1}x")) {
            assertFalse(accepts(g, doc), doc);
        }
        // bytes that are not UTF-8, inside a string: overlong '/', an encoded surrogate, a stray continuation, 0xFF
        for (byte[] bad : new byte[][]{{(byte) 0xC0, (byte) 0xAF}, {(byte) 0xED, (byte) 0xA0, (byte) 0x80}, {(byte) 0x80},
                {(byte) 0xFF}, {(byte) 0xF4, (byte) 0x90, (byte) 0x80, (byte) 0x80}, {(byte) 0xE0, (byte) 0x80, (byte) 0x80}}) {
            byte[] doc = concat("{\"a\":\"".getBytes(StandardCharsets.UTF_8), bad, "\"}".getBytes(StandardCharsets.UTF_8));
            assertFalse(accepts(g, doc), java.util.Arrays.toString(bad));
        }
    }

    @Test
    void prefixesLiveExactlyWhileTheyCanBeCompleted() {
        JsonGrammar g = JsonGrammar.anyObject();
        for (String p : List.of("", " ", "{", "{\"", "{\"a", "{\"a\"", "{\"a\":", "{\"a\":t", "{\"a\":tr", "{\"a\":-", "{\"a\":1.",
                "{\"a\":1e+", "{\"a\":\"\\", "{\"a\":\"\\u00", "{\"a\":[", "{\"a\":[1,", "{\"a\":{")) {
            assertTrue(alive(g, p), p);
            assertFalse(accepts(g, p), p);
        }
        for (String p : List.of("x", "{x", "{\"a\":trx", "{\"a\":-x", "{\"a\"::", "}", "{\"a\":1}}", "{\"a\":[}")) {
            assertFalse(alive(g, p), p);
        }
        // a UTF-8 character cut in the middle is alive, its wrong continuation is not
        byte[] euro = "{\"a\":\"€".getBytes(StandardCharsets.UTF_8);
        assertTrue(run(g, java.util.Arrays.copyOf(euro, euro.length - 1), new int[1]) != null);
        assertTrue(run(g, concat(java.util.Arrays.copyOf(euro, euro.length - 1), new byte[]{'x'}), new int[1]) == null);
    }

    @Test
    void whitespaceIsBoundedInEachGapAndAbsentAfterTheDocument() {
        JsonGrammar g = JsonGrammar.anyObject();
        String pad = " ".repeat(JsonAutomaton.MAX_WHITESPACE);
        assertTrue(accepts(g, pad + "{" + pad + "\"a\"" + pad + ":" + pad + "1" + pad + "}"));
        assertFalse(alive(g, pad + " "));
        assertFalse(alive(g, "{\"a\":1" + pad + " "));
        assertFalse(alive(g, "{}\n"));
    }

    @Test
    void nestingStopsAtTheLimitWithScalarsStillOpen() {
        JsonGrammar g = JsonGrammar.anyObject();
        String deep = "{\"a\":" + "[".repeat(JsonGrammar.MAX_NESTING - 1);
        assertTrue(alive(g, deep));
        assertFalse(alive(g, deep + "["));
        assertFalse(alive(g, deep + "{"));
        assertTrue(accepts(g, deep + "1" + "]".repeat(JsonGrammar.MAX_NESTING - 1) + "}"));
    }

    @Test
    void aSchemaOfTheSubsetIsEnforced() {
        JsonGrammar g = JsonGrammar.compile(PERSON);
        for (String doc : List.of("{\"name\":\"x\",\"age\":3}", "{\"age\":-3,\"name\":\"\"}",
                "{\"name\":\"x\",\"age\":0,\"tags\":[],\"kind\":\"b\\\"c\",\"score\":null}",
                "{\"name\":\"x\",\"age\":1,\"tags\":[\"p\",\"q\"],\"kind\":2.5,\"score\":-1.5e3}",
                "{\"kind\":null,\"name\":\"x\",\"age\":1}", "{\"kind\":true,\"name\":\"x\",\"age\":1}")) {
            assertTrue(accepts(g, doc), doc);
            assertEquals(List.of(), SchemaCheck.violations(PERSON, doc), doc);
        }
        assertFalse(alive(g, "{\"name\":\"x\"}"), "age is required");
        assertFalse(alive(g, "{}"));
        assertFalse(alive(g, "{\"f"), "no additional properties");
        assertFalse(alive(g, "{\"name\":\"x\",\"name\""), "no property twice");
        assertFalse(alive(g, "{\"age\":3.5"), "an integer has no fraction");
        assertFalse(alive(g, "{\"age\":1e3"), "nor an exponent");
        assertFalse(alive(g, "{\"age\":\"3\""));
        assertFalse(alive(g, "{\"tags\":[\"a\",\"b\","), "at most 2 tags");
        assertFalse(alive(g, "{\"kind\":\"c"));
        assertFalse(alive(g, "{\"kind\":10"), "1 is in the enum, 10 is not");
        assertFalse(alive(g, "{\"kind\":false"));
        assertFalse(alive(g, "{\"score\":true"));
        assertFalse(alive(g, "{\"na\\u006de\":"), "no \\u escape in keys of a listed object");
        assertFalse(alive(g, "{\"name\":\"x\",\"age\":1,\"kind\":\"a\",\"tags\":[],\"score\":1,"), "no key left for a comma");
        assertFalse(accepts(g, "[]"));
        assertTrue(alive(g, "{\"name\":\"x\",\"age\":1,\"kind\":\"a\",\"tags\":[],\"score\":1}"));
    }

    @Test
    void additionalPropertiesTrueOrASchemaAllowOtherKeysButNotAListedOneTwice() {
        String schema = "{\"type\":\"object\",\"properties\":{\"ab\":{\"type\":\"integer\"}},\"additionalProperties\":{\"type\":\"boolean\"}}";
        JsonGrammar g = JsonGrammar.compile(schema);
        assertTrue(accepts(g, "{\"ab\":1,\"a\":true,\"abc\":false}"));
        assertFalse(alive(g, "{\"a\":1"), "another key takes the additionalProperties schema");
        assertFalse(alive(g, "{\"ab\":1,\"ab\""), "a listed key once only, also when other keys are allowed");
        assertTrue(alive(g, "{\"ab\":1,\"ab"), "... but it may still become another key");
        JsonGrammar open = JsonGrammar.compile("{\"type\":\"object\"}");
        assertTrue(accepts(open, "{\"x\":[1,{\"y\":null}]}"), "an object schema without properties takes any object");
        JsonGrammar closed = JsonGrammar.compile("{\"type\":\"object\",\"properties\":{\"a\":{}}}");
        assertFalse(alive(closed, "{\"b"), "properties without additionalProperties: only the listed ones are written");
        assertTrue(accepts(closed, "{\"a\":[\"anything\"]}"));
        assertTrue(accepts(closed, "{}"));
    }

    @Test
    void arraysCountTheirItems() {
        JsonGrammar g = JsonGrammar.compile("{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":2,\"maxItems\":3}");
        assertFalse(alive(g, "[]"));
        assertFalse(alive(g, "[1]"));
        assertTrue(accepts(g, "[1,2]"));
        assertTrue(accepts(g, "[1, 2, 3]"));
        assertFalse(alive(g, "[1,2,3,"));
        JsonGrammar none = JsonGrammar.compile("{\"type\":\"array\",\"maxItems\":0}");
        assertTrue(accepts(none, "[]"));
        assertFalse(alive(none, "[1"));
        assertFalse(alive(none, "[ "+"1"));
    }

    @Test
    void refsConstsTypeUnionsAndTopLevelScalars() {
        String schema = """
                {"$defs": {"point": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"const": 0}},
                                     "required": ["x", "y"], "additionalProperties": false}},
                 "type": "object", "properties": {"p": {"$ref": "#/$defs/point"}, "q": {"$ref": "#/$defs/point"},
                 "s": {"type": ["string", "null"]}}, "required": ["p"], "additionalProperties": false}""";
        JsonGrammar g = JsonGrammar.compile(schema);
        assertTrue(accepts(g, "{\"p\":{\"x\":1.5,\"y\":0},\"s\":null}"));
        assertTrue(accepts(g, "{\"p\":{\"y\":0,\"x\":-2},\"q\":{\"x\":0,\"y\":0},\"s\":\"t\"}"));
        assertFalse(alive(g, "{\"p\":{\"x\":1,\"y\":1"));
        assertFalse(alive(g, "{\"s\":1"));
        JsonGrammar number = JsonGrammar.compile("{\"type\":\"number\"}");
        assertTrue(accepts(number, "12.5"));
        assertTrue(accepts(number, " 0"));
        assertFalse(accepts(number, "12."));
        assertTrue(accepts(JsonGrammar.compile("{\"enum\":[1,10]}"), "1"));
        assertTrue(accepts(JsonGrammar.compile("{\"enum\":[1,10]}"), "10"));
        assertFalse(alive(JsonGrammar.compile("{\"enum\":[1,10]}"), "100"));
        assertTrue(accepts(JsonGrammar.compile("{\"type\":\"integer\",\"enum\":[2.0, 3.5]}"), "2"), "an integral enum value of an integer is written as an integer");
        assertTrue(accepts(JsonGrammar.compile("true"), "{\"any\":[]}"));
        assertTrue(accepts(JsonGrammar.compile("{}"), "\"s\""));
        assertSame(JsonGrammar.compile(schema), JsonGrammar.compile(schema), "compiled once");
    }

    @Test
    void keywordsOutsideTheSubsetAreRefusedByName() {
        String[][] cases = {
                {"{\"type\":\"string\",\"pattern\":\"^a$\"}", "pattern", "/"},
                {"{\"type\":\"object\",\"properties\":{\"e\":{\"type\":\"string\",\"format\":\"email\"}}}", "format", "/properties/e"},
                {"{\"anyOf\":[{\"type\":\"string\"}]}", "anyOf", "/"},
                {"{\"type\":\"array\",\"items\":{\"type\":\"string\",\"minLength\":2}}", "minLength", "/items"},
                {"{\"type\":\"array\",\"items\":[{\"type\":\"string\"}]}", "items", "/"},
                {"{\"type\":\"integer\",\"minimum\":0}", "minimum", "/"},
                {"{\"$defs\":{\"n\":{\"type\":\"object\",\"properties\":{\"next\":{\"$ref\":\"#/$defs/n\"}}}},\"$ref\":\"#/$defs/n\"}", "$ref", "/$defs/n/properties/next"},
                {"{\"$ref\":\"https://example.com/s.json\"}", "$ref", "/"},
                {"{\"type\":\"array\",\"maxItems\":1000}", "maxItems", "/"},
                {"{\"enum\":[{\"a\":1}]}", "enum", "/"},
                {"{\"type\":\"object\",\"patternProperties\":{}}", "patternProperties", "/"},
        };
        for (String[] c : cases) {
            var e = assertThrows(UnsupportedSchemaException.class, () -> JsonGrammar.compile(c[0]), c[0]);
            assertEquals(c[1], e.keyword(), c[0]);
            assertEquals(c[2], e.path(), c[0]);
            assertTrue(e.getMessage().contains("\"" + c[1] + "\" at " + c[2] + " is not supported"), e.getMessage());
        }
        StringBuilder many = new StringBuilder("{\"type\":\"object\",\"properties\":{");
        for (int i = 0; i < 64; i++) many.append(i == 0 ? "" : ",").append("\"p").append(i).append("\":{}");
        assertEquals("properties", assertThrows(UnsupportedSchemaException.class, () -> JsonGrammar.compile(many + "}}")).keyword());
    }

    @Test
    void schemasThatCannotBeSatisfiedOrAreNotSchemasAreRefused() {
        for (String bad : List.of("false", "{\"enum\":[]}", "{\"type\":\"string\",\"enum\":[1]}",
                "{\"type\":\"object\",\"properties\":{\"a\":false}}", "{\"type\":\"object\",\"required\":[\"x\"],\"properties\":{},\"additionalProperties\":false}",
                "{\"type\":\"array\",\"minItems\":3,\"maxItems\":2}", "{\"type\":\"text\"}", "[1]", "{\"type\":", "{\"$ref\":\"#/$defs/missing\"}")) {
            var e = assertThrows(JnextException.class, () -> JsonGrammar.compile(bad), bad);
            assertFalse(e instanceof UnsupportedSchemaException, bad + ": " + e.getMessage());
        }
        String deep = "{\"type\":\"array\",\"items\":".repeat(JsonGrammar.MAX_NESTING + 1) + "{}" + "}".repeat(JsonGrammar.MAX_NESTING + 1);
        assertThrows(JnextException.class, () -> JsonGrammar.compile(deep));
        StringBuilder chain = new StringBuilder("{\"$ref\":\"#/$defs/d0\",\"$defs\":{");
        for (int i = 0; i < 5000; i++) chain.append("\"d").append(i).append("\":{\"$ref\":\"#/$defs/d").append(i + 1).append("\"},");
        chain.append("\"d5000\":{\"type\":\"null\"}}}");
        assertEquals("$ref", assertThrows(UnsupportedSchemaException.class, () -> JsonGrammar.compile(chain.toString())).keyword(),
                "a long chain of references is refused, not a stack overflow");
    }

    /**
     * Random walks over bytes: from every state a walk reaches, some byte or the end is possible and a document can
     * still be completed (a breadth-first search finds the shortest completion), and every document completed so is
     * JSON that the schema accepts (checked independently by {@link SchemaCheck}).
     */
    @Test
    void randomWalksNeverDeadEndAndEndInValidDocuments() throws Exception {
        String any = "{\"type\":\"object\"}";
        String[] schemas = {PERSON, any, "{\"type\":\"array\",\"items\":{\"enum\":[\"x\",\"yy\",3]},\"minItems\":1,\"maxItems\":4}",
                "{\"type\":\"object\",\"properties\":{\"ab\":{\"type\":\"integer\"},\"abc\":{\"type\":\"boolean\"}},\"required\":[\"abc\"],"
                        + "\"additionalProperties\":{\"type\":[\"string\",\"null\"]}}"};
        ObjectMapper json = new ObjectMapper();
        SplittableRandom random = new SplittableRandom(7);
        for (String schema : schemas) {
            JsonGrammar g = schema.equals(any) ? JsonGrammar.anyObject() : JsonGrammar.compile(schema);
            for (int walk = 0; walk < 60; walk++) {
                long[] st = JsonAutomaton.newStack();
                int size = JsonAutomaton.start(g, st);
                List<Byte> out = new ArrayList<>();
                int length = random.nextInt(80);
                for (int step = 0; step < length; step++) {
                    List<Integer> live = new ArrayList<>();
                    for (int b = 0; b < 256; b++) {
                        long[] copy = st.clone();
                        if (JsonAutomaton.feed(g, copy, size, b) >= 0) live.add(b);
                    }
                    boolean end = JsonAutomaton.canEnd(g, st, size);
                    assertTrue(end || !live.isEmpty(), "a dead end after " + new String(bytes(out), StandardCharsets.UTF_8));
                    if (live.isEmpty()) break;
                    int b = live.get(random.nextInt(live.size()));
                    size = JsonAutomaton.feed(g, st, size, b);
                    out.add((byte) b);
                }
                byte[] rest = shortestCompletion(g, st, size);
                assertTrue(rest != null, "no completion of " + new String(bytes(out), StandardCharsets.UTF_8));
                String doc = new String(concat(bytes(out), rest), StandardCharsets.UTF_8);
                assertTrue(accepts(g, doc), doc);
                json.readTree(doc);
                // keys outside the listed properties may repeat (JSON allows it): not checked where other keys are allowed
                assertEquals(List.of(), SchemaCheck.violations(schema, doc, schema.equals(PERSON)
                        || schema.startsWith("{\"type\":\"array\"")), doc);
            }
        }
    }

    /** The shortest bytes that complete a document from a state (breadth-first over distinct states), or null. */
    static byte[] shortestCompletion(JsonGrammar g, long[] st, int size) {
        record Item(long[] st, int size, byte[] path) {}
        java.util.ArrayDeque<Item> queue = new java.util.ArrayDeque<>();
        java.util.Set<java.nio.LongBuffer> seen = new java.util.HashSet<>();
        long[] first = java.util.Arrays.copyOf(st, 2 * size);
        queue.add(new Item(first, size, new byte[0]));
        seen.add(java.nio.LongBuffer.wrap(first));
        while (!queue.isEmpty() && seen.size() < 200_000) {
            Item it = queue.poll();
            if (JsonAutomaton.canEnd(g, it.st, it.size)) return it.path;
            for (int b = 0; b < 256; b++) {
                if (b == ' ' || b == '\n' || b == '\t' || b == '\r') continue; // never needed to complete
                long[] next = java.util.Arrays.copyOf(it.st, 2 * JsonAutomaton.MAX_FRAMES);
                int s = JsonAutomaton.feed(g, next, it.size, b);
                if (s < 0) continue;
                long[] state = java.util.Arrays.copyOf(next, 2 * s);
                if (!seen.add(java.nio.LongBuffer.wrap(state))) continue;
                byte[] path = java.util.Arrays.copyOf(it.path, it.path.length + 1);
                path[path.length - 1] = (byte) b;
                queue.add(new Item(state, s, path));
            }
        }
        return null;
    }

    private static byte[] bytes(List<Byte> list) {
        byte[] b = new byte[list.size()];
        for (int i = 0; i < b.length; i++) b[i] = list.get(i);
        return b;
    }

    static byte[] concat(byte[]... parts) {
        int n = 0;
        for (byte[] p : parts) n += p.length;
        byte[] out = new byte[n];
        int at = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }
}
