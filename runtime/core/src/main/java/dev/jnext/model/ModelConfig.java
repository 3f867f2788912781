package dev.jnext.model;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jnext.JnextException;
import dev.jnext.json.JsonFiles;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.AbstractList;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.RandomAccess;
import java.util.Set;

/**
 * A Qwen3-Next {@code config.json}: the fields that change the forward pass, with the defaults of
 * transformers 5.17's {@code Qwen3NextConfig}. Reads both the transformers 4.x style (top-level
 * {@code rope_theta}, {@code partial_rotary_factor}, {@code rope_scaling}, {@code full_attention_interval},
 * {@code torch_dtype}) and the 5.x style ({@code rope_parameters}, {@code layer_types}, {@code dtype}).
 *
 * <p>Each component is the config.json field of the same name in snake case ({@code vocabSize} is {@code
 * vocab_size}, {@code linearNumValueHeads} is {@code linear_num_value_heads}, ...), checked when the record is made.
 *
 * @param vocabSize                    ids of the embedding and the LM head
 * @param hiddenSize                   H, the residual stream's width
 * @param intermediateSize             width of the dense MLP (layers that are not MoE)
 * @param numHiddenLayers              decoder layers
 * @param numAttentionHeads            query heads of the full-attention layers
 * @param numKeyValueHeads             key/value heads of the full-attention layers
 * @param headDim                      width of an attention head
 * @param linearNumKeyHeads            Hk, key heads of the Gated DeltaNet layers
 * @param linearNumValueHeads          Hv, value heads of the Gated DeltaNet layers
 * @param linearKeyHeadDim             dk
 * @param linearValueHeadDim           dv
 * @param linearConvKernelDim          taps of the depthwise causal conv
 * @param numExperts                   routed experts per MoE layer (0: no MoE)
 * @param numExpertsPerTok             experts each token is routed to (top-k)
 * @param moeIntermediateSize          width of one routed expert
 * @param sharedExpertIntermediateSize width of the shared expert
 * @param decoderSparseStep            every n-th layer is MoE
 * @param mlpOnlyLayers                layers forced to the dense MLP
 * @param normTopkProb                 whether the top-k routing weights are renormalised to sum to 1
 * @param layerTypes                   token mixer of every layer (explicit {@code layer_types}, or derived from
 *                                     {@code full_attention_interval}: layer i is full attention iff (i+1) % interval == 0)
 * @param ropeTheta                    RoPE base
 * @param partialRotaryFactor          fraction of each head's dimensions that are rotated
 * @param rmsNormEps                   epsilon of every RMSNorm
 * @param maxPositionEmbeddings        the context length
 * @param tieWordEmbeddings            whether the LM head is the embedding
 * @param dtype                        the checkpoint's declared dtype (informational: each tensor's header dtype is
 *                                     what is read)
 * @param bosTokenId                   {@code bos_token_id}, or null
 * @param eosTokenIds                  end-of-sequence ids (config.json's int or list), possibly empty
 * @param quantization                 the {@code quantization_config} (fine-grained FP8, the only kind jnext loads), or
 *                                     null for an unquantized checkpoint
 */
