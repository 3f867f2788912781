package dev.jnext.model;

import dev.jnext.numeric.Bf16;
import dev.jnext.numeric.Fp8E4m3;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jnext.JnextException;
import dev.jnext.model.weights.Checkpoint;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.LongConsumer;
import java.util.stream.IntStream;

/**
 * Writes a random Qwen3-Next or Qwen3.5 checkpoint in the Hugging Face layout: config.json (transformers 5.x style;
 * a Qwen3.5 one text-only or as the multimodal wrapper, without a vision tower),
 * sharded safetensors and model.safetensors.index.json. Values are generated chunk by chunk and streamed to disk,
 * so an 80B-geometry checkpoint of many gigabytes never sits in the heap. Weights are scaled so activations stay
 * of order one (Linear weights uniform with std 1/√fan_in — a tied embedding too, as it is the LM head —, norms near
 * their identity, A_log = log U(1, 16),
 * dt_bias near 1). Each logical matrix is generated from its own seeded stream, so the hub and the fused expert
 * layouts of one seed hold identical values.
 *
 * <p>A config with a {@link ModelConfig#quantization() quantization_config} gives the official fine-grained FP8 layout:
 * every linear weight the quantization converts is block-quantized from the same values ({@code scale_inv = amax / 448}
 * of each 128 × 128 block, ceil-divided at ragged edges, 1 for an all-zero block; each value rounded to the nearest e4m3
 * of {@code value / scale_inv}) and stored as {@code F8_E4M3} with its {@code weight_scale_inv} (F32) — for fused experts
 * {@code <t>_scale_inv} [E, ceil(R/128), ceil(C/128)] — while what it keeps stays in the options' dtype.
 */
public final class SyntheticCheckpoint {

    /** How routed experts are stored. */
    public enum ExpertLayout {
        /** One tensor per expert and projection: {@code mlp.experts.{e}.gate_proj.weight}, ... (the hub's files). */
        HUB,
        /** transformers 5.x's fused tensors: {@code mlp.experts.gate_up_proj} [E, 2I, H], {@code down_proj} [E, H, I]. */
        FUSED
    }

    /** The config.json style: transformers 5.x ({@code rope_parameters}, {@code layer_types}) or 4.x (top-level rope keys). */
    public enum ConfigStyle {
        /** transformers 5.x: {@code rope_parameters}, {@code layer_types}, {@code dtype}. */
        V5,
        /** transformers 4.x: top-level {@code rope_theta}, {@code full_attention_interval}, {@code torch_dtype}. */
        V4
    }

    /**
     * What to write.
     *
     * @param config        the geometry (e.g. {@link #preset}); with a quantization_config, the linear weights it
     *                      converts are written in FP8
     * @param dtype         the tensors' dtype (of the unquantized tensors when the config quantizes)
     * @param seed          seeds every tensor's random stream
     * @param maxShardBytes a new shard starts before a tensor that would push the current one past this
     * @param expertLayout  how routed experts are stored
     * @param logitScale    the final norm's scale (its stored weight is centred on {@code logitScale − 1}): larger values
     *                      sharpen the next-token distribution (1 leaves it near uniform; about 4–6 gives 1–4 nats)
     * @param style         the config.json style
     */
    public record Options(ModelConfig config, DType dtype, long seed, long maxShardBytes, ExpertLayout expertLayout,
                          float logitScale, ConfigStyle style) {
        /** Checks the shard size and the logit scale. */
        public Options {
            if (maxShardBytes <= 0) throw new IllegalArgumentException("maxShardBytes must be positive");
            if (dtype == DType.F8_E4M3) {
                throw new JnextException("the options' dtype is that of the unquantized tensors; FP8 comes from the config's "
                        + "quantization_config (ModelConfig.withQuantization)");
            }
            if (!(logitScale > 0) || !Float.isFinite(logitScale)) throw new JnextException("the logit scale must be positive, got " + logitScale);
        }

        /** Logit scale 1, transformers 5.x style. */
        public Options(ModelConfig config, DType dtype, long seed, long maxShardBytes, ExpertLayout expertLayout) {
            this(config, dtype, seed, maxShardBytes, expertLayout, 1f, ConfigStyle.V5);
        }
    }

    /** How one logical block of values is drawn. */
    enum Init { LINEAR, EMBEDDING, CENTRED_NORM, FINAL_NORM, GATED_NORM, CONV, A_LOG, DT_BIAS }

