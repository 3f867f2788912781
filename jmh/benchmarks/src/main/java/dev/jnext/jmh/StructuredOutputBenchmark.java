package dev.jnext.jmh;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jnext.backend.TokenMask;
import dev.jnext.structured.JsonConstraint;
import dev.jnext.structured.JsonGrammar;
import dev.jnext.structured.TokenMasks;
import dev.jnext.tokenizer.QwenTokenizer;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The host cost of structured output per decode step (issue 18): {@code batch} sequences, each replaying the tokens of
 * a JSON document (a realistic extraction schema, or free JSON objects; compact and pretty-printed, drawn at random,
 * tokenized with the Qwen3 tokenizer) as if the model had sampled them. One step = for every sequence the next
 * token's mask ({@link JsonConstraint#mask()}) and taking the sampled token ({@link JsonConstraint#advance}); a
 * finished document ends with EOS and the sequence starts another. {@code cache}: {@code on} is the server's mask
 * cache, warmed by the warm-up iterations (a schema seen before); {@code off} computes every mask (the worst case:
 * every state new). {@link #applyDenseMask} is the sampler's share: one row of 151,936 logits masked (per sequence, run on
 * the sampling threads). Run from the repository root (it reads {@code .cache/tokenizer-qwen3}).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
public class StructuredOutputBenchmark {
    static final String SCHEMA = """
            {"type": "object", "additionalProperties": false, "required": ["name", "age", "email", "tags", "address", "active"],
             "properties": {
               "name": {"type": "string"}, "age": {"type": "integer"}, "email": {"type": "string"},
               "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
               "address": {"type": "object", "additionalProperties": false, "required": ["street", "city", "zip"],
                           "properties": {"street": {"type": "string"}, "city": {"type": "string"}, "zip": {"type": "string"}}},
               "active": {"type": "boolean"}, "score": {"type": ["number", "null"]},
               "role": {"enum": ["admin", "editor", "viewer"]}}}""";
    static final int VOCAB = 151_936;
    private static final String[] WORDS = ("alpha river stone maple quiet Paris north data engine cloud forest signal "
            + "amber copper market harbor violet summer orbit pixel garden thunder canyon lantern 東京 Zürich café naïve "
            + "über señor 数据 json model token value").split(" ");

    @Param({"1", "32"})
    public int batch;

    @Param({"schema", "object"})
    public String format;

    @Param({"on", "off"})
    public String cache;

    @Param({".cache/tokenizer-qwen3"})
    public String tokenizer;

    private QwenTokenizer tok;
    private TokenMasks masks;
    private JsonGrammar grammar;
    private int eos;
    private int[][] documents;
    private Sequence[] sequences;
    private int next;
    private float[] logits;
    private float[] row;
    private TokenMask dense;
    private TokenMask sparse;

    private final class Sequence {
        JsonConstraint constraint;
        int[] doc;
        int at;

        void restart() {
            constraint = new JsonConstraint(masks, grammar, new int[]{eos}, -1);
            doc = documents[next++ % documents.length];
            at = 0;
        }

        int step() {
            TokenMask m = constraint.mask();
            int id = at < doc.length ? doc[at++] : eos;
            if (!m.allows(id) || !constraint.advance(id)) throw new IllegalStateException("token " + id + " refused");
            if (id == eos) restart();
            return m.count();
        }
    }

