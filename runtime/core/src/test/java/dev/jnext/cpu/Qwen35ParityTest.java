package dev.jnext.cpu;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jnext.model.DType;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.Npy;
import dev.jnext.model.SyntheticCheckpoint;
import dev.jnext.model.weights.Checkpoint;
import dev.jnext.model.weights.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CPU forward of the Qwen3.5 / Qwen3.6 families against transformers 5.17 fp32 logits (eager attention, CPU) on the
 * fixtures of src/test/resources/qwen35-fixtures (made by src/reference/qwen3_5_fixtures.py). Only the ids and the logits
 * are committed: each checkpoint is rewritten here by {@link SyntheticCheckpoint} from the options `jnext synth` was given
 * and checked against the tensors' SHA-256 the script recorded, so a change to the synthetic weights fails loudly instead
 * of comparing against the logits of other weights.
 *
 * <p>Bars, for the full sequence, prefill + single-token decodes (vs transformers' cached steps and the full forward) and
 * a multi-token continuation from a non-empty state: mean KL(ref ‖ jnext) ≤ 1e-4 nats per position and max |Δlogit| ≤
 * 1e-4 · max |ref|. The 9B and 27B per-layer geometries (1.7 and 3 GB of weights) run only with
 * {@code -Djnext.parity.heavy=true}.
 */
class Qwen35ParityTest {
    static final double REL_TOL = 1e-4;
    static final double KL_TOL = 1e-4;
    static final ObjectMapper JSON = new ObjectMapper();

    static Path root() {
        try {
            return Path.of(Qwen35ParityTest.class.getResource("/qwen35-fixtures/manifest.json").toURI()).getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static JsonNode manifest() {
        try {
            return JSON.readTree(root().resolve("manifest.json").toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static List<String> fixtures() {
        List<String> out = new ArrayList<>();
        for (JsonNode f : manifest().get("fixtures")) out.add(f.get("name").asText());
        return out;
    }

    static JsonNode entry(String name) {
        for (JsonNode f : manifest().get("fixtures")) if (f.get("name").asText().equals(name)) return f;
        throw new IllegalArgumentException(name);
    }

    /** The options `jnext synth` turned its arguments into (the CLI's defaults where an option is absent). */
    static SyntheticCheckpoint.Options options(JsonNode e) {
        Map<String, String> a = new TreeMap<>();
        JsonNode args = e.get("synth_args");
        for (int i = 0; i < args.size(); i++) {
            String k = args.get(i).asText();
            boolean flag = k.equals("--multimodal") || k.equals("--tie-word-embeddings") || k.equals("--no-norm-topk-prob");
            a.put(k, flag ? "true" : args.get(++i).asText());
        }
        ModelConfig config = ModelConfig.parse(e.get("config_json").asText(), e.get("name").asText() + "/config.json");
        DType dtype = a.getOrDefault("--dtype", "bf16").equals("f32") ? DType.F32 : DType.BF16;
        var layout = a.getOrDefault("--experts-layout", "hub").equals("fused") ? SyntheticCheckpoint.ExpertLayout.FUSED
                : SyntheticCheckpoint.ExpertLayout.HUB;
        return new SyntheticCheckpoint.Options(config, dtype, Long.parseLong(a.getOrDefault("--seed", "0")),
                Long.parseLong(a.getOrDefault("--shard-size-mb", "2048")) << 20, layout,
                Float.parseFloat(a.getOrDefault("--logit-scale", "1")), SyntheticCheckpoint.ConfigStyle.V5);
    }

    /** What the script hashed: per tensor sorted by name, name NUL dtype NUL shape (int64 LE) bytes. */
    static String digest(Path dir) {
        try (Checkpoint c = Checkpoint.open(dir)) {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            for (Tensor t : new TreeMap<>(c.tensors()).values()) {
                md.update((t.name() + "\0" + t.dtype().safetensorsName() + "\0").getBytes(StandardCharsets.UTF_8));
                ByteBuffer shape = ByteBuffer.allocate(8 * t.rank()).order(ByteOrder.LITTLE_ENDIAN);
                for (int d : t.shape()) shape.putLong(d);
                md.update(shape.array());
                md.update(t.data().asByteBuffer());
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** max |got − ref| / max |ref| over {@code rows} rows of {@code v} logits. */
    static double relError(float[] got, int gotRow, float[] ref, int refRow, int rows, int v) {
        double maxDiff = 0;
        double maxRef = 0;
        for (int i = 0; i < rows * v; i++) {
            float g = got[gotRow * v + i];
            assertTrue(Float.isFinite(g), "non-finite logit at " + i);
            maxDiff = Math.max(maxDiff, Math.abs((double) g - ref[refRow * v + i]));
            maxRef = Math.max(maxRef, Math.abs(ref[refRow * v + i]));
        }
        return maxDiff / maxRef;
    }

    /** Mean over rows of KL(softmax(ref) ‖ softmax(got)) in nats. */
    static double meanKl(float[] got, int gotRow, float[] ref, int refRow, int rows, int v) {
        double sum = 0;
        for (int r = 0; r < rows; r++) {
            double[] lp = logSoftmax(ref, (refRow + r) * v, v);
            double[] lq = logSoftmax(got, (gotRow + r) * v, v);
            double kl = 0;
            for (int i = 0; i < v; i++) kl += Math.exp(lp[i]) * (lp[i] - lq[i]);
            sum += kl;
        }
        return sum / rows;
    }

    static double[] logSoftmax(float[] x, int off, int v) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < v; i++) max = Math.max(max, x[off + i]);
        double s = 0;
        for (int i = 0; i < v; i++) s += Math.exp(x[off + i] - max);
        double lse = max + Math.log(s);
        double[] out = new double[v];
        for (int i = 0; i < v; i++) out[i] = x[off + i] - lse;
        return out;
    }

    record Figures(double rel, double kl) {
        Figures max(Figures o) {
            return new Figures(Math.max(rel, o.rel), Math.max(kl, o.kl));
        }
    }

    static Figures figures(float[] got, int gotRow, float[] ref, int refRow, int rows, int v) {
        return new Figures(relError(got, gotRow, ref, refRow, rows, v), meanKl(got, gotRow, ref, refRow, rows, v));
    }

    static void check(String fixture, String what, Figures f) {
        System.out.printf("qwen3.5 parity %-22s %-30s max|Δ|/max|ref| = %.3e   mean KL = %.3e%n", fixture, what, f.rel, f.kl);
        assertTrue(f.rel <= REL_TOL, fixture + " " + what + ": relative error " + f.rel + " > " + REL_TOL);
        assertTrue(f.kl <= KL_TOL, fixture + " " + what + ": mean KL " + f.kl + " > " + KL_TOL);
    }

    @ParameterizedTest
    @MethodSource("fixtures")
    void matchesTransformers(String name, @TempDir Path tmp) {
        JsonNode e = entry(name);
        Assumptions.assumeTrue(!e.get("heavy").asBoolean() || Boolean.getBoolean("jnext.parity.heavy"),
                name + " is an opt-in fixture (-Djnext.parity.heavy=true)");
        Path ckpt = tmp.resolve("checkpoint");
        SyntheticCheckpoint.write(ckpt, options(e), bytes -> { });
        assertEquals(e.get("tensor_sha256").asText(), digest(ckpt),
                name + ": SyntheticCheckpoint no longer writes the weights the goldens were made from");

        Path dir = root().resolve(name);
        int[] ids = Npy.read(dir.resolve("ids.npy")).ints();
        Npy.Array fullArr = Npy.read(dir.resolve("logits_full.npy"));
        float[] full = fullArr.floats();
        int t = fullArr.dim(0);
        int v = fullArr.dim(1);
        assertEquals(ids.length, t);
        try (Qwen3NextModel model = Qwen3NextModel.load(ckpt)) {
            assertEquals(v, model.config().vocabSize());
            try (CpuSession s = new CpuSession(model)) {
                check(name, "full sequence [" + t + "]", figures(s.extendAll(ids), 0, full, 0, t, v));
            }

            float[] decodeRef = Npy.read(dir.resolve("logits_decode_hf.npy")).floats();
            int steps = decodeRef.length / v;
            int prefill = t - steps;
            try (CpuSession s = new CpuSession(model)) {
                Figures f = figures(s.prefill(Arrays.copyOf(ids, prefill)), 0, full, prefill - 1, 1, v);
                for (int i = 0; i < steps; i++) {
                    float[] step = s.decode(ids[prefill + i]);
                    f = f.max(figures(step, 0, decodeRef, i, 1, v)).max(figures(step, 0, full, prefill + i, 1, v));
                }
                check(name, "prefill " + prefill + " + " + steps + " decodes", f);
            }

            float[] contRef = Npy.read(dir.resolve("logits_continuation_hf.npy")).floats();
            int m = contRef.length / v;
            int n = e.get("schedule").get("N").asInt();
            try (CpuSession s = new CpuSession(model)) {
                s.prefill(Arrays.copyOf(ids, n));
                float[] got = s.extendAll(Arrays.copyOfRange(ids, n, n + m));
                Figures f = figures(got, 0, contRef, 0, m, v).max(figures(got, 0, full, n, m, v));
                if (n + m < t) f = f.max(figures(s.extendAll(Arrays.copyOfRange(ids, n + m, t)), 0, full, n + m, t - n - m, v));
                check(name, "prefill " + n + " + continuation " + m, f);
            }
        }
    }
}
