package dev.jnext.fuzz;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jnext.JnextException;
import dev.jnext.model.DType;
import dev.jnext.model.weights.SafeTensorsFile;
import dev.jnext.model.weights.Tensor;
import dev.jnext.fuzz.Mutant.Mutation;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.RepetitionInfo;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzzes {@link SafeTensorsFile}: mutations of a small valid file and of the corpus (header length off by a few
 * bytes, bytes flipped or inserted in the header, junk after the JSON, extreme shapes and offsets, unknown dtypes,
 * added/removed tensors, truncation, appended bytes). Every input is rejected with a one-line message naming the
 * file, or accepted — and then an independent check confirms what the format requires: the header is one JSON
 * object padded with spaces, every tensor's offsets hold exactly its shape × dtype bytes, the tensors tile the data
 * section, and each tensor's bytes are the file's.
 */
class SafeTensorsFuzzTest {
    static final FuzzTally TALLY = new FuzzTally("safetensors headers (SafeTensorsFile.map)");
    static final Duration BOUND = Duration.ofSeconds(2);
    private static final ObjectMapper STRICT = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    private static Path tmp;

    static synchronized Path tmp() throws IOException {
        if (tmp == null) tmp = Files.createTempDirectory("jnext-fuzz-safetensors");
        return tmp;
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
        for (Corpus.Entry e : Corpus.entries("safetensors")) {
            FuzzTally.Outcome o = check(e.bytes(), e.name());
            assertEquals(e.accepted(), o == FuzzTally.Outcome.ACCEPTED, e.name());
            if (!e.accepted()) {
                String m = message(e.bytes(), e.name());
                assertTrue(m.contains(e.phrase()), e.name() + ": " + m);
            }
        }
    }

    @RepeatedTest(value = 2000, failureThreshold = 1)
    void mutatedFilesAreRejectedCleanlyOrFollowTheFormat(RepetitionInfo repetition) throws Throwable {
        Tries.check(repetition, SafeTensorsFuzzTest::file, m -> check(m.bytes(), "fuzz.safetensors"));
    }

    static FuzzTally.Outcome check(byte[] bytes, String name) throws IOException {
        Path f = tmp().resolve(name);
        Files.write(f, bytes);
        return TALLY.run(List.of(f.toString()), BOUND, () -> {
            try (Arena arena = Arena.ofConfined()) {
                Map<String, Tensor> tensors = SafeTensorsFile.map(f, arena);
                assertFollowsTheFormat(bytes, tensors);
            }
            return null;
        });
    }

    static String message(byte[] bytes, String name) throws IOException {
        Path f = tmp().resolve(name);
        Files.write(f, bytes);
        try (Arena arena = Arena.ofConfined()) {
            SafeTensorsFile.map(f, arena);
            return "accepted";
        } catch (JnextException e) {
            return e.getMessage().replace(f.toString(), "F");
        }
    }

