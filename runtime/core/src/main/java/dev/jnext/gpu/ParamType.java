package dev.jnext.gpu;

/** A kernel parameter as PTX declares it: 64-bit (pointer or long), 32-bit integer, or 32-bit float. */
public enum ParamType {
    /** 64 bits: a device pointer or a long ({@code .u64}, {@code .s64}, {@code .b64}). */
    U64(8),
    /** 32-bit integer ({@code .u32}, {@code .s32}, {@code .b32}). */
    U32(4),
    /** 32-bit float ({@code .f32}). */
    F32(4);

    final int size;

    ParamType(int size) {
        this.size = size;
    }

    static ParamType fromPtx(String type, String kernel) {
        return switch (type) {
            case "u64", "s64", "b64" -> U64;
            case "u32", "s32", "b32" -> U32;
            case "f32" -> F32;
            default -> throw new IllegalArgumentException("kernel " + kernel + ": unsupported PTX parameter type ." + type);
        };
    }
}