    @Setup(Level.Trial)
    public void setup() throws Exception {
        tok = QwenTokenizer.load(Path.of(tokenizer));
        masks = new TokenMasks(tok, VOCAB, cache.equals("on") ? -1 : 0);
        grammar = format.equals("schema") ? JsonGrammar.compile(SCHEMA) : JsonGrammar.anyObject();
        eos = tok.idOf("<|im_end|>").orElseThrow();
        ObjectMapper json = new ObjectMapper();
        SplittableRandom r = new SplittableRandom(42);
        List<int[]> docs = new ArrayList<>();
        for (int i = 0; i < 64; i++) {
            ObjectNode doc = format.equals("schema") ? person(json, r) : freeObject(json, r, 0);
            String text = i % 2 == 0 ? json.writeValueAsString(doc) : json.writerWithDefaultPrettyPrinter().writeValueAsString(doc);
            docs.add(tok.encode(text));
        }
        documents = docs.toArray(int[][]::new);
        sequences = new Sequence[batch];
        for (int i = 0; i < batch; i++) {
            sequences[i] = new Sequence();
            sequences[i].restart();
            for (int k = r.nextInt(documents[0].length); k > 0; k--) sequences[i].step(); // sequences at different places
        }
        logits = new float[VOCAB];
        for (int i = 0; i < VOCAB; i++) logits[i] = (float) r.nextGaussian();
        row = new float[VOCAB];
        JsonConstraint inString = new JsonConstraint(masks, JsonGrammar.anyObject(), new int[]{eos}, -1);
        for (int id : tok.encode("{\"a\": \"text")) inString.advance(id);
        dense = inString.mask();
        JsonConstraint afterValue = new JsonConstraint(masks, JsonGrammar.anyObject(), new int[]{eos}, -1);
        for (int id : tok.encode("{\"a\": 1")) afterValue.advance(id);
        sparse = afterValue.mask();
    }

    private static String words(SplittableRandom r, int n) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < n; i++) b.append(i == 0 ? "" : " ").append(WORDS[r.nextInt(WORDS.length)]);
        return b.toString();
    }

    private static ObjectNode person(ObjectMapper json, SplittableRandom r) {
        ObjectNode o = json.createObjectNode();
        o.put("name", words(r, 2));
        o.put("age", r.nextInt(100));
        o.put("email", WORDS[r.nextInt(WORDS.length)] + "@example.com");
        ArrayNode tags = o.putArray("tags");
        for (int i = r.nextInt(4); i > 0; i--) tags.add(words(r, 1));
        ObjectNode a = o.putObject("address");
        a.put("street", r.nextInt(200) + " " + words(r, 2) + " Street");
        a.put("city", words(r, 1));
        a.put("zip", String.valueOf(10000 + r.nextInt(90000)));
        o.put("active", r.nextBoolean());
        if (r.nextBoolean()) o.put("score", r.nextInt(1000) / 10.0);
        if (r.nextBoolean()) o.put("role", new String[]{"admin", "editor", "viewer"}[r.nextInt(3)]);
        return o;
    }

    private static ObjectNode freeObject(ObjectMapper json, SplittableRandom r, int depth) {
        ObjectNode o = json.createObjectNode();
        for (int i = 1 + r.nextInt(5); i > 0; i--) {
            String key = words(r, 1) + (r.nextBoolean() ? "_" + r.nextInt(10) : "");
            switch (depth < 2 ? r.nextInt(6) : r.nextInt(4)) {
                case 0 -> o.put(key, words(r, 1 + r.nextInt(6)));
                case 1 -> o.put(key, r.nextInt(100000) - 500);
                case 2 -> o.put(key, r.nextDouble() * 100);
                case 3 -> o.put(key, r.nextBoolean());
                case 4 -> o.set(key, freeObject(json, r, depth + 1));
                default -> {
                    ArrayNode a = o.putArray(key);
                    for (int k = r.nextInt(4); k > 0; k--) a.add(words(r, 1));
                }
            }
        }
        return o;
    }

    /** One decode step's masks and advances over the batch, on one thread (the engine thread's share). */
    @Benchmark
    public int step() {
        int allowed = 0;
        for (Sequence s : sequences) allowed += s.step();
        return allowed;
    }

    /**
     * One row of logits masked, as the CPU sampler does before sampling: a mask inside a string (most ids allowed). Its
     * cost does not depend on the parameters (run it with one set).
     */
    @Benchmark
    public float applyDenseMask() {
        System.arraycopy(logits, 0, row, 0, VOCAB);
        dense.apply(row, VOCAB);
        return row[7];
    }

    /** The same with a mask after a value (a few hundred ids allowed). */
    @Benchmark
    public float applySparseMask() {
        System.arraycopy(logits, 0, row, 0, VOCAB);
        sparse.apply(row, VOCAB);
        return row[7];
    }

    /** The copy alone, the baseline of the two above (the sampler copies the row anyway). */
    @Benchmark
    public float copyRow() {
        System.arraycopy(logits, 0, row, 0, VOCAB);
        return row[7];
    }
}
