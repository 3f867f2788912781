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
import dev.jnext.fuzz.Mutant.Mutation;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.RepetitionInfo;
import org.junit.jupiter.api.Test;

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
import java.util.SplittableRandom;

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

    /** The sharded checkpoint the corpus indexes describe (its base.json is this checkpoint's own index). */
    static synchronized Path checkpoint() throws IOException {
        if (checkpoint == null) {
            tmp = Files.createTempDirectory("jnext-fuzz-index");
            checkpoint = TinyModels.write(tmp.resolve("sharded"), TinyModels.config(true, DType.BF16), 3,
                    SyntheticCheckpoint.ExpertLayout.HUB, 20_000);
        }
        return checkpoint;
    }

    @AfterAll
    static void report() throws IOException {
        TALLY.report();
        if (tmp != null) {
            try (var s = Files.walk(tmp)) {
                for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
            }
        }
    }

    @Test
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

    @RepeatedTest(value = 300, failureThreshold = 1)
    void mutatedIndexesFailCleanlyOrAccountForEveryTensor(RepetitionInfo repetition) throws Throwable {
        Tries.check(repetition, r -> Mutant.draw(r, Corpus.seeds("index"), 1, 3, IndexFuzzTest::mutation),
                m -> check(m.bytes()));
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

    static final List<String> FILES = List.of("model-00001-of-00010.safetensors", "model-00010-of-00010.safetensors",
            "gone.safetensors", "../sharded/model-00002-of-00010.safetensors", "", "/etc/passwd", "config.json",
            "model.safetensors.index.json");

    static Mutation mutation(SplittableRandom r) {
        int at = Tries.between(r, 0, 100_000);
        String v = Tries.pick(r, FILES);
        return switch (r.nextInt(12)) { // 3 in 12 remove an entry, 3 in 12 repoint one, 1 in 12 each of the others
            case 0, 1, 2 -> new Mutation("remove entry " + at, c -> weightMap(c, (wm, names) -> {
                if (!names.isEmpty()) wm.remove(names.get(at % names.size()));
            }));
            case 3, 4, 5 -> new Mutation("entry " + at + " := " + v, c -> weightMap(c, (wm, names) -> {
                if (!names.isEmpty()) wm.set(names.get(at % names.size()), TextNode.valueOf(v));
            }));
            case 6 -> {
                String name = Tries.pick(r, List.of("model.extra.weight", "mtp.fc.weight", ""));
                yield new Mutation("add " + name + " := " + v, c -> weightMap(c, (wm, names) -> wm.put(name, v)));
            }
            case 7 -> new Mutation("entry " + at + " := 7", c -> weightMap(c, (wm, names) -> {
                if (!names.isEmpty()) wm.put(names.get(at % names.size()), 7);
            }));
            case 8 -> {
                String map = Tries.pick(r, List.of("{}", "[]", "null", "\"x\""));
                yield new Mutation("weight_map := " + map, c -> {
                    try {
                        JsonNode root = JSON.readTree(c);
                        if (root instanceof ObjectNode o) o.set("weight_map", JSON.readTree(map));
                        return JSON.writeValueAsBytes(root);
                    } catch (IOException e) {
                        return c;
                    }
                });
            }
            case 9 -> new Mutation("truncate at " + at, c -> Arrays.copyOf(c, at % (c.length + 1)));
            case 10 -> {
                String junk = Tries.pick(r, List.of("x", "{}", "]", "\u0000"));
                yield new Mutation("append " + junk.codePoints().boxed().toList(), c -> {
                    byte[] j = junk.getBytes(StandardCharsets.UTF_8);
                    byte[] out = Arrays.copyOf(c, c.length + j.length);
                    System.arraycopy(j, 0, out, c.length, j.length);
                    return out;
                });
            }
            default -> new Mutation("byte 0xFF at " + at, c -> {
                byte[] out = c.clone();
                if (out.length > 0) out[at % out.length] = (byte) 0xff;
                return out;
            });
        };
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
