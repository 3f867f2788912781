package dev.jnext.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jnext.model.weights.Checkpoint;
import dev.jnext.model.weights.Tensor;
import dev.jnext.numeric.Bf16;
import dev.jnext.numeric.Fp8E4m3;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;

/**
 * FP8 checkpoints for tests: a geometry whose every matrix has ragged 128 × 128 blocks, FP8 synth, and rewriting a
 * checkpoint tensor by tensor (into one model.safetensors) — its dequantized F32 twin, BF16 scales, corruptions.
 */
public final class Fp8Checkpoints {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A stored tensor: dtype, shape, little-endian bytes. */
    public record Stored(DType dtype, int[] shape, byte[] bytes) {
        long count() {
            long n = 1;
            for (int d : shape) n *= d;
            return n;
        }
    }

    private Fp8Checkpoints() {}

    /**
     * Three layers [linear, full, linear] (layer 2 dense) whose dimensions cut 128 × 128 blocks raggedly: hidden 200
     * (2 column blocks, the second of 72), q_proj 288 rows, in_proj_qkvz 272, experts of width 136 (a fused gate_up's
     * block 1 holds gate rows 128–135 and up rows 0–119), shared expert 150, dense MLP 300.
     */
    public static ModelConfig raggedConfig() {
        return new ModelConfig(64, 200, 300, 3, 2, 1, 72, 1, 2, 40, 48, 4, 3, 2, 136, 150, 1, List.of(2), true,
                List.of(LayerType.LINEAR_ATTENTION, LayerType.FULL_ATTENTION, LayerType.LINEAR_ATTENTION), 1.0e6, 0.25,
                1e-6f, 4096, false, DType.BF16, null, List.of());
    }

    /** {@code config} with the official Qwen3-Next FP8 quantization_config for its geometry. */
    public static ModelConfig fp8(ModelConfig config) {
        return config.withQuantization(Fp8Quantization.qwen3Next(config));
    }

    /** Writes the FP8 synthetic checkpoint of {@code config} (bf16 where kept, F32 scales). */
    public static Path write(Path dir, ModelConfig config, long seed, SyntheticCheckpoint.ExpertLayout layout) {
        SyntheticCheckpoint.write(dir, new SyntheticCheckpoint.Options(fp8(config), DType.BF16, seed, 1L << 20, layout,
                4f, SyntheticCheckpoint.ConfigStyle.V5), n -> { });
        return dir;
    }

    /** Every tensor of the checkpoint in {@code dir}, in file order. */
    public static Map<String, Stored> read(Path dir) {
        Map<String, Stored> out = new LinkedHashMap<>();
        try (Checkpoint c = Checkpoint.open(dir)) {
            for (Tensor t : c.tensors().values()) {
                out.put(t.name(), new Stored(t.dtype(), t.shape(), t.data().toArray(ValueLayout.JAVA_BYTE)));
            }
        }
        return out;
    }