    /** A logical matrix/vector inside a stored tensor: its own random stream, {@code count} values. */
    record Part(String streamName, long count, Init init, int fanIn) {}

    /** How a stored tensor is written. */
    enum Kind {
        /** Its parts in the options' dtype. */
        PLAIN,
        /** Its parts block-quantized to F8_E4M3 (matrix by matrix: [R, C], or each of [E, R, C]). */
        FP8,
        /** The F32 block scales of the FP8 tensor written just before it. */
        SCALES
    }

    /** One stored tensor: the concatenation of its parts. */
    record Spec(String name, int[] shape, List<Part> parts, Kind kind) {
        Spec(String name, int[] shape, List<Part> parts) {
            this(name, shape, parts, Kind.PLAIN);
        }

        long count() {
            long n = 1;
            for (int d : shape) n *= d;
            return n;
        }

        DType dtype(Options o) {
            return switch (kind) {
                case PLAIN -> o.dtype();
                case FP8 -> DType.F8_E4M3;
                case SCALES -> DType.F32;
            };
        }

        long bytes(Options o) {
            return count() * dtype(o).bytes();
        }
    }

    private static final int CHUNK = 1 << 20;
    private static final ObjectMapper JSON = new ObjectMapper();

    private SyntheticCheckpoint() {}

    /** The preset names {@link #preset} knows. */
    public static final List<String> PRESETS = List.of("tiny", "gpu-small", "next-80b-a3b", "qwen3.5-tiny",
            "qwen3.5-moe-tiny", "qwen3.5-0.8b", "qwen3.5-9b", "qwen3.5-27b", "qwen3.5-35b-a3b");

    /**
     * A preset configuration. {@code tiny}: a few-MB model that exercises every block; {@code next-80b-a3b}: the
     * published Qwen3-Next-80B-A3B geometry; {@code qwen3.5-0.8b}, {@code -9b}, {@code -27b}, {@code -35b-a3b}: the
     * published Qwen3.5 text models' geometries (vocabulary 248,320; text-only config.json); {@code qwen3.5-tiny} and
     * {@code qwen3.5-moe-tiny}: toy Qwen3.5 dense and MoE models. {@code layers} and {@code experts} (null = preset
     * value) override the depth and the routed-expert count (top-k is capped at the expert count).
     */
    public static ModelConfig preset(String name, Integer layers, Integer experts, DType dtype) {
        return switch (name) {
            // transformers 5.17's Qwen3_5TextConfig / Qwen3_5MoeTextConfig and the released config.json files
            case "qwen3.5-0.8b" -> qwen35(ModelFamily.QWEN3_5, 248320, 1024, 3584, layers, 24, 8, 2, 256, 16, 16, 128, 128,
                    0, 0, 0, 0, true, dtype);
            case "qwen3.5-9b" -> qwen35(ModelFamily.QWEN3_5, 248320, 4096, 12288, layers, 32, 16, 4, 256, 16, 32, 128, 128,
                    0, 0, 0, 0, false, dtype);
            case "qwen3.5-27b" -> qwen35(ModelFamily.QWEN3_5, 248320, 5120, 17408, layers, 64, 24, 4, 256, 16, 48, 128,
                    128, 0, 0, 0, 0, false, dtype);
            case "qwen3.5-35b-a3b" -> qwen35(ModelFamily.QWEN3_5_MOE, 248320, 2048, 0, layers, 40, 16, 2, 256, 16, 32, 128,
                    128, experts == null ? 256 : experts, 8, 512, 512, false, dtype);
            case "qwen3.5-tiny" -> qwen35(ModelFamily.QWEN3_5, 256, 64, 96, layers, 4, 4, 2, 32, 2, 4, 16, 24, 0, 0, 0, 0,
                    false, dtype);
            case "qwen3.5-moe-tiny" -> qwen35(ModelFamily.QWEN3_5_MOE, 256, 64, 0, layers, 4, 4, 2, 32, 2, 4, 16, 24,
                    experts == null ? 8 : experts, 2, 32, 48, false, dtype);
            case "tiny" -> config(256, 64, 96, layers == null ? 4 : layers, 4, 2, 32, 2, 4, 16, 24, 4,
                    experts == null ? 8 : experts, 2, 32, 48, 1.0e7, dtype);
            case "next-80b-a3b" -> config(151936, 2048, 5120, layers == null ? 48 : layers, 16, 2, 256, 16, 32,
                    128, 128, 4, experts == null ? 512 : experts, 10, 512, 512, 1.0e7, dtype);
            // the smallest shape every CUDA kernel takes on its fast path: hidden % 128, dk = 128, expert width % 64
            case "gpu-small" -> config(151936, 512, 1024, layers == null ? 4 : layers, 4, 2, 128, 2, 4, 128, 128, 4,
                    experts == null ? 16 : experts, 4, 128, 128, 1.0e7, dtype);
            default -> throw new JnextException("unknown preset \"" + name + "\" (expected one of " + PRESETS + ")");
        };
    }

