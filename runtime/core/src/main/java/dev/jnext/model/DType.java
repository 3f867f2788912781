package dev.jnext.model;

import dev.jnext.JnextException;

/** Element types jnext reads from and writes to safetensors files; anything else is rejected by name. */
public enum DType {
    /** IEEE float32. */
    F32(4, "float32"),
    /** bfloat16: float32's exponent, 7 mantissa bits. */
    BF16(2, "bfloat16"),
    /** IEEE float16. */
    F16(2, "float16"),
    /**
     * float8 e4m3fn ({@link dev.jnext.numeric.Fp8E4m3}): the weights of a fine-grained FP8 checkpoint, each read with the
     * block scale of its {@code weight_scale_inv} (see {@link Fp8Quantization}); never a model's {@code dtype}.
     */
    F8_E4M3(1, "float8_e4m3fn");

    private final int bytes;
    private final String torchName;

    DType(int bytes, String torchName) {
        this.bytes = bytes;
        this.torchName = torchName;
    }

    /** Size of one element in bytes. */
    public int bytes() {
        return bytes;
    }

    /** The name transformers writes in config.json ({@code dtype} / {@code torch_dtype}). */
    public String torchName() {
        return torchName;
    }

    /** The safetensors header name ({@code F32}, {@code BF16}, {@code F16}, {@code F8_E4M3}). */
    public String safetensorsName() {
        return name();
    }

    /** Parses a safetensors header dtype; {@code where} names the tensor for the error message. */
    public static DType fromSafetensors(String name, String where) {
        for (DType t : values()) {
            if (t.name().equals(name)) return t;
        }
        throw new JnextException(where + ": unsupported dtype \"" + name + "\" (jnext reads F32, BF16, F16 and F8_E4M3)");
    }

    /**
     * Parses a config.json dtype such as {@code "bfloat16"} (float32, bfloat16 or float16: an FP8 checkpoint declares
     * the dtype of its unquantized weights); {@code field} names the key for the error message.
     */
    public static DType fromTorchName(String name, String field) {
        for (DType t : values()) {
            if (t == F8_E4M3) continue;
            if (t.torchName.equals(name) || t.name().equalsIgnoreCase(name)) return t;
        }
        throw new JnextException(field + ": unsupported dtype \"" + name + "\" (expected float32, bfloat16 or float16)");
    }
}