    /** The format's rules, checked with exact arithmetic and without the reader's code. */
    static void assertFollowsTheFormat(byte[] f, Map<String, Tensor> tensors) throws IOException {
        long n = SafeTensorsBytes.headerLength(f);
        assertTrue(n >= 2 && n <= f.length - 8, "header length " + n);
        String header = new String(Arrays.copyOfRange(f, 8, 8 + (int) n), StandardCharsets.UTF_8);
        String json = header.replaceAll(" +$", "");
        JsonNode root = STRICT.readTree(json);
        assertTrue(root.isObject() && json.endsWith("}"), "header is one JSON object then spaces");
        long dataStart = 8 + n;
        List<long[]> spans = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getKey().equals("__metadata__")) continue;
            JsonNode t = e.getValue();
            BigInteger bytes = BigInteger.valueOf(DType.fromSafetensors(t.get("dtype").asText(), "").bytes());
            for (JsonNode d : t.get("shape")) bytes = bytes.multiply(d.bigIntegerValue());
            long begin = t.get("data_offsets").get(0).longValue();
            long end = t.get("data_offsets").get(1).longValue();
            assertEquals(bytes, BigInteger.valueOf(end).subtract(BigInteger.valueOf(begin)), e.getKey());
            spans.add(new long[]{begin, end});
            byte[] expected = Arrays.copyOfRange(f, (int) (dataStart + begin), (int) (dataStart + end));
            assertTrue(Arrays.equals(expected, tensors.get(e.getKey()).data().toArray(ValueLayout.JAVA_BYTE)), e.getKey());
        }
        spans.sort(Comparator.<long[]>comparingLong(s -> s[0]).thenComparingLong(s -> s[1]));
        long covered = 0;
        for (long[] s : spans) {
            assertEquals(covered, s[0], "tensors tile the data section");
            covered = s[1];
        }
        assertEquals(f.length - dataStart, covered, "nothing after the last tensor");
    }

    // ---- inputs -------------------------------------------------------------------------------------------

    /** The small valid file or a corpus file, with up to three mutations. */
    static Mutant file(SplittableRandom r) {
        Map<String, byte[]> seeds = new LinkedHashMap<>();
        seeds.put("base", SafeTensorsBytes.base());
        seeds.putAll(Corpus.seeds("safetensors"));
        return Mutant.draw(r, seeds, 0, 3, SafeTensorsFuzzTest::mutation);
    }

    static final List<String> NUMBERS = List.of("0", "1", "2", "3", "4", "5", "8", "16", "36", "37", "-1", "1073741824",
            "2147483647", "2147483648", "4294967296", "9223372036854775807", "9223372036854775808",
            "18446744073709551616", "1e30", "1.5", "\"3\"", "null", "true", "[]");
    static final List<String> JUNK = List.of("xyz!", "{}", "\u0000\u0000\u0000", "\n", "\t", " ", "}", "null", ",",
            "\"", "{\"a\":1}", "\u00ff");
    static final List<Long> HEADER_LENGTHS = List.of(0L, 1L, 2L, 7L, 100L * 1024 * 1024 + 1, Long.MAX_VALUE, -1L, Long.MIN_VALUE);
    static final byte[] HEADER_BYTES = {'{', '}', '"', ',', ':', '[', ']', ' ', '0', '9', '-', 'e', 0, (byte) 0xff, (byte) 0xc3, 'x'};

    static Mutation mutation(SplittableRandom r) {
        int at = Tries.between(r, 0, 4096);
        return switch (r.nextInt(14)) {
            case 0 -> {
                long d = Tries.between(r, 1, 16) * (r.nextBoolean() ? 1L : -1L);
                yield new Mutation("header length " + d,
                        f -> SafeTensorsBytes.withHeaderLength(f, SafeTensorsBytes.headerLength(f) + d));
            }
            case 1 -> {
                long v = Tries.pick(r, HEADER_LENGTHS);
                yield new Mutation("header length := " + v, f -> SafeTensorsBytes.withHeaderLength(f, v));
            }
            case 2 -> {
                byte b = HEADER_BYTES[r.nextInt(HEADER_BYTES.length)];
                yield new Mutation("header byte " + at + " := " + b, f -> {
                    byte[] h = SafeTensorsBytes.header(f);
                    if (h == null || h.length == 0) return f;
                    byte[] out = f.clone();
                    out[8 + at % h.length] = b;
                    return out;
                });
            }
            case 3 -> {
                String junk = Tries.pick(r, JUNK);
                boolean fix = r.nextBoolean();
                yield new Mutation("insert " + junk.codePoints().boxed().toList() + " at " + at + (fix ? "" : " (length kept)"),
                        f -> SafeTensorsBytes.insertIntoHeader(f, at, junk.getBytes(StandardCharsets.UTF_8), fix));
            }
            case 4 -> {
                String junk = Tries.pick(r, JUNK);
                yield new Mutation("after the JSON: " + junk.codePoints().boxed().toList(), f -> {
                    int end = SafeTensorsBytes.endOfJson(f);
                    return end < 0 ? f : SafeTensorsBytes.insertIntoHeader(f, end, junk.getBytes(StandardCharsets.UTF_8), true);
                });
            }
            case 5 -> {
                int d = Tries.between(r, 0, 4096);
                String v = Tries.pick(r, NUMBERS);
                yield new Mutation("shape dim := " + v, f -> editEntry(f, at, e -> {
                    if (e.get("shape") instanceof ArrayNode a && !a.isEmpty()) a.set(d % a.size(), parse(v));
                }));
            }
            case 6 -> {
                int i = r.nextInt(2);
                String v = Tries.pick(r, NUMBERS);
                yield new Mutation("data_offsets[" + i + "] := " + v, f -> editEntry(f, at, e -> {
                    if (e.get("data_offsets") instanceof ArrayNode a && a.size() == 2) a.set(i, parse(v));
                }));
            }
            case 7 -> {
                String dt = Tries.pick(r, List.of("F32", "BF16", "F16", "I64", "F8_E4M3", "BOOL", "", "f32"));
                yield new Mutation("dtype := " + dt, f -> editEntry(f, at, e -> e.put("dtype", dt)));
            }
            case 8 -> {
                String key = Tries.pick(r, List.of("shape", "dtype", "data_offsets", "extra"));
                yield new Mutation("drop or add key " + key, f -> editEntry(f, at, e -> {
                    if (e.has(key)) e.remove(key);
                    else e.put(key, 1);
                }));
            }
            case 9 -> {
                String name = Tries.pick(r, List.of("mtp.x", "model.extra", "__metadata__", "w"));
                String shape = Tries.pick(r, List.of("[1073741824,1073741824,4]", "[0]", "[1]", "[2147483647,2147483647]", "[]", "[3]"));
                String off = Tries.pick(r, List.of("[0,0]", "[36,36]", "[36,40]", "[0,4]", "[-4,0]"));
                yield new Mutation("add " + name + " " + shape + " " + off, f -> {
                    ObjectNode tree = SafeTensorsBytes.tree(f);
                    if (tree == null) return f;
                    ObjectNode e = tree.putObject(name);
                    e.put("dtype", "F32");
                    e.set("shape", parse(shape));
                    e.set("data_offsets", parse(off));
                    return SafeTensorsBytes.withTree(f, tree);
                });
            }
            case 10 -> new Mutation("remove tensor " + at, f -> {
                ObjectNode tree = SafeTensorsBytes.tree(f);
                if (tree == null || tree.isEmpty()) return f;
                List<String> names = new ArrayList<>();
                tree.fieldNames().forEachRemaining(names::add);
                tree.remove(names.get(at % names.size()));
                return SafeTensorsBytes.withTree(f, tree);
            });
            case 11 -> new Mutation("truncate at " + at, f -> Arrays.copyOf(f, at % (f.length + 1)));
            case 12 -> {
                int k = Tries.between(r, 1, 9);
                yield new Mutation("append " + k + " bytes", f -> Arrays.copyOf(f, f.length + k));
            }
            default -> new Mutation("flip data byte " + at, f -> {
                byte[] out = f.clone();
                if (out.length > 0) out[out.length - 1 - at % out.length] ^= 0x55;
                return out;
            });
        };
    }

    private static byte[] editEntry(byte[] f, int index, Consumer<ObjectNode> edit) {
        ObjectNode tree = SafeTensorsBytes.tree(f);
        if (tree == null) return f;
        List<ObjectNode> entries = new ArrayList<>();
        tree.properties().forEach(e -> {
            if (!e.getKey().equals("__metadata__") && e.getValue() instanceof ObjectNode o) entries.add(o);
        });
        if (entries.isEmpty()) return f;
        edit.accept(entries.get(index % entries.size()));
        return SafeTensorsBytes.withTree(f, tree);
    }

    private static JsonNode parse(String json) {
        try {
            return SafeTensorsBytes.JSON.readTree(json);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
