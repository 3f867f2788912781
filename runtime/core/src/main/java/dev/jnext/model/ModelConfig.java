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
 * A Qwen3-Next or Qwen3.5/3.6 {@code config.json}: the fields that change the forward pass, with the defaults of
 * transformers 5.17's {@code Qwen3NextConfig}, {@code Qwen3_5TextConfig} and {@code Qwen3_5MoeTextConfig}. Reads both
 * the transformers 4.x style (top-level {@code rope_theta}, {@code partial_rotary_factor}, {@code rope_scaling},
 * {@code full_attention_interval}, {@code torch_dtype}) and the 5.x style ({@code rope_parameters}, {@code layer_types},
 * {@code dtype}), and the Qwen3.5 multimodal wrapper ({@code model_type} {@code qwen3_5} / {@code qwen3_5_moe}): the
 * text model's fields come from its {@code text_config}, {@code tie_word_embeddings} from the wrapper (as
 * {@code Qwen3_5ForConditionalGeneration} ties), the vision tower's config is not read.
 *
 * <p>Per family, as transformers reads them: Qwen3.5 dense ignores the MoE fields (a SwiGLU MLP in every layer);
 * Qwen3.5 MoE ignores {@code intermediate_size}, {@code decoder_sparse_step}, {@code mlp_only_layers} and
 * {@code norm_topk_prob} (the sparse block in every layer, top-k weights always renormalised).
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
 * @param family                       which family the config describes (its {@code model_type})
 * @param multimodal                   whether config.json is the Qwen3.5 multimodal wrapper (text model under
 *                                     {@code text_config}, its weights under {@code model.language_model.})
 * @param mropeSection                 Qwen3.5's {@code rope_parameters.mrope_section} (T, H, W frequency counts), empty
 *                                     for Qwen3-Next; with text positions equal on the three axes it does not change
 *                                     the rotation
 * @param mropeInterleaved             Qwen3.5's {@code rope_parameters.mrope_interleaved} (informational: transformers
 *                                     5.17 always interleaves, and text positions make it moot)
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
        ModelFamily family,
        boolean multimodal,
        List<Integer> mropeSection,
        boolean mropeInterleaved,
        Fp8Quantization quantization) {

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(SerializationFeature.INDENT_OUTPUT);

    /** Copies the lists and checks every field (the message names the field and its value). */
    public ModelConfig {
        mlpOnlyLayers = List.copyOf(mlpOnlyLayers);
        layerTypes = layerTypes instanceof EveryNthFull ? layerTypes : List.copyOf(layerTypes);
        eosTokenIds = List.copyOf(eosTokenIds);
        Objects.requireNonNull(family, "family");
        mropeSection = List.copyOf(mropeSection);
        validateFamily("config", family, multimodal, mropeSection, numExperts, decoderSparseStep, mlpOnlyLayers,
                normTopkProb);
        validate("config", vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads,
                numKeyValueHeads, headDim, linearNumKeyHeads, linearNumValueHeads, linearKeyHeadDim,
                linearValueHeadDim, linearConvKernelDim, numExperts, numExpertsPerTok, moeIntermediateSize,
                sharedExpertIntermediateSize, decoderSparseStep, mlpOnlyLayers, layerTypes, ropeTheta,
                partialRotaryFactor, rmsNormEps, maxPositionEmbeddings);
    }

    /** A Qwen3-Next configuration without quantization (the fields before the family ones; no mrope, not a multimodal wrapper). */
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
                maxPositionEmbeddings, tieWordEmbeddings, dtype, bosTokenId, eosTokenIds, ModelFamily.QWEN3_NEXT,
                false, List.of(), false, null);
    }

    /** This configuration with {@code quantization} (null: unquantized). */
    public ModelConfig withQuantization(Fp8Quantization quantization) {
        return new ModelConfig(vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads,
                numKeyValueHeads, headDim, linearNumKeyHeads, linearNumValueHeads, linearKeyHeadDim, linearValueHeadDim,
                linearConvKernelDim, numExperts, numExpertsPerTok, moeIntermediateSize, sharedExpertIntermediateSize,
                decoderSparseStep, mlpOnlyLayers, normTopkProb, layerTypes, ropeTheta, partialRotaryFactor, rmsNormEps,
                maxPositionEmbeddings, tieWordEmbeddings, dtype, bosTokenId, eosTokenIds, family, multimodal,
                mropeSection, mropeInterleaved, quantization);
    }

    /**
     * This Qwen3.5 configuration as the multimodal wrapper's ({@code true}: config.json with {@code text_config}, weights
     * under {@code model.language_model.}) or the text-only one's.
     */
    public ModelConfig withMultimodal(boolean multimodal) {
        return new ModelConfig(vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads,
                numKeyValueHeads, headDim, linearNumKeyHeads, linearNumValueHeads, linearKeyHeadDim, linearValueHeadDim,
                linearConvKernelDim, numExperts, numExpertsPerTok, moeIntermediateSize, sharedExpertIntermediateSize,
                decoderSparseStep, mlpOnlyLayers, normTopkProb, layerTypes, ropeTheta, partialRotaryFactor, rmsNormEps,
                maxPositionEmbeddings, tieWordEmbeddings, dtype, bosTokenId, eosTokenIds, family, multimodal,
                mropeSection, mropeInterleaved, quantization);
    }

    /** transformers' default {@code mrope_section} for the Qwen3.5 text rotary embedding. */
    public static final List<Integer> DEFAULT_MROPE_SECTION = List.of(11, 11, 10);

    // ---- derived geometry -------------------------------------------------------------------------------

    /**
     * The prefix of the text model's tensors: {@code model.language_model.} in a multimodal wrapper, else
     * {@code model.} ({@code lm_head.weight} has none in either).
     */
    public String weightPrefix() {
        return multimodal ? "model.language_model." : "model.";
    }

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
        if (SyntheticSource.is(path)) return SyntheticSource.parse(path).config();
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

    /**
     * The transformers 5.x style config.json for this configuration (rope_parameters, layer_types, dtype); a Qwen3.5
     * multimodal wrapper holds the text model's fields under {@code text_config} (and no {@code vision_config}).
     */
    public String toJson() {
        ObjectNode o = textJson();
        if (multimodal) {
            ObjectNode w = JSON.createObjectNode();
            w.putArray("architectures").add(family.wrapperArchitecture());
            w.put("model_type", family.wrapperModelType());
            o.remove("architectures");
            w.set("text_config", o);
            w.put("tie_word_embeddings", tieWordEmbeddings);
            w.put("dtype", dtype.torchName());
            o = w;
        }
        if (quantization != null) quantization.toJson(o.putObject("quantization_config"));
        try {
            return JSON.writeValueAsString(o);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private ObjectNode textJson() {
        ObjectNode o = JSON.createObjectNode();
        o.putArray("architectures").add(family.textArchitecture());
        o.put("model_type", family.textModelType());
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
        if (family.hasMoeFields()) {
            o.put("num_experts", numExperts);
            o.put("num_experts_per_tok", numExpertsPerTok);
            o.put("moe_intermediate_size", moeIntermediateSize);
            o.put("shared_expert_intermediate_size", sharedExpertIntermediateSize);
        }
        if (family == ModelFamily.QWEN3_NEXT) {
            o.put("decoder_sparse_step", decoderSparseStep);
            ArrayNode mlpOnly = o.putArray("mlp_only_layers");
            mlpOnlyLayers.forEach(mlpOnly::add);
            o.put("norm_topk_prob", normTopkProb);
        }
        if (family == ModelFamily.QWEN3_5_MOE) o.remove("intermediate_size");
        ArrayNode types = o.putArray("layer_types");
        layerTypes.forEach(t -> types.add(t.jsonName()));
        ObjectNode rope = o.putObject("rope_parameters");
        rope.put("rope_type", "default");
        rope.put("rope_theta", ropeTheta);
        rope.put("partial_rotary_factor", partialRotaryFactor);
        if (!mropeSection.isEmpty()) {
            mropeSection.forEach(rope.putArray("mrope_section")::add);
            rope.put("mrope_interleaved", mropeInterleaved);
        }
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
        return o;
    }

    private static void validateFamily(String src, ModelFamily family, boolean multimodal, List<Integer> mrope,
                                       int experts, int sparseStep, List<Integer> mlpOnly, boolean normTopk) {
        if (multimodal && family.wrapperModelType() == null) {
            throw new JnextException(src + ": " + family.displayName() + " has no multimodal wrapper");
        }
        if (family == ModelFamily.QWEN3_NEXT && !mrope.isEmpty()) {
            throw new JnextException(src + ": mrope_section is a Qwen3.5 field; Qwen3-Next has none");
        }
        if (!mrope.isEmpty()) {
            if (mrope.size() != 3) {
                throw new JnextException(src + ": rope_parameters.mrope_section must list 3 sizes (T, H, W), got " + mrope);
            }
            for (int m : mrope) {
                if (m < 0) throw new JnextException(src + ": rope_parameters.mrope_section has a negative size: " + mrope);
            }
        }
        switch (family) {
            case QWEN3_5 -> {
                if (experts != 0) {
                    throw new JnextException(src + ": a Qwen3.5 dense model has no experts (num_experts " + experts + ")");
                }
            }
            case QWEN3_5_MOE -> {
                if (experts <= 0) throw new JnextException(src + ": num_experts must be a positive integer, got " + experts);
                if (sparseStep != 1 || !mlpOnly.isEmpty() || !normTopk) {
                    throw new JnextException(src + ": a Qwen3.5 MoE model has the sparse block in every layer and "
                            + "renormalises its top-k weights (decoder_sparse_step 1, no mlp_only_layers, norm_topk_prob)");
                }
            }
            case QWEN3_NEXT -> { }
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
            ModelFamily family = ModelFamily.QWEN3_NEXT;
            if (modelType != null) {
                family = ModelFamily.ofModelType(modelType);
                if (family == null) {
                    throw new JnextException(src + ": model_type is \"" + modelType + "\"; jnext runs \"qwen3_next\", "
                            + "\"qwen3_5\" / \"qwen3_5_text\" and \"qwen3_5_moe\" / \"qwen3_5_moe_text\" (Qwen3.5, Qwen3.6)");
                }
            }
            Fp8Quantization quantization = quantization();  // refused before anything else is read
            if (modelType == null || !modelType.equals(family.wrapperModelType())) {
                return readText(family, false, null).withQuantization(quantization);
            }
            // the multimodal wrapper: the language model is text_config; tie_word_embeddings is the wrapper's own
            JsonNode text = root.get("text_config");
            if (text == null || !text.isObject()) {
                throw new JnextException(src + ": a \"" + modelType + "\" config.json needs a text_config object");
            }
            Reader inner = new Reader(text, src + " (text_config)");
            String innerType = inner.str("model_type", null);
            if (innerType != null && !innerType.equals(family.textModelType())) {
                throw new JnextException(src + ": text_config.model_type is \"" + innerType + "\" inside a \"" + modelType
                        + "\" config; expected \"" + family.textModelType() + "\"");
            }
            return inner.readText(family, true, this).withQuantization(quantization);
        }

        /** The text model's fields from this node; {@code wrapper} is the multimodal config around it, or null. */
        private ModelConfig readText(ModelFamily family, boolean multimodal, Reader wrapper) {
            String act = str("hidden_act", "silu");
            if (!act.equals("silu")) {
                throw new JnextException(src + ": hidden_act \"" + act + "\" is not supported (" + family.displayName()
                        + " uses silu)");
            }
            if (bool("attention_bias", false)) {
                throw new JnextException(src + ": attention_bias true is not supported (" + family.displayName()
                        + " has no biases)");
            }
            int layers = integer("num_hidden_layers", switch (family) {
                case QWEN3_NEXT -> 48;
                case QWEN3_5 -> 32;
                case QWEN3_5_MOE -> 40;
            });
            List<LayerType> types = layerTypes(layers);
            Rope rope = rope();
            DType dtype = dtype();
            if (dtype == null && wrapper != null) dtype = wrapper.dtype();
            if (dtype == null) dtype = DType.F32;
            boolean tie = wrapper != null ? wrapper.bool("tie_word_embeddings", false) : bool("tie_word_embeddings", false);
            Reader ids = wrapper != null && !present("eos_token_id") && !present("bos_token_id") ? wrapper : this;
            try {
                return build(family, multimodal, layers, types, rope, dtype, tie, ids);
            } catch (JnextException e) { // the record's own checks say "config: ..."; name the file instead
                throw new JnextException(e.getMessage().replaceFirst("^config: ", src + ": "), e);
            }
        }

        private DType dtype() {
            if (present("dtype")) return DType.fromTorchName(str("dtype", null), src + ": dtype");
            if (present("torch_dtype")) return DType.fromTorchName(str("torch_dtype", null), src + ": torch_dtype");
            return null;
        }

        private ModelConfig build(ModelFamily family, boolean multimodal, int layers, List<LayerType> types, Rope rope,
                                  DType dtype, boolean tie, Reader ids) {
            boolean next = family == ModelFamily.QWEN3_NEXT;
            boolean moe35 = family == ModelFamily.QWEN3_5_MOE;
            return new ModelConfig(
                    integer("vocab_size", next ? 151936 : 248320),
                    integer("hidden_size", family == ModelFamily.QWEN3_5 ? 4096 : 2048),
                    moe35 ? 0 : integer("intermediate_size", next ? 5632 : 12288),   // Qwen3.5 MoE has no dense MLP
                    layers,
                    integer("num_attention_heads", 16),
                    integer("num_key_value_heads", family == ModelFamily.QWEN3_5 ? 4 : 2),
                    integer("head_dim", 256),
                    integer("linear_num_key_heads", 16),
                    integer("linear_num_value_heads", 32),
                    integer("linear_key_head_dim", 128),
                    integer("linear_value_head_dim", 128),
                    integer("linear_conv_kernel_dim", 4),
                    family.hasMoeFields() ? integer("num_experts", next ? 512 : 256) : 0,
                    family.hasMoeFields() ? integer("num_experts_per_tok", next ? 10 : 8) : 0,
                    family.hasMoeFields() ? integer("moe_intermediate_size", 512) : 0,
                    family.hasMoeFields() ? integer("shared_expert_intermediate_size", 512) : 0,
                    next ? integer("decoder_sparse_step", 1) : 1,
                    next ? intList("mlp_only_layers") : List.of(),
                    !next || bool("norm_topk_prob", true),
                    types,
                    rope.theta,
                    rope.partial,
                    (float) number("rms_norm_eps", 1e-6),
                    integer("max_position_embeddings", 32768),
                    tie,
                    dtype,
                    ids.present("bos_token_id") ? ids.integer("bos_token_id", 0) : null,
                    ids.present("eos_token_id") ? ids.intOrList("eos_token_id") : List.of(),
                    family,
                    multimodal,
                    next ? List.of() : rope.mropeSection == null ? DEFAULT_MROPE_SECTION : rope.mropeSection,
                    !next && rope.mropeInterleaved,
                    null);
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

        private record Rope(double theta, double partial, List<Integer> mropeSection, boolean mropeInterleaved) {}

        private Rope rope() {
            double theta = number("rope_theta", 10000.0);
            double partial = number("partial_rotary_factor", 0.25);
            List<Integer> mrope = null;
            boolean interleaved = true;   // what transformers 5.17 computes whatever the flag says
            JsonNode scaling = root.get("rope_scaling");
            if (scaling != null && !scaling.isNull()) {
                checkRopeType(scaling, "rope_scaling");
                if (scaling.has("mrope_section")) mrope = ints(scaling.get("mrope_section"), "rope_scaling.mrope_section");
                if (scaling.has("mrope_interleaved")) interleaved = flag(scaling.get("mrope_interleaved"), "rope_scaling.mrope_interleaved");
            }
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
                if (params.has("mrope_section")) mrope = ints(params.get("mrope_section"), "rope_parameters.mrope_section");
                if (params.has("mrope_interleaved")) {
                    interleaved = flag(params.get("mrope_interleaved"), "rope_parameters.mrope_interleaved");
                }
            }
            return new Rope(theta, partial, mrope, interleaved);
        }

        private List<Integer> ints(JsonNode n, String f) {
            if (!n.isArray()) throw new JnextException(src + ": " + f + " must be a list of integers, got " + n);
            List<Integer> out = new ArrayList<>();
            for (JsonNode e : n) {
                if (!e.isIntegralNumber() || !e.canConvertToInt()) {
                    throw new JnextException(src + ": " + f + " must be a list of integers, found " + e);
                }
                out.add(e.intValue());
            }
            return out;
        }

        private boolean flag(JsonNode n, String f) {
            if (!n.isBoolean()) throw new JnextException(src + ": " + f + " must be true or false, got " + n);
            return n.booleanValue();
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