    /** Writes {@code tensors} as {@code dst/model.safetensors} with {@code configJson}. */
    public static Path write(Path dst, Map<String, Stored> tensors, String configJson) {
        try {
            Files.createDirectories(dst);
            ObjectNode header = JSON.createObjectNode();
            long off = 0;
            for (Map.Entry<String, Stored> e : tensors.entrySet()) {
                ObjectNode t = header.putObject(e.getKey());
                t.put("dtype", e.getValue().dtype().safetensorsName());
                var shape = t.putArray("shape");
                for (int d : e.getValue().shape()) shape.add(d);
                t.putArray("data_offsets").add(off).add(off + e.getValue().bytes().length);
                off += e.getValue().bytes().length;
            }
            byte[] json = JSON.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
            int padded = (json.length + 7) / 8 * 8;
            ByteBuffer b = ByteBuffer.allocate(8 + padded + (int) off).order(ByteOrder.LITTLE_ENDIAN);
            b.putLong(padded).put(json);
            while (b.position() < 8 + padded) b.put((byte) ' ');
            for (Stored s : tensors.values()) b.put(s.bytes());
            Files.write(dst.resolve(Checkpoint.SINGLE_FILE), b.array());
            Files.writeString(dst.resolve("config.json"), configJson);
            return dst;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** {@code src} rewritten: {@code edit} may change or remove (put null) tensors, {@code config} edits config.json. */
    public static Path rewrite(Path src, Path dst, Consumer<Map<String, Stored>> edit, UnaryOperator<ObjectNode> config) {
        Map<String, Stored> tensors = read(src);
        edit.accept(tensors);
        tensors.values().removeIf(java.util.Objects::isNull);
        try {
            ObjectNode c = (ObjectNode) JSON.readTree(Files.readString(src.resolve("config.json")));
            return write(dst, tensors, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(config.apply(c)));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * The dequantized twin of an FP8 checkpoint, computed here independently of the loader: every F8_E4M3 tensor
     * becomes F32 holding its e4m3 value times its block's scale (one fp32 product), its scale tensor is dropped, every
     * other tensor is kept as stored, and config.json loses its quantization_config.
     */
    public static Path dequantized(Path src, Path dst) {
        return rewrite(src, dst, tensors -> {
            List<String> scaleNames = new ArrayList<>();
            for (Map.Entry<String, Stored> e : tensors.entrySet()) {
                if (e.getValue().dtype() != DType.F8_E4M3) continue;
                String scaleName = e.getKey() + "_scale_inv";
                Stored scale = tensors.get(scaleName);
                scaleNames.add(scaleName);
                e.setValue(dequantize(e.getValue(), scale));
            }
            scaleNames.forEach(tensors::remove);
        }, c -> {
            c.remove("quantization_config");
            return c;
        });
    }

    /**
     * The twin of a bf16 checkpoint (per-expert files) whose routed and shared experts went through FP8 and back: each
     * expert matrix block-quantized ({@link Fp8Blocks}, the rule the loader's {@code --quantize fp8} applies while it
     * streams) and stored as F32 holding e4m3 value × scale; every other tensor as stored.
     */
    public static Path quantizedExpertsTwin(Path src, Path dst) {
        return rewrite(src, dst, tensors -> {
            for (Map.Entry<String, Stored> e : tensors.entrySet()) {
                String n = e.getKey();
                boolean expert = n.contains(".mlp.experts.") || n.contains(".mlp.shared_expert.");
                if (!expert) continue;
                if (e.getValue().shape().length != 2) throw new IllegalArgumentException(n + ": per-expert files only");
                e.setValue(roundTrip(e.getValue()));
            }
        }, c -> c);
    }

    /** A matrix block-quantized to FP8 and dequantized, as F32. */
    public static Stored roundTrip(Stored t) {
        int rows = t.shape()[0], cols = t.shape()[1];
        float[] v = floats(t);
        byte[] q = new byte[v.length];
        int gc = Fp8Blocks.blocks(cols);
        float[] scales = new float[Fp8Blocks.blocks(rows) * gc];
        for (int b = 0; b * 128 < rows; b++) {
            Fp8Blocks.quantizeBand(v, b * 128 * cols, Math.min(128, rows - b * 128), cols, q, b * 128 * cols, scales, b * gc);
        }
        float[] out = new float[v.length];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) out[r * cols + c] = Fp8E4m3.toFloat(q[r * cols + c]) * scales[(r / 128) * gc + c / 128];
        }
        return f32(t.shape(), out);
    }

    /** w[.., r, c] = e4m3(q[.., r, c]) · scale[.., r / 128, c / 128], as F32. */
    public static Stored dequantize(Stored q, Stored scale) {
        int[] s = q.shape();
        int rows = s[s.length - 2], cols = s[s.length - 1];
        int gr = (rows + 127) / 128, gc = (cols + 127) / 128;
        float[] sc = floats(scale);
        int matrices = (int) (q.count() / ((long) rows * cols));
        ByteBuffer out = ByteBuffer.allocate((int) q.count() * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int m = 0; m < matrices; m++) {
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < cols; c++) {
                    int i = (m * rows + r) * cols + c;
                    out.putFloat(Fp8E4m3.toFloat(q.bytes()[i]) * sc[(m * gr + r / 128) * gc + c / 128]);
                }
            }
        }
        return new Stored(DType.F32, s, out.array());
    }

    /** The values of an F32 or BF16 tensor. */
    public static float[] floats(Stored t) {
        ByteBuffer b = ByteBuffer.wrap(t.bytes()).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[(int) t.count()];
        for (int i = 0; i < out.length; i++) {
            out[i] = switch (t.dtype()) {
                case F32 -> b.getFloat();
                case BF16 -> Bf16.toFloat(b.getShort());
                default -> throw new IllegalArgumentException(t.dtype().name());
            };
        }
        return out;
    }

    /** An F32 tensor of {@code values}. */
    public static Stored f32(int[] shape, float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) b.putFloat(v);
        return new Stored(DType.F32, shape, b.array());
    }

    /** A BF16 tensor of {@code values} (rounded to nearest even). */
    public static Stored bf16(int[] shape, float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) b.putShort(Bf16.fromFloat(v));
        return new Stored(DType.BF16, shape, b.array());
    }
}
