package dev.jnext.fuzz;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jnext.JnextException;
import dev.jnext.cpu.CpuSession;
import dev.jnext.model.DType;
import dev.jnext.cpu.Qwen3NextModel;
import dev.jnext.model.SyntheticCheckpoint;
import dev.jnext.model.TinyModels;
import dev.jnext.fuzz.Mutant.Mutation;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.RepetitionInfo;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Fuzzes config.json against a real (tiny, 5-layer) checkpoint: fields set to extreme values (0, -1, 2^27 + 4,
 * 2^30 + 16, 2^31 - 1, 2^31, huge and fractional numbers, strings, null, lists, objects), fields removed, and the
 * text broken (truncated, garbage after the object, invalid UTF-8, a duplicate key, a byte-order mark). Loading the
 * model either fails with a one-line message naming the folder or config.json, or succeeds, and then a forward
 * pass of three tokens gives one logit per vocabulary entry: no size derived from the config wraps around.
 */
class ConfigFuzzTest {
    static final FuzzTally TALLY = new FuzzTally("config.json (Qwen3NextModel.load + 3-token forward)");
    static final Duration BOUND = Duration.ofSeconds(5);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static Path tmp;
    private static Path checkpoint;
    private static byte[] baseConfig;

    static synchronized Path checkpoint() throws IOException {
        if (checkpoint == null) {
            tmp = Files.createTempDirectory("jnext-fuzz-config");
            checkpoint = TinyModels.write(tmp.resolve("tiny"), TinyModels.config(true, DType.F32), 3,
                    SyntheticCheckpoint.ExpertLayout.HUB, Long.MAX_VALUE);
            baseConfig = Files.readAllBytes(checkpoint.resolve("config.json"));
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
        for (Corpus.Entry e : Corpus.entries("config")) {
            String m = outcome(e.bytes());
            if (e.accepted()) assertEquals("accepted", m, e.name());
            else assertTrue(m.contains(e.phrase()), e.name() + ": " + m);
        }
    }

    @RepeatedTest(value = 500, failureThreshold = 1)
    void mutatedConfigsFailCleanlyOrRun(RepetitionInfo repetition) throws Throwable {
        checkpoint();
        Tries.check(repetition, ConfigFuzzTest::config, m -> check(m.bytes()));
    }

    static FuzzTally.Outcome check(byte[] config) throws IOException {
        Path dir = checkpoint();
        Files.write(dir.resolve("config.json"), config);
        return TALLY.run(List.of(dir.toString()), BOUND, () -> {
            try (Qwen3NextModel model = Qwen3NextModel.load(dir); CpuSession session = new CpuSession(model)) {
                float[] logits = session.prefill(new int[]{1, 2, 3});
                assertEquals(model.config().vocabSize(), logits.length);
            }
            return null;
        });
    }

    /** "accepted", or the message with the folder written as D (the corpus test's view). */
    static String outcome(byte[] config) throws IOException {
        Path dir = checkpoint();
        FuzzTally.Outcome o;
        try {
            o = check(config);
        } catch (AssertionError e) {
            throw e;
        }
        if (o == FuzzTally.Outcome.ACCEPTED) return "accepted";
        Files.write(dir.resolve("config.json"), config);
        try (Qwen3NextModel _ = Qwen3NextModel.load(dir)) {
            return "accepted by load, failed in the forward pass";
        } catch (JnextException e) {
            return e.getMessage().replace(dir.toString(), "D");
        }
    }

    // ---- inputs -------------------------------------------------------------------------------------------

    static final List<String> KEYS = List.of("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
            "num_attention_heads", "num_key_value_heads", "head_dim", "linear_num_key_heads", "linear_num_value_heads",
            "linear_key_head_dim", "linear_value_head_dim", "linear_conv_kernel_dim", "num_experts",
            "num_experts_per_tok", "moe_intermediate_size", "shared_expert_intermediate_size", "decoder_sparse_step",
            "mlp_only_layers", "norm_topk_prob", "layer_types", "full_attention_interval", "rope_parameters",
            "rope_scaling", "rope_theta", "partial_rotary_factor", "rms_norm_eps", "max_position_embeddings",
            "tie_word_embeddings", "dtype", "torch_dtype", "bos_token_id", "eos_token_id", "model_type", "hidden_act",
            "attention_bias", "unknown_key");
    static final List<String> VALUES = List.of("0", "1", "-1", "2", "3", "4", "5", "6", "8", "12", "16", "32", "48",
            "128", "134217732", "1073741840", "2147483647", "2147483648", "-2147483648", "9007199254740993", "1e30",
            "0.5", "1e-300", "1e300", "-0.0", "\"\"", "\"x\"", "\"bfloat16\"", "\"qwen3_next\"", "true", "false",
            "null", "[]", "[0]", "[4]", "[2147483647]", "[\"linear_attention\"]",
            "[\"linear_attention\",\"linear_attention\",\"linear_attention\",\"full_attention\",\"linear_attention\"]",
            "{}", "{\"rope_type\":\"yarn\"}", "{\"rope_theta\":-1}", "{\"full_attention\":{\"rope_theta\":5}}");

    /** The checkpoint's config.json or a corpus one, with one to three mutations. */
    static Mutant config(SplittableRandom r) {
        Map<String, byte[]> seeds = new LinkedHashMap<>();
        seeds.put("base", baseConfig);
        seeds.putAll(Corpus.seeds("config"));
        return Mutant.draw(r, seeds, 1, 3, ConfigFuzzTest::mutation);
    }

    static Mutation mutation(SplittableRandom r) {
        String k = Tries.pick(r, KEYS);
        int at = Tries.between(r, 0, 4096);
        int kind = r.nextInt(13); // 6 in 13 set a key, 2 in 13 remove one, 1 in 13 each of the others
        if (kind < 6) {
            String v = Tries.pick(r, VALUES);
            return new Mutation(k + " := " + v, c -> edit(c, o -> o.set(k, parse(v))));
        }
        return switch (kind) {
            case 6, 7 -> new Mutation("remove " + k, c -> edit(c, o -> o.remove(k)));
            case 8 -> new Mutation("truncate at " + at, c -> Arrays.copyOf(c, at % (c.length + 1)));
            case 9 -> {
                String junk = Tries.pick(r, List.of("garbage", "{}", "}", ",", "\u0000", "\n\n", "//x"));
                yield new Mutation("append " + junk.codePoints().boxed().toList(), c -> concat(c, junk.getBytes(StandardCharsets.UTF_8)));
            }
            case 10 -> {
                byte b = Tries.pick(r, List.of((byte) 0xff, (byte) 0xc3, (byte) 0x80, (byte) 0));
                yield new Mutation("insert byte " + (b & 0xff) + " at " + at, c -> {
                    int p = at % (c.length + 1);
                    byte[] out = new byte[c.length + 1];
                    System.arraycopy(c, 0, out, 0, p);
                    out[p] = b;
                    System.arraycopy(c, p, out, p + 1, c.length - p);
                    return out;
                });
            }
            case 11 -> new Mutation("duplicate " + k, c -> {
                String s = new String(c, StandardCharsets.UTF_8);
                int brace = s.indexOf('{');
                return brace < 0 ? c : (s.substring(0, brace + 1) + "\"" + k + "\": 1, " + s.substring(brace + 1))
                        .getBytes(StandardCharsets.UTF_8);
            });
            default -> new Mutation("byte-order mark", c -> concat(new byte[]{(byte) 0xef, (byte) 0xbb, (byte) 0xbf}, c));
        };
    }

    private static byte[] edit(byte[] config, Consumer<ObjectNode> change) {
        try {
            JsonNode n = JSON.readTree(config);
            if (!(n instanceof ObjectNode o)) return config;
            change.accept(o);
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(o);
        } catch (IOException e) {
            return config; // already broken text: leave it so
        }
    }

    private static JsonNode parse(String json) {
        try {
            return JSON.readTree(json);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static byte[] concat(byte[] a, byte[] b) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(a);
        out.writeBytes(b);
        return out.toByteArray();
    }
}