    /**
     * A Qwen3.5 text-only geometry: every 4th layer full attention, RoPE θ 1e7 on a quarter of each head, mrope_section
     * [11, 11, 10], end-of-text id 248044 when the vocabulary holds it and no BOS (as the released configs).
     */
    private static ModelConfig qwen35(ModelFamily family, int vocab, int hidden, int inter, Integer layers,
                                      int defaultLayers, int heads, int kvHeads, int headDim, int hk, int hv, int dk,
                                      int dv, int experts, int topK, int moeI, int sharedI, boolean tie, DType dtype) {
        int n = layers == null ? defaultLayers : layers;
        if (n < 1) throw new JnextException("layers must be at least 1, got " + n);
        if (family == ModelFamily.QWEN3_5_MOE && experts < 1) {
            throw new JnextException("experts must be at least 1, got " + experts);
        }
        List<LayerType> types = new ArrayList<>();
        for (int i = 0; i < n; i++) types.add((i + 1) % 4 == 0 ? LayerType.FULL_ATTENTION : LayerType.LINEAR_ATTENTION);
        int half = headDim / 8;   // rotary dims / 2 at partial_rotary_factor 0.25: the T, H, W sections split them
        List<Integer> mrope = half == 32 ? ModelConfig.DEFAULT_MROPE_SECTION
                : List.of(half - 2 * (half / 3), half / 3, half / 3);
        return new ModelConfig(vocab, hidden, inter, n, heads, kvHeads, headDim, hk, hv, dk, dv, 4, experts,
                Math.min(topK, experts), moeI, sharedI, 1, List.of(), true, types, 1.0e7, 0.25, 1e-6f, 262144, tie,
                dtype, null, 248044 < vocab ? List.of(248044) : List.of(), family, false, mrope, true, null);
    }

    private static ModelConfig config(int vocab, int hidden, int inter, int layers, int heads, int kvHeads, int headDim,
                                      int hk, int hv, int dk, int dv, int kernel, int experts, int topK, int moeI,
                                      int sharedI, double theta, DType dtype) {
        if (layers < 1) throw new JnextException("layers must be at least 1, got " + layers);
        if (experts < 1) throw new JnextException("experts must be at least 1, got " + experts);
        List<LayerType> types = new ArrayList<>();
        for (int i = 0; i < layers; i++) {
            types.add((i + 1) % 4 == 0 ? LayerType.FULL_ATTENTION : LayerType.LINEAR_ATTENTION);
        }
        return new ModelConfig(vocab, hidden, inter, layers, heads, kvHeads, headDim, hk, hv, dk, dv, kernel, experts,
                Math.min(topK, experts), moeI, sharedI, 1, List.of(), true, types, theta, 0.25, 1e-6f, 262144,
                false, dtype, 151643 < vocab ? 151643 : null, 151645 < vocab ? List.of(151645) : List.of());
    }

    /**
     * Every tensor the checkpoint will hold, in write order. A multimodal wrapper's text tensors are named
     * {@code model.language_model.*} but drawn from the same streams as the text-only layout's {@code model.*}, so
     * both layouts of one seed hold identical values. The quantization (if any) is decided on the final names, which
     * are the names its {@code modules_to_not_convert} lists.
     */
    static List<Spec> plan(ModelConfig c, ExpertLayout layout) {
        List<Spec> specs = textPlan(c, layout);
        if (c.multimodal()) {
            List<Spec> renamed = new ArrayList<>(specs.size());
            for (Spec s : specs) {
                String name = s.name().startsWith("model.") ? c.weightPrefix() + s.name().substring("model.".length()) : s.name();
                renamed.add(new Spec(name, s.shape(), s.parts(), s.kind()));
            }
            specs = renamed;
        }
        return c.quantization() == null ? specs : quantize(specs, c.quantization());
    }

