package dev.jnext.fuzz;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import dev.jnext.JnextException;
import dev.jnext.model.weights.Checkpoint;
import dev.jnext.model.DType;
import dev.jnext.model.SyntheticCheckpoint;
import dev.jnext.model.TinyModels;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.Example;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;
import net.jqwik.api.lifecycle.AfterContainer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzzes model.safetensors.index.json against a real 10-shard checkpoint: entries removed, added, pointed at another
 * shard, a missing file, a path outside the folder or a non-string; weight_map replaced; the text truncated, followed
 * by garbage or given invalid UTF-8. Opening the checkpoint fails with a one-line message naming the index or the
 * folder, or succeeds, and then weight_map lists exactly the tensors the shards hold.
 */
class IndexFuzzTest {
    static final FuzzTally TALLY = new FuzzTally("model.safetensors.index.json (Checkpoint.open)");
    static final Duration BOUND = Duration.ofSeconds(5);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static Path tmp;
    private static Path checkpoint;

    record Mutation(String name, UnaryOperator<byte[]> op) {
        @Override
        public String toString() {
            return name;
        }
    }

    /** The sharded checkpoint the corpus indexes describe (its base.json is this checkpoint's own index). */
    static synchronized Path checkpoint() throws IOException {
        if (checkpoint == null) {
            tmp = Files.createTempDirectory("jnext-fuzz-index");
            checkpoint = TinyModels.write(tmp.resolve("sharded"), TinyModels.config(true, DType.BF16), 3,
                    SyntheticCheckpoint.ExpertLayout.HUB, 20_000);
        }
        return checkpoint;
    }

    @AfterContainer
    static void report() throws IOException {
        TALLY.report();
        if (tmp != null) {
            try (var s = Files.walk(tmp)) {
                for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
            }
        }
    }

    @Example
    void everyCorpusInputHasItsExpectedOutcome() throws IOException {
        Path index = checkpoint().resolve(Checkpoint.INDEX_FILE);
        assertEquals(JSON.readTree(Files.readAllBytes(index)),
                JSON.readTree(Corpus.dir("index").resolve("base.json").toFile()), "the corpus describes this checkpoint");
        Path dir = checkpoint();
        for (Corpus.Entry e : Corpus.entries("index")) {
            FuzzTally.Outcome o = check(e.bytes());
            assertEquals(e.accepted(), o == FuzzTally.Outcome.ACCEPTED, e.name());
            if (!e.accepted()) {
                String m = assertThrowsJnext(() -> Checkpoint.open(dir).close());
                assertTrue(m.contains(e.phrase()), e.name() + ": " + m);
            }
        }
    }

    @Property(tries = 150)
    void mutatedIndexesFailCleanlyOrAccountForEveryTensor(@ForAll("indexes") byte[] index) throws IOException {
        check(index);
    }

    static FuzzTally.Outcome check(byte[] index) throws IOException {
        Path dir = checkpoint();
        Files.write(dir.resolve(Checkpoint.INDEX_FILE), index);
        return TALLY.run(List.of(dir.toString()), BOUND, () -> {
            try (Checkpoint c = Checkpoint.open(dir)) {
                Set<String> listed = new HashSet<>();
                JSON.readTree(index).get("weight_map").fieldNames().forEachRemaining(listed::add);
                assertEquals(listed, c.tensors().keySet());
            }
            return null;
        });
    }

    private static String assertThrowsJnext(Runnable r) {
        try {
            r.run();
        } catch (JnextException e) {
            return e.getMessage();
        }
        throw new AssertionError("expected a JnextException");
    }

    // ---- inputs -------------------------------------------------------------------------------------------

    @Provide
    Arbitrary<byte[]> indexes() {
        List<byte[]> seeds = new ArrayList<>();
        for (Corpus.Entry e : Corpus.entries("index")) seeds.add(e.bytes());
        return Combinators.combine(Arbitraries.of(seeds), mutation().list().ofMinSize(1).ofMaxSize(3))
                .as((seed, ms) -> {
                    byte[] c = seed.clone();
                    for (Mutation m : ms) c = m.op().apply(c);
                    return c;
                });
    }

    static Arbitrary<Mutation> mutation() {
        Arbitrary<Integer> at = Arbitraries.integers().between(0, 100_000);
        Arbitrary<String> values = Arbitraries.of("model-00001-of-00010.safetensors", "model-00010-of-00010.safetensors",
                "gone.safetensors", "../sharded/model-00002-of-00010.safetensors", "", "/etc/passwd", "config.json",
                "model.safetensors.index.json");
        return Arbitraries.frequencyOf(
                Tuple.of(3, at.map(i -> new Mutation("remove entry " + i, c -> weightMap(c, (wm, names) -> {
                    if (!names.isEmpty()) wm.remove(names.get(i % names.size()));
                })))),
                Tuple.of(3, Combinators.combine(at, values).as((i, v) -> new Mutation("entry " + i + " := " + v,
                        c -> weightMap(c, (wm, names) -> {
                            if (!names.isEmpty()) wm.set(names.get(i % names.size()), TextNode.valueOf(v));
                        })))),
                Tuple.of(1, Combinators.combine(Arbitraries.of("model.extra.weight", "mtp.fc.weight", ""), values)
                        .as((name, v) -> new Mutation("add " + name + " := " + v, c -> weightMap(c, (wm, names) -> wm.put(name, v))))),
                Tuple.of(1, at.map(i -> new Mutation("entry " + i + " := 7", c -> weightMap(c, (wm, names) -> {
                    if (!names.isEmpty()) wm.put(names.get(i % names.size()), 7);
                })))),
                Tuple.of(1, Arbitraries.of("{}", "[]", "null", "\"x\"").map(v -> new Mutation("weight_map := " + v, c -> {
                    try {
                        JsonNode root = JSON.readTree(c);
                        if (root instanceof ObjectNode o) o.set("weight_map", JSON.readTree(v));
                        return JSON.writeValueAsBytes(root);
                    } catch (IOException e) {
                        return c;
                    }
                }))),
                Tuple.of(1, at.map(i -> new Mutation("truncate at " + i, c -> Arrays.copyOf(c, i % (c.length + 1))))),
                Tuple.of(1, Arbitraries.of("x", "{}", "]", "\u0000").map(junk -> new Mutation("append " + junk.codePoints().boxed().toList(), c -> {
                    byte[] j = junk.getBytes(StandardCharsets.UTF_8);
                    byte[] out = Arrays.copyOf(c, c.length + j.length);
                    System.arraycopy(j, 0, out, c.length, j.length);
                    return out;
                }))),
                Tuple.of(1, at.map(i -> new Mutation("byte 0xFF at " + i, c -> {
                    byte[] out = c.clone();
                    if (out.length > 0) out[i % out.length] = (byte) 0xff;
                    return out;
                }))));
    }

    private interface WeightMapEdit {
        void apply(ObjectNode weightMap, List<String> names);
    }

    private static byte[] weightMap(byte[] index, WeightMapEdit edit) {
        try {
            JsonNode root = JSON.readTree(index);
            if (!(root instanceof ObjectNode o) || !(o.get("weight_map") instanceof ObjectNode wm)) return index;
            List<String> names = new ArrayList<>();
            wm.fieldNames().forEachRemaining(names::add);
            edit.apply(wm, names);
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(root);
        } catch (IOException e) {
            return index;
        }
    }
}
