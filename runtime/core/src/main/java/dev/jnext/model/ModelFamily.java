package dev.jnext.model;

/**
 * Which model family a {@code config.json} describes. Qwen3.5 and Qwen3.6 are Qwen3-Next's blocks with the changes of
 * transformers 5.17's {@code models/qwen3_5} and {@code models/qwen3_5_moe} (see {@code src/site/markdown/qwen35.md}):
 * <ul>
 *   <li>the Gated DeltaNet's input projections are split ({@code in_proj_qkv} with q, k and v contiguous,
 *       {@code in_proj_z}, {@code in_proj_b}, {@code in_proj_a}) instead of Qwen3-Next's per-key-head grouped
 *       {@code in_proj_qkvz} / {@code in_proj_ba};</li>
 *   <li>the rotary embedding is the multimodal one ({@code mrope_section}); text positions are the same on its three
 *       axes, which makes it exactly Qwen3-Next's partial RoPE;</li>
 *   <li>the dense family has a SwiGLU MLP of {@code intermediate_size} in every layer (no MoE fields); the MoE family
 *       has the sparse block in every layer and always renormalises the top-k routing weights (no
 *       {@code decoder_sparse_step}, {@code mlp_only_layers}, {@code norm_topk_prob}, {@code intermediate_size});</li>
 *   <li>the released checkpoints are multimodal wrappers ({@code Qwen3_5ForConditionalGeneration}: the text model's
 *       config under {@code text_config}, its weights under {@code model.language_model.}).</li>
 * </ul>
 */
public enum ModelFamily {
    /** Qwen3-Next ({@code qwen3_next}, {@code Qwen3NextForCausalLM}). */
    QWEN3_NEXT("qwen3_next", null, "Qwen3NextForCausalLM", null, "Qwen3-Next"),
    /** Qwen3.5 / Qwen3.6 dense ({@code qwen3_5_text}; wrapper {@code qwen3_5}). */
    QWEN3_5("qwen3_5_text", "qwen3_5", "Qwen3_5ForCausalLM", "Qwen3_5ForConditionalGeneration", "Qwen3.5 (dense)"),
    /** Qwen3.5 / Qwen3.6 MoE ({@code qwen3_5_moe_text}; wrapper {@code qwen3_5_moe}). */
    QWEN3_5_MOE("qwen3_5_moe_text", "qwen3_5_moe", "Qwen3_5MoeForCausalLM", "Qwen3_5MoeForConditionalGeneration",
            "Qwen3.5 (MoE)");

    private final String textModelType;
    private final String wrapperModelType;
    private final String textArchitecture;
    private final String wrapperArchitecture;
    private final String displayName;

    ModelFamily(String textModelType, String wrapperModelType, String textArchitecture, String wrapperArchitecture,
                String displayName) {
        this.textModelType = textModelType;
        this.wrapperModelType = wrapperModelType;
        this.textArchitecture = textArchitecture;
        this.wrapperArchitecture = wrapperArchitecture;
        this.displayName = displayName;
    }

    /** The text model's {@code model_type} ({@code qwen3_next}, {@code qwen3_5_text}, {@code qwen3_5_moe_text}). */
    public String textModelType() {
        return textModelType;
    }

    /** The multimodal wrapper's {@code model_type}, or null when the family has none. */
    public String wrapperModelType() {
        return wrapperModelType;
    }

    /** The text-only causal LM class transformers loads ({@code architectures} of a text-only config.json). */
    public String textArchitecture() {
        return textArchitecture;
    }

    /** The multimodal wrapper's class, or null. */
    public String wrapperArchitecture() {
        return wrapperArchitecture;
    }

    /** A name for people (info, logs). */
    public String displayName() {
        return displayName;
    }

    /** Whether the Gated DeltaNet's input projections are split (in_proj_qkv, in_proj_z, in_proj_b, in_proj_a). */
    public boolean splitDeltaNetProjections() {
        return this != QWEN3_NEXT;
    }

    /** Whether the config.json's MoE fields are the model's (false for Qwen3.5 dense, which has an MLP everywhere). */
    public boolean hasMoeFields() {
        return this != QWEN3_5;
    }

    /** The family whose text or wrapper {@code model_type} is {@code modelType}, or null. */
    public static ModelFamily ofModelType(String modelType) {
        for (ModelFamily f : values()) {
            if (f.textModelType.equals(modelType) || modelType.equals(f.wrapperModelType)) return f;
        }
        return null;
    }
}