    private static List<Spec> textPlan(ModelConfig c, ExpertLayout layout) {
        List<Spec> out = new ArrayList<>();
        int h = c.hiddenSize();
        // tied, the embedding is also the LM head: scaled as a linear layer (std 1/√H), so the logits keep the spread the
        // untied lm_head gives them instead of growing with √H into one-hot distributions
        out.add(single("model.embed_tokens.weight", c.tieWordEmbeddings() ? Init.LINEAR : Init.EMBEDDING, h, c.vocabSize(), h));
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            String p = "model.layers." + i + ".";
            out.add(single(p + "input_layernorm.weight", Init.CENTRED_NORM, h, h));
            out.add(single(p + "post_attention_layernorm.weight", Init.CENTRED_NORM, h, h));
            if (c.layerType(i) == LayerType.LINEAR_ATTENTION) {
                String a = p + "linear_attn.";
                int hv = c.linearNumValueHeads();
                if (c.family().splitDeltaNetProjections()) {
                    out.add(single(a + "in_proj_qkv.weight", Init.LINEAR, h, c.convDim(), h));
                    out.add(single(a + "in_proj_z.weight", Init.LINEAR, h, c.linearValueDim(), h));
                    out.add(single(a + "in_proj_b.weight", Init.LINEAR, h, hv, h));
                    out.add(single(a + "in_proj_a.weight", Init.LINEAR, h, hv, h));
                } else {
                    out.add(single(a + "in_proj_qkvz.weight", Init.LINEAR, h, 2 * c.linearKeyDim() + 2 * c.linearValueDim(), h));
                    out.add(single(a + "in_proj_ba.weight", Init.LINEAR, h, 2 * hv, h));
                }
                out.add(single(a + "conv1d.weight", Init.CONV, c.linearConvKernelDim(), c.convDim(), 1, c.linearConvKernelDim()));
                out.add(single(a + "dt_bias", Init.DT_BIAS, 1, hv));
                out.add(single(a + "A_log", Init.A_LOG, 1, hv));
                out.add(single(a + "norm.weight", Init.GATED_NORM, 1, c.linearValueHeadDim()));
                out.add(single(a + "out_proj.weight", Init.LINEAR, c.linearValueDim(), h, c.linearValueDim()));
            } else {
                String a = p + "self_attn.";
                int nh = c.numAttentionHeads();
                int nkv = c.numKeyValueHeads();
                int hd = c.headDim();
                out.add(single(a + "q_proj.weight", Init.LINEAR, h, nh * hd * 2, h));
                out.add(single(a + "k_proj.weight", Init.LINEAR, h, nkv * hd, h));
                out.add(single(a + "v_proj.weight", Init.LINEAR, h, nkv * hd, h));
                out.add(single(a + "o_proj.weight", Init.LINEAR, nh * hd, h, nh * hd));
                out.add(single(a + "q_norm.weight", Init.CENTRED_NORM, hd, hd));
                out.add(single(a + "k_norm.weight", Init.CENTRED_NORM, hd, hd));
            }
            String m = p + "mlp.";
            if (c.isMoeLayer(i)) {
                int e = c.numExperts();
                int inter = c.moeIntermediateSize();
                out.add(single(m + "gate.weight", Init.LINEAR, h, e, h));
                if (layout == ExpertLayout.HUB) {
                    for (int x = 0; x < e; x++) {
                        String ep = m + "experts." + x + ".";
                        out.add(single(ep + "gate_proj.weight", Init.LINEAR, h, inter, h));
                        out.add(single(ep + "up_proj.weight", Init.LINEAR, h, inter, h));
                        out.add(single(ep + "down_proj.weight", Init.LINEAR, inter, h, inter));
                    }
                } else {
                    List<Part> gateUp = new ArrayList<>();
                    List<Part> down = new ArrayList<>();
                    for (int x = 0; x < e; x++) {
                        String ep = m + "experts." + x + ".";
                        gateUp.add(new Part(ep + "gate_proj.weight", (long) inter * h, Init.LINEAR, h));
                        gateUp.add(new Part(ep + "up_proj.weight", (long) inter * h, Init.LINEAR, h));
                        down.add(new Part(ep + "down_proj.weight", (long) h * inter, Init.LINEAR, inter));
                    }
                    out.add(new Spec(m + "experts.gate_up_proj", new int[]{e, 2 * inter, h}, gateUp));
                    out.add(new Spec(m + "experts.down_proj", new int[]{e, h, inter}, down));
                }
                int si = c.sharedExpertIntermediateSize();
                out.add(single(m + "shared_expert.gate_proj.weight", Init.LINEAR, h, si, h));
                out.add(single(m + "shared_expert.up_proj.weight", Init.LINEAR, h, si, h));
                out.add(single(m + "shared_expert.down_proj.weight", Init.LINEAR, si, h, si));
                out.add(single(m + "shared_expert_gate.weight", Init.LINEAR, h, 1, h));
            } else {
                int inter = c.intermediateSize();
                out.add(single(m + "gate_proj.weight", Init.LINEAR, h, inter, h));
                out.add(single(m + "up_proj.weight", Init.LINEAR, h, inter, h));
                out.add(single(m + "down_proj.weight", Init.LINEAR, inter, h, inter));
            }
        }
        out.add(single("model.norm.weight", Init.FINAL_NORM, h, h));
        if (!c.tieWordEmbeddings()) out.add(single("lm_head.weight", Init.LINEAR, h, c.vocabSize(), h));
        return out;
    }

    /** Each linear weight the quantization converts becomes an FP8 tensor followed by its block scales. */
    private static List<Spec> quantize(List<Spec> plain, Fp8Quantization q) {
        List<Spec> out = new ArrayList<>();
        for (Spec s : plain) {
            boolean linear = (s.shape().length == 2 || s.shape().length == 3)
                    && s.parts().stream().allMatch(p -> p.init() == Init.LINEAR);
            boolean matrixName = s.name().endsWith(".weight");
            String module = matrixName ? s.name().substring(0, s.name().length() - ".weight".length()) : s.name();
            if (!linear || !q.converts(module)) {
                out.add(s);
                continue;
            }
            int[] grid = s.shape().clone();
            grid[grid.length - 2] = blocks(grid[grid.length - 2]);
            grid[grid.length - 1] = blocks(grid[grid.length - 1]);
            out.add(new Spec(s.name(), s.shape(), s.parts(), Kind.FP8));
            out.add(new Spec(s.name() + "_scale_inv", grid, List.of(), Kind.SCALES));
        }
        return out;
    }

    private static int blocks(int n) {
        return (n + Fp8Quantization.BLOCK - 1) / Fp8Quantization.BLOCK;
    }

    private static Spec single(String name, Init init, int fanIn, int... shape) {
        long n = 1;
        for (int d : shape) n *= d;
        return new Spec(name, shape, List.of(new Part(name, n, init, fanIn)));
    }

    /** Total bytes of tensor data the options produce. */
    public static long dataBytes(Options o) {
        long n = 0;
        for (Spec s : plan(o.config(), o.expertLayout())) n += s.bytes(o);
        return n;
    }

    /**
     * Writes the checkpoint into {@code dir} (created if absent; it must not already hold a checkpoint).
     * {@code progress} receives the number of data bytes written after each chunk.
     */
    public static void write(Path dir, Options o, LongConsumer progress) {
        try {
            Files.createDirectories(dir);
            for (String f : new String[]{"config.json", Checkpoint.SINGLE_FILE, Checkpoint.INDEX_FILE}) {
                if (Files.exists(dir.resolve(f))) {
                    throw new JnextException(dir + " already holds " + f + "; choose an empty directory");
                }
            }
            List<List<Spec>> shards = shard(plan(o.config(), o.expertLayout()), o);
            ObjectNode index = JSON.createObjectNode();
            long total = 0;
            ObjectNode weightMap = JSON.createObjectNode();
            for (int s = 0; s < shards.size(); s++) {
                String file = String.format("model-%05d-of-%05d.safetensors", s + 1, shards.size());
                total += writeShard(dir.resolve(file), shards.get(s), o, progress);
                for (Spec spec : shards.get(s)) weightMap.put(spec.name(), file);
            }
            index.putObject("metadata").put("total_size", total);
            index.set("weight_map", weightMap);
            Files.writeString(dir.resolve(Checkpoint.INDEX_FILE), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(index));
            Files.writeString(dir.resolve("config.json"), o.style() == ConfigStyle.V5 ? o.config().toJson() : legacyJson(o.config()));
        } catch (IOException e) {
            throw new JnextException(dir + ": cannot write the checkpoint: " + e.getMessage(), e);
        }
    }

    /**
     * The transformers 4.x style of the same config: top-level {@code rope_theta}, {@code partial_rotary_factor},
     * {@code rope_scaling}, {@code full_attention_interval} instead of {@code layer_types}, {@code torch_dtype}.
     */
    static String legacyJson(ModelConfig c) throws IOException {
        if (c.family() != ModelFamily.QWEN3_NEXT) {
            throw new JnextException("the 4.x config style is Qwen3-Next's; transformers 4.x has no " + c.family().displayName());
        }
        ObjectNode o = (ObjectNode) JSON.readTree(c.toJson());
        o.remove("rope_parameters");
        o.remove("layer_types");
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            if (c.layerType(i) != ((i + 1) % 4 == 0 ? LayerType.FULL_ATTENTION : LayerType.LINEAR_ATTENTION)) {
                throw new JnextException("the 4.x config style expresses layer types only as full_attention_interval 4; "
                        + "this configuration's layer " + i + " does not follow it");
            }
        }
        o.put("full_attention_interval", 4);
        o.put("rope_theta", c.ropeTheta());
        o.putNull("rope_scaling");
        o.set("torch_dtype", o.remove("dtype"));
        return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(o);
    }

    private static List<List<Spec>> shard(List<Spec> specs, Options o) {
        List<List<Spec>> shards = new ArrayList<>();
        List<Spec> cur = new ArrayList<>();
        long bytes = 0;
        for (Spec s : specs) {
            long b = s.bytes(o);
            // an FP8 weight and its scales stay in one shard
            if (!cur.isEmpty() && s.kind() != Kind.SCALES && bytes + b > o.maxShardBytes()) {
                shards.add(cur);
                cur = new ArrayList<>();
                bytes = 0;
            }
            cur.add(s);
            bytes += b;
        }
        if (!cur.isEmpty()) shards.add(cur);
        return shards;
    }

    private static long writeShard(Path file, List<Spec> specs, Options o, LongConsumer progress) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            writeFully(ch, shardHeader(specs, o));
            writeShardData(ch, specs, o, progress);
        }
        return shardDataBytes(specs, o);
    }

    /** The shard files of a checkpoint: the specs of each, in order. */
    static List<List<Spec>> shards(Options o) {
        return shard(plan(o.config(), o.expertLayout()), o);
    }

    /** A shard's 8-byte header length and JSON header (padded so that the data section is 8-byte aligned). */
    static ByteBuffer shardHeader(List<Spec> specs, Options o) {
        ObjectNode header = JSON.createObjectNode();
        header.putObject("__metadata__").put("format", "pt");
        long offset = 0;
        for (Spec s : specs) {
            long b = s.bytes(o);
            ObjectNode t = header.putObject(s.name());
            t.put("dtype", s.dtype(o).safetensorsName());
            var shape = t.putArray("shape");
            for (int d : s.shape()) shape.add(d);
            t.putArray("data_offsets").add(offset).add(offset + b);
            offset += b;
        }
        byte[] json;
        try {
            json = JSON.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        int padded = (json.length + 7) / 8 * 8;    // keep the data section 8-byte aligned, as the reference writer does
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) head.put((byte) ' ');
        return head.flip();
    }

    /** Bytes of a shard's data section. */
    static long shardDataBytes(List<Spec> specs, Options o) {
        long n = 0;
        for (Spec s : specs) n += s.bytes(o);
        return n;
    }

    /** A shard's tensors, generated in order into {@code ch} after its header. */
    static void writeShardData(WritableByteChannel ch, List<Spec> specs, Options o, LongConsumer progress) throws IOException {
        int batch = Math.max(1, Runtime.getRuntime().availableProcessors());
        float[] scales = null;
        for (int i = 0; i < specs.size(); ) {
            Spec s = specs.get(i);
            switch (s.kind()) {
                case PLAIN -> {
                    for (Part p : s.parts()) writePart(ch, p, o, progress);
                    i++;
                }
                case FP8 -> {
                    // one expert's projections are small: quantize several at once (each FP8 tensor is followed by its scales)
                    List<Spec> group = new ArrayList<>();
                    for (int j = i; j + 1 < specs.size() && group.size() < batch && specs.get(j).kind() == Kind.FP8
                            && specs.get(j + 1).kind() == Kind.SCALES && elements(specs.get(j)) <= SMALL_FP8; j += 2) {
                        group.add(specs.get(j));
                    }
                    if (group.size() < 2) {
                        scales = writeFp8(ch, s, o, progress);
                        i++;
                        continue;
                    }
                    List<Quantized> done = group.parallelStream().map(g -> quantize(g, o)).toList();
                    for (Quantized q : done) {
                        for (byte[] codes : q.codes()) {
                            writeFully(ch, ByteBuffer.wrap(codes));
                            progress.accept(codes.length);
                        }
                        writeScales(ch, q.scales(), progress);
                    }
                    i += 2 * group.size();
                }
                case SCALES -> {
                    writeScales(ch, scales, progress);
                    scales = null;
                    i++;
                }
            }
        }
    }

    /** FP8 tensors up to this many elements are quantized several at a time (one expert's projection: 1M at 80B). */
    private static final long SMALL_FP8 = 1L << 22;

    private static long elements(Spec s) {
        long n = 1;
        for (int d : s.shape()) n *= d;
        return n;
    }

    private static void writeScales(WritableByteChannel ch, float[] scales, LongConsumer progress) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(scales.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : scales) b.putFloat(v);
        writeFully(ch, b.flip());
        progress.accept(scales.length * 4L);
    }

    private static long streamSeed(Options o, Part p) {
        return o.seed() * 0x9E3779B97F4A7C15L ^ p.streamName().hashCode() * 0xC2B2AE3D27D4EB4FL;
    }

    private static void writePart(WritableByteChannel ch, Part p, Options o, LongConsumer progress) throws IOException {
        long chunks = (p.count() + CHUNK - 1) / CHUNK;
        int batch = Math.max(1, Runtime.getRuntime().availableProcessors() * 2);
        long streamSeed = streamSeed(o, p);
        for (long first = 0; first < chunks; first += batch) {
            long firstChunk = first;
            int n = (int) Math.min(batch, chunks - first);
            ByteBuffer[] bufs = IntStream.range(0, n).parallel()
                    .mapToObj(i -> encode(values(p, o.logitScale(), streamSeed, firstChunk + i), o.dtype()))
                    .toArray(ByteBuffer[]::new);
            for (ByteBuffer b : bufs) {
                int len = b.remaining();
                writeFully(ch, b);
                progress.accept(len);
            }
        }
    }

    /** An FP8 tensor's codes (one array per matrix) and the block scales of all its matrices, row-major. */
    private record Quantized(List<byte[]> codes, float[] scales) {}

    /**
     * Writes an FP8 spec matrix by matrix ([R, C], or each [R, C] of [E, R, C], whose parts are whole parts of the
     * spec) and returns the block scales of all of them, row-major.
     */
    private static float[] writeFp8(WritableByteChannel ch, Spec s, Options o, LongConsumer progress) throws IOException {
        int matrices = s.shape().length == 3 ? s.shape()[0] : 1;
        float[] scales = new float[matrices * gridSize(s)];
        List<List<Part>> perMatrix = matrixParts(s);
        for (int m = 0; m < matrices; m++) {
            byte[] q = quantizeMatrix(s, perMatrix.get(m), o, scales, m * gridSize(s));
            writeFully(ch, ByteBuffer.wrap(q));
            progress.accept(q.length);
        }
        return scales;
    }

    /** A whole FP8 spec quantized in memory. */
    private static Quantized quantize(Spec s, Options o) {
        int matrices = s.shape().length == 3 ? s.shape()[0] : 1;
        float[] scales = new float[matrices * gridSize(s)];
        List<List<Part>> perMatrix = matrixParts(s);
        List<byte[]> codes = new ArrayList<>(matrices);
        for (int m = 0; m < matrices; m++) codes.add(quantizeMatrix(s, perMatrix.get(m), o, scales, m * gridSize(s)));
        return new Quantized(codes, scales);
    }

    /** Block scales of one matrix of {@code s}. */
    private static int gridSize(Spec s) {
        int[] shape = s.shape();
        return blocks(shape[shape.length - 2]) * blocks(shape[shape.length - 1]);
    }

    /** The spec's parts, matrix by matrix (each matrix whole parts). */
    private static List<List<Part>> matrixParts(Spec s) {
        int[] shape = s.shape();
        long perMatrix = (long) shape[shape.length - 2] * shape[shape.length - 1];
        if (perMatrix > Integer.MAX_VALUE - 8) throw new JnextException(s.name() + ": a matrix too large to quantize in memory");
        int matrices = shape.length == 3 ? shape[0] : 1;
        List<List<Part>> out = new ArrayList<>(matrices);
        int next = 0;
        for (int m = 0; m < matrices; m++) {
            List<Part> mine = new ArrayList<>();
            long n = 0;
            while (n < perMatrix) {
                Part p = s.parts().get(next++);
                mine.add(p);
                n += p.count();
            }
            if (n != perMatrix) throw new IllegalStateException(s.name() + ": parts do not cut at matrix " + m);
            out.add(mine);
        }
        return out;
    }

    /** One matrix's values generated and block-quantized: its codes, its scales into {@code scales[base ..]}. */
    private static byte[] quantizeMatrix(Spec s, List<Part> parts, Options o, float[] scales, int base) {
        int[] shape = s.shape();
        int rows = shape[shape.length - 2], cols = shape[shape.length - 1], gc = blocks(cols);
        float[] v = matrixValues(parts, rows * cols, o);
        byte[] q = new byte[rows * cols];
        IntStream.range(0, blocks(rows)).parallel().forEach(b -> quantizeBand(v, q, rows, cols, b, scales, base + b * gc));
        return q;
    }

    /** The values of consecutive parts (generated chunk by chunk in parallel, as the plain writer draws them). */
    private static float[] matrixValues(List<Part> parts, int count, Options o) {
        float[] out = new float[count];
        int at = 0;
        for (Part p : parts) {
            long seed = streamSeed(o, p);
            int first = at;
            int chunks = (int) ((p.count() + CHUNK - 1) / CHUNK);
            IntStream.range(0, chunks).parallel().forEach(chunk -> {
                float[] v = values(p, o.logitScale(), seed, chunk);
                System.arraycopy(v, 0, out, first + chunk * CHUNK, v.length);
            });
            at += (int) p.count();
        }
        return out;
    }

    /** Row band {@code band} (128 rows, fewer at the bottom edge) by {@link Fp8Blocks#quantizeBand}. */
    private static void quantizeBand(float[] v, byte[] q, int rows, int cols, int band, float[] scales, int scaleAt) {
        int r0 = band * Fp8Quantization.BLOCK, n = Math.min(rows, r0 + Fp8Quantization.BLOCK) - r0;
        Fp8Blocks.quantizeBand(v, r0 * cols, n, cols, q, r0 * cols, scales, scaleAt);
    }

    private static ByteBuffer encode(float[] v, DType dtype) {
        ByteBuffer b = ByteBuffer.allocate(v.length * dtype.bytes()).order(ByteOrder.LITTLE_ENDIAN);
        for (float x : v) {
            switch (dtype) {
                case F32 -> b.putFloat(x);
                case BF16 -> b.putShort(Bf16.fromFloat(x));
                case F16 -> b.putShort(Float.floatToFloat16(x));
                case F8_E4M3 -> throw new IllegalArgumentException("FP8 tensors are block-quantized, not encoded value by value");
            }
        }
        return b.flip();
    }

    /** Chunk {@code chunk} of a part's values. */
    private static float[] values(Part p, float logitScale, long streamSeed, long chunk) {
        long start = chunk * CHUNK;
        int n = (int) Math.min(CHUNK, p.count() - start);
        SplittableRandom rnd = new SplittableRandom(streamSeed + chunk * 0xBF58476D1CE4E5B9L);
        float[] out = new float[n];
        float std = switch (p.init()) {
            case LINEAR -> (float) (1.0 / Math.sqrt(p.fanIn()));
            case CONV -> (float) (1.0 / Math.sqrt(p.fanIn()));
            case EMBEDDING -> 1.0f;
            case CENTRED_NORM, FINAL_NORM, GATED_NORM, DT_BIAS -> 0.1f;
            case A_LOG -> 0f;
        };
        float mean = switch (p.init()) {
            case GATED_NORM, DT_BIAS -> 1.0f;
            case FINAL_NORM -> logitScale - 1f;
            default -> 0f;
        };
        float halfWidth = std * (float) Math.sqrt(3.0);
        for (int i = 0; i < n; i++) {
            float u = ((rnd.nextInt() >>> 8) * 0x1p-24f) * 2f - 1f;    // uniform in [-1, 1)
            out[i] = p.init() == Init.A_LOG ? (float) Math.log(1.0 + 15.0 * (u + 1f) / 2f) : mean + halfWidth * u;
        }
        return out;
    }

    private static void writeFully(WritableByteChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) ch.write(b);
    }
}
