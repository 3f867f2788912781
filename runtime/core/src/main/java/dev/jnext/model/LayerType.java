package dev.jnext.model;

/** The token mixer of one decoder layer, named as in config.json's {@code layer_types}. */
public enum LayerType {
    /** Gated DeltaNet ({@code linear_attn.*}). */
    LINEAR_ATTENTION("linear_attention"),
    /** Gated full attention ({@code self_attn.*}). */
    FULL_ATTENTION("full_attention");

    private final String jsonName;

    LayerType(String jsonName) {
        this.jsonName = jsonName;
    }

    /** The {@code layer_types} string. */
    public String jsonName() {
        return jsonName;
    }

    /** Returns the type for a {@code layer_types} string, or null when it is not one of the two. */
    public static LayerType fromJson(String s) {
        for (LayerType t : values()) {
            if (t.jsonName.equals(s)) return t;
        }
        return null;
    }
}