public record ModelConfig(
        int vocabSize,
        int hiddenSize,
        int intermediateSize,
        int numHiddenLayers,
        int numAttentionHeads,
        int numKeyValueHeads,
        int headDim,
        int linearNumKeyHeads,
        int linearNumValueHeads,
        int linearKeyHeadDim,
        int linearValueHeadDim,
        int linearConvKernelDim,
        int numExperts,
        int numExpertsPerTok,
        int moeIntermediateSize,
        int sharedExpertIntermediateSize,
        int decoderSparseStep,
        List<Integer> mlpOnlyLayers,
        boolean normTopkProb,
        List<LayerType> layerTypes,
        double ropeTheta,
        double partialRotaryFactor,
        float rmsNormEps,
        int maxPositionEmbeddings,
        boolean tieWordEmbeddings,
        DType dtype,
        Integer bosTokenId,
        List<Integer> eosTokenIds,
        Fp8Quantization quantization) {

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(SerializationFeature.INDENT_OUTPUT);

    /** Copies the lists and checks every field (the message names the field and its value). */
    public ModelConfig {
        mlpOnlyLayers = List.copyOf(mlpOnlyLayers);
        layerTypes = layerTypes instanceof EveryNthFull ? layerTypes : List.copyOf(layerTypes);
        eosTokenIds = List.copyOf(eosTokenIds);
        validate("config", vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads,
                numKeyValueHeads, headDim, linearNumKeyHeads, linearNumValueHeads, linearKeyHeadDim,
                linearValueHeadDim, linearConvKernelDim, numExperts, numExpertsPerTok, moeIntermediateSize,
                sharedExpertIntermediateSize, decoderSparseStep, mlpOnlyLayers, layerTypes, ropeTheta,
                partialRotaryFactor, rmsNormEps, maxPositionEmbeddings);
    }

    /** An unquantized configuration (no {@code quantization_config}). */
    public ModelConfig(int vocabSize, int hiddenSize, int intermediateSize, int numHiddenLayers, int numAttentionHeads,
                       int numKeyValueHeads, int headDim, int linearNumKeyHeads, int linearNumValueHeads,
                       int linearKeyHeadDim, int linearValueHeadDim, int linearConvKernelDim, int numExperts,
                       int numExpertsPerTok, int moeIntermediateSize, int sharedExpertIntermediateSize,
                       int decoderSparseStep, List<Integer> mlpOnlyLayers, boolean normTopkProb,
                       List<LayerType> layerTypes, double ropeTheta, double partialRotaryFactor, float rmsNormEps,
                       int maxPositionEmbeddings, boolean tieWordEmbeddings, DType dtype, Integer bosTokenId,
                       List<Integer> eosTokenIds) {
        this(vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads, numKeyValueHeads, headDim,
                linearNumKeyHeads, linearNumValueHeads, linearKeyHeadDim, linearValueHeadDim, linearConvKernelDim,
                numExperts, numExpertsPerTok, moeIntermediateSize, sharedExpertIntermediateSize, decoderSparseStep,
                mlpOnlyLayers, normTopkProb, layerTypes, ropeTheta, partialRotaryFactor, rmsNormEps,
                maxPositionEmbeddings, tieWordEmbeddings, dtype, bosTokenId, eosTokenIds, null);
    }

    /** This configuration with {@code quantization} (null: unquantized). */
    public ModelConfig withQuantization(Fp8Quantization quantization) {
        return new ModelConfig(vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads,
                numKeyValueHeads, headDim, linearNumKeyHeads, linearNumValueHeads, linearKeyHeadDim, linearValueHeadDim,
                linearConvKernelDim, numExperts, numExpertsPerTok, moeIntermediateSize, sharedExpertIntermediateSize,
                decoderSparseStep, mlpOnlyLayers, normTopkProb, layerTypes, ropeTheta, partialRotaryFactor, rmsNormEps,
                maxPositionEmbeddings, tieWordEmbeddings, dtype, bosTokenId, eosTokenIds, quantization);
    }

    // ---- derived geometry -------------------------------------------------------------------------------

    /** The token mixer of {@code layer} (0-based). */
    public LayerType layerType(int layer) {
        return layerTypes.get(layer);
    }

    /** HF's rule: MoE iff not in mlp_only_layers, num_experts > 0 and (i+1) % decoder_sparse_step == 0. */
    public boolean isMoeLayer(int layer) {
        return !mlpOnlyLayers.contains(layer) && numExperts > 0 && (layer + 1) % decoderSparseStep == 0;
    }

    /** Rotary dimensions per attention head: int(head_dim × partial_rotary_factor). */
    public int rotaryDim() {
        return (int) (headDim * partialRotaryFactor);
    }

    /** Value heads per key head in the Gated DeltaNet (r = Hv / Hk). */
    public int valueHeadsPerKeyHead() {
        return linearNumValueHeads / linearNumKeyHeads;
    }

    /** Hk·dk: width of the GDN query (and key) channels. */
    public int linearKeyDim() {
        return Math.multiplyExact(linearNumKeyHeads, linearKeyHeadDim);
    }

    /** Hv·dv: width of the GDN value channels. */
    public int linearValueDim() {
        return Math.multiplyExact(linearNumValueHeads, linearValueHeadDim);
    }

    /** Channels of the depthwise conv: 2·Hk·dk + Hv·dv. */
    public int convDim() {
        return Math.addExact(Math.multiplyExact(2, linearKeyDim()), linearValueDim());
    }

    /** How many layers have token mixer {@code type}. */
    public int countLayers(LayerType type) {
        return (int) layerTypes.stream().filter(t -> t == type).count();
    }

    // ---- loading ------------------------------------------------------------------------------------------

    /** Reads {@code dir/config.json} (or the file itself when {@code path} is a file). */
    public static ModelConfig load(Path path) {
        Path file = Files.isDirectory(path) ? path.resolve("config.json") : path;
        if (!Files.exists(file)) {
            throw new JnextException(file + ": no such file (a Hugging Face model directory needs config.json)");
        }
        return parse(JsonFiles.readText(file), file.toString());
    }

    /** Parses config.json text; {@code source} names it in error messages. */
    public static ModelConfig parse(String text, String source) {
        JsonNode root = JsonFiles.parse(text, source);
        if (!root.isObject()) throw new JnextException(source + ": expected a JSON object");
        return new Reader(root, source).read();
    }

    /** The transformers 5.x style config.json for this configuration (rope_parameters, layer_types, dtype). */
    public String toJson() {
        ObjectNode o = JSON.createObjectNode();
        o.putArray("architectures").add("Qwen3NextForCausalLM");
        o.put("model_type", "qwen3_next");
        o.put("vocab_size", vocabSize);
        o.put("hidden_size", hiddenSize);
        o.put("intermediate_size", intermediateSize);
        o.put("num_hidden_layers", numHiddenLayers);
        o.put("num_attention_heads", numAttentionHeads);
        o.put("num_key_value_heads", numKeyValueHeads);
        o.put("head_dim", headDim);
        o.put("linear_num_key_heads", linearNumKeyHeads);
        o.put("linear_num_value_heads", linearNumValueHeads);
        o.put("linear_key_head_dim", linearKeyHeadDim);
        o.put("linear_value_head_dim", linearValueHeadDim);
        o.put("linear_conv_kernel_dim", linearConvKernelDim);
        o.put("num_experts", numExperts);
        o.put("num_experts_per_tok", numExpertsPerTok);
        o.put("moe_intermediate_size", moeIntermediateSize);
        o.put("shared_expert_intermediate_size", sharedExpertIntermediateSize);
        o.put("decoder_sparse_step", decoderSparseStep);
        ArrayNode mlpOnly = o.putArray("mlp_only_layers");
        mlpOnlyLayers.forEach(mlpOnly::add);
        o.put("norm_topk_prob", normTopkProb);
        ArrayNode types = o.putArray("layer_types");
        layerTypes.forEach(t -> types.add(t.jsonName()));
        ObjectNode rope = o.putObject("rope_parameters");
        rope.put("rope_type", "default");
        rope.put("rope_theta", ropeTheta);
        rope.put("partial_rotary_factor", partialRotaryFactor);
        o.put("partial_rotary_factor", partialRotaryFactor);
        o.put("rms_norm_eps", (double) rmsNormEps);
        o.put("max_position_embeddings", maxPositionEmbeddings);
        o.put("tie_word_embeddings", tieWordEmbeddings);
        o.put("hidden_act", "silu");
        o.put("attention_bias", false);
        o.put("dtype", dtype.torchName());
        if (bosTokenId != null) o.put("bos_token_id", bosTokenId);
        if (eosTokenIds.size() == 1) o.put("eos_token_id", eosTokenIds.getFirst());
        else if (!eosTokenIds.isEmpty()) eosTokenIds.forEach(o.putArray("eos_token_id")::add);
        if (quantization != null) quantization.toJson(o.putObject("quantization_config"));
        try {
            return JSON.writeValueAsString(o);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void validate(String src, int vocab, int hidden, int inter, int layers, int heads, int kvHeads,
                                 int headDim, int hk, int hv, int dk, int dv, int kernel, int experts, int topK,
                                 int moeI, int sharedI, int sparseStep, List<Integer> mlpOnly,
                                 List<LayerType> types, double theta, double partial, float eps, int maxPositions) {
        positive(src, "vocab_size", vocab);
        positive(src, "hidden_size", hidden);
        positive(src, "num_hidden_layers", layers);
        positive(src, "num_attention_heads", heads);
        positive(src, "num_key_value_heads", kvHeads);
        positive(src, "head_dim", headDim);
        positive(src, "linear_num_key_heads", hk);
        positive(src, "linear_num_value_heads", hv);
        positive(src, "linear_key_head_dim", dk);
        positive(src, "linear_value_head_dim", dv);
        positive(src, "linear_conv_kernel_dim", kernel);
        positive(src, "decoder_sparse_step", sparseStep);
        positive(src, "max_position_embeddings", maxPositions);
        if (heads % kvHeads != 0) {
            throw new JnextException(src + ": num_attention_heads (" + heads
                    + ") is not a multiple of num_key_value_heads (" + kvHeads + ")");
        }
        if (hv % hk != 0) {
            throw new JnextException(src + ": linear_num_value_heads (" + hv
                    + ") is not a multiple of linear_num_key_heads (" + hk + ")");
        }
        if (experts < 0) throw new JnextException(src + ": num_experts must be >= 0, got " + experts);
        if (types.size() != layers) {
            throw new JnextException(src + ": layer_types has " + types.size() + " entries but num_hidden_layers is "
                    + layers);
        }
        for (int l : mlpOnly) {
            if (l < 0 || l >= layers) {
                throw new JnextException(src + ": mlp_only_layers contains " + l + ", outside 0.." + (layers - 1));
            }
        }
        // which kinds of feed-forward occur, without visiting each of up to 2^31 - 1 layers: layer i is MoE iff
        // experts > 0, (i + 1) % step == 0 and i is not in mlp_only_layers
        Set<Integer> dense = new HashSet<>(mlpOnly);
        long moeSlots = experts > 0 ? layers / sparseStep : 0;
        long moeSlotsMadeDense = dense.stream().filter(l -> (l + 1) % sparseStep == 0).count();
        boolean anyMoe = moeSlots > moeSlotsMadeDense;
        boolean anyDense = layers > moeSlots || moeSlotsMadeDense > 0;
        if (anyMoe) {
            positive(src, "num_experts_per_tok", topK);
            positive(src, "moe_intermediate_size", moeI);
            positive(src, "shared_expert_intermediate_size", sharedI);
            if (topK > experts) {
                throw new JnextException(src + ": num_experts_per_tok (" + topK + ") exceeds num_experts ("
                        + experts + ")");
            }
        }
        if (anyDense) positive(src, "intermediate_size", inter);
        // every size the model derives from these fields is an int (array lengths, tensor dimensions)
        // (num_key_value_heads divides num_attention_heads, so the k/v rows are at most the q rows; the in_proj_qkvz
        // rows bound every other GDN width, and the conv1d weights the conv state)
        size(src, "q_proj rows", "num_attention_heads × head_dim × 2", product(heads, headDim, 2));
        BigInteger keyDim = product(hk, dk);
        BigInteger valueDim = product(hv, dv);
        BigInteger two = BigInteger.TWO;
        size(src, "in_proj_qkvz rows", "2 × linear_num_key_heads × linear_key_head_dim + 2 × linear_num_value_heads "
                + "× linear_value_head_dim", two.multiply(keyDim).add(two.multiply(valueDim)));
        size(src, "conv1d weights", "(2 × linear_num_key_heads × linear_key_head_dim + linear_num_value_heads "
                + "× linear_value_head_dim) × linear_conv_kernel_dim",
                two.multiply(keyDim).add(valueDim).multiply(BigInteger.valueOf(kernel)));
        size(src, "recurrent state of a sequence", "linear_num_value_heads × linear_key_head_dim × "
                + "linear_value_head_dim", product(hv, dk, dv));
        if (anyMoe) size(src, "fused gate_up_proj rows", "moe_intermediate_size × 2", product(moeI, 2));
        if (!(theta > 0) || Double.isInfinite(theta)) {
            throw new JnextException(src + ": rope_theta must be a positive number, got " + theta);
        }
        if (!(partial > 0 && partial <= 1)) {
            throw new JnextException(src + ": partial_rotary_factor must be in (0, 1], got " + partial);
        }
        int rd = (int) (headDim * partial);
        if (rd < 2 || rd % 2 != 0) {
            throw new JnextException(src + ": partial_rotary_factor " + partial + " × head_dim " + headDim
                    + " gives " + rd + " rotary dims; expected an even number >= 2");
        }
        if (!(eps > 0) || Float.isInfinite(eps)) {
            throw new JnextException(src + ": rms_norm_eps must be a positive number, got " + eps);
        }
    }

    private static void positive(String src, String field, int v) {
        if (v <= 0) throw new JnextException(src + ": " + field + " must be a positive integer, got " + v);
    }

    /** A size derived from config fields must fit a Java array; the error names the fields it comes from. */
    private static void size(String src, String what, String fields, BigInteger value) {
        if (value.compareTo(BigInteger.valueOf(MAX_SIZE)) > 0) {
            throw new JnextException(src + ": " + fields + " = " + value + " is too large (the " + what
                    + " must be at most " + MAX_SIZE + ")");
        }
    }

    private static BigInteger product(long... factors) {
        BigInteger p = BigInteger.ONE;
        for (long f : factors) p = p.multiply(BigInteger.valueOf(f));
        return p;
    }

    /** The largest Java array (a few JVMs refuse the last handful of elements below 2^31 - 1). */
    private static final long MAX_SIZE = Integer.MAX_VALUE - 8;

    /**
     * Layer i is full attention iff (i + 1) % interval == 0: the transformers 4.x {@code full_attention_interval}
     * rule as a list of num_hidden_layers entries that holds none of them, so a huge layer count costs nothing
     * before the checkpoint is checked against it.
     */
    private static final class EveryNthFull extends AbstractList<LayerType> implements RandomAccess {
        private final int size;
        private final int interval;

        EveryNthFull(int size, int interval) {
            this.size = size;
            this.interval = interval;
        }

        @Override
        public LayerType get(int i) {
            Objects.checkIndex(i, size);
            return (i + 1) % interval == 0 ? LayerType.FULL_ATTENTION : LayerType.LINEAR_ATTENTION;
        }

        @Override
        public int size() {
            return size;
        }

        @Override
        public String toString() { // a message or log line must not spell out 2^31 - 1 layers
            return size <= 64 ? super.toString() : "[every " + interval + "th of " + size + " layers full_attention]";
        }
    }

    /** Field-by-field reading with the HF 5.17 defaults; every error names the field. */
    private record Reader(JsonNode root, String src) {

        ModelConfig read() {
            String modelType = str("model_type", null);
            if (modelType != null && !modelType.equals("qwen3_next")) {
                throw new JnextException(src + ": model_type is \"" + modelType + "\"; jnext runs \"qwen3_next\"");
            }
            Fp8Quantization quantization = quantization();
            String act = str("hidden_act", "silu");
            if (!act.equals("silu")) {
                throw new JnextException(src + ": hidden_act \"" + act + "\" is not supported (Qwen3-Next uses silu)");
            }
            if (bool("attention_bias", false)) {
                throw new JnextException(src + ": attention_bias true is not supported (Qwen3-Next has no biases)");
            }
            int layers = integer("num_hidden_layers", 48);
            List<LayerType> types = layerTypes(layers);
            Rope rope = rope();
            DType dtype = DType.F32;
            if (present("dtype")) dtype = DType.fromTorchName(str("dtype", null), src + ": dtype");
            else if (present("torch_dtype")) dtype = DType.fromTorchName(str("torch_dtype", null), src + ": torch_dtype");
            try {
                return build(layers, types, rope, dtype).withQuantization(quantization);
            } catch (JnextException e) { // the record's own checks say "config: ..."; name the file instead
                throw new JnextException(e.getMessage().replaceFirst("^config: ", src + ": "), e);
            }
        }

        private ModelConfig build(int layers, List<LayerType> types, Rope rope, DType dtype) {
            return new ModelConfig(
                    integer("vocab_size", 151936),
                    integer("hidden_size", 2048),
                    integer("intermediate_size", 5632),
                    layers,
                    integer("num_attention_heads", 16),
                    integer("num_key_value_heads", 2),
                    integer("head_dim", 256),
                    integer("linear_num_key_heads", 16),
                    integer("linear_num_value_heads", 32),
                    integer("linear_key_head_dim", 128),
                    integer("linear_value_head_dim", 128),
                    integer("linear_conv_kernel_dim", 4),
                    integer("num_experts", 512),
                    integer("num_experts_per_tok", 10),
                    integer("moe_intermediate_size", 512),
                    integer("shared_expert_intermediate_size", 512),
                    integer("decoder_sparse_step", 1),
                    intList("mlp_only_layers"),
                    bool("norm_topk_prob", true),
                    types,
                    rope.theta,
                    rope.partial,
                    (float) number("rms_norm_eps", 1e-6),
                    integer("max_position_embeddings", 32768),
                    bool("tie_word_embeddings", false),
                    dtype,
                    present("bos_token_id") ? integer("bos_token_id", 0) : null,
                    present("eos_token_id") ? intOrList("eos_token_id") : List.of());
        }

        /** Refused before anything else is read from the checkpoint: any quantization but fine-grained FP8. */
        private Fp8Quantization quantization() {
            JsonNode compression = root.get("compression_config");
            if (compression != null && !compression.isNull()) {
                throw new JnextException(src + ": compression_config (compressed-tensors) is not supported; "
                        + Fp8Quantization.SUPPORTED);
            }
            JsonNode q = root.get("quantization_config");
            return q == null || q.isNull() ? null : Fp8Quantization.parse(q, src);
        }

        private record Rope(double theta, double partial) {}

        private Rope rope() {
            double theta = number("rope_theta", 10000.0);
            double partial = number("partial_rotary_factor", 0.25);
            JsonNode scaling = root.get("rope_scaling");
            if (scaling != null && !scaling.isNull()) checkRopeType(scaling, "rope_scaling");
            JsonNode params = root.get("rope_parameters");
            if (params != null && !params.isNull()) {
                if (!params.isObject()) throw new JnextException(src + ": rope_parameters must be an object");
                if (!params.has("rope_theta") && params.path("full_attention").isObject()) {
                    params = params.get("full_attention"); // per-layer-type form
                }
                checkRopeType(params, "rope_parameters");
                if (params.has("rope_theta")) theta = num(params.get("rope_theta"), "rope_parameters.rope_theta");
                if (params.has("partial_rotary_factor")) {
                    partial = num(params.get("partial_rotary_factor"), "rope_parameters.partial_rotary_factor");
                }
            }
            return new Rope(theta, partial);
        }

        private void checkRopeType(JsonNode node, String field) {
            if (!node.isObject()) throw new JnextException(src + ": " + field + " must be an object or null");
            JsonNode t = node.has("rope_type") ? node.get("rope_type") : node.get("type");
            if (t == null || t.isNull()) return;
            if (!t.isTextual() || !t.asText().equals("default")) {
                throw new JnextException(src + ": " + field + " has rope type " + t
                        + "; only the default RoPE is implemented");
            }
        }

        private List<LayerType> layerTypes(int layers) {
            JsonNode lt = root.get("layer_types");
            List<LayerType> out = new ArrayList<>();
            if (lt != null && !lt.isNull()) {
                if (!lt.isArray()) throw new JnextException(src + ": layer_types must be a list of strings");
                for (int i = 0; i < lt.size(); i++) {
                    LayerType t = lt.get(i).isTextual() ? LayerType.fromJson(lt.get(i).asText()) : null;
                    if (t == null) {
                        throw new JnextException(src + ": layer_types[" + i + "] is " + lt.get(i)
                                + "; expected \"linear_attention\" or \"full_attention\"");
                    }
                    out.add(t);
                }
                return out;
            }
            int interval = integer("full_attention_interval", 4);
            if (interval <= 0) {
                throw new JnextException(src + ": full_attention_interval must be a positive integer, got " + interval);
            }
            return new EveryNthFull(Math.max(layers, 0), interval);
        }

        private boolean present(String f) {
            return root.has(f) && !root.get(f).isNull();
        }

        private int integer(String f, int def) {
            JsonNode n = root.get(f);
            if (n == null || n.isNull()) return def;
            if (!n.isIntegralNumber()) throw new JnextException(src + ": " + f + " must be an integer, got " + n);
            if (!n.canConvertToInt()) {
                throw new JnextException(src + ": " + f + " is " + n + ", out of range (at most " + Integer.MAX_VALUE + ")");
            }
            return n.intValue();
        }

        private double number(String f, double def) {
            JsonNode n = root.get(f);
            if (n == null || n.isNull()) return def;
            return num(n, f);
        }

        private double num(JsonNode n, String f) {
            if (!n.isNumber()) throw new JnextException(src + ": " + f + " must be a number, got " + n);
            return n.doubleValue();
        }

        private boolean bool(String f, boolean def) {
            JsonNode n = root.get(f);
            if (n == null || n.isNull()) return def;
            if (!n.isBoolean()) throw new JnextException(src + ": " + f + " must be true or false, got " + n);
            return n.booleanValue();
        }

        private String str(String f, String def) {
            JsonNode n = root.get(f);
            if (n == null || n.isNull()) return def;
            if (!n.isTextual()) throw new JnextException(src + ": " + f + " must be a string, got " + n);
            return n.asText();
        }

        private List<Integer> intList(String f) {
            JsonNode n = root.get(f);
            List<Integer> out = new ArrayList<>();
            if (n == null || n.isNull()) return out;
            if (!n.isArray()) throw new JnextException(src + ": " + f + " must be a list of integers, got " + n);
            for (JsonNode e : n) {
                if (!e.isIntegralNumber() || !e.canConvertToInt()) {
                    throw new JnextException(src + ": " + f + " must be a list of integers, found " + e);
                }
                out.add(e.intValue());
            }
            return out;
        }

        private List<Integer> intOrList(String f) {
            JsonNode n = root.get(f);
            if (n.isArray()) return intList(f);
            return List.of(integer(f, 0));
        }
    }
}
