package dev.jnext.cuda.kernels;

/** Element types of the device tensors the kernels read and write, with their widths. */
public enum DType {
    BF16(2, "bf16"),
    F32(4, "f32"),
    I32(4, "i32"),
    U32(4, "u32"),
    U64(8, "u64"),
    U8(1, "u8"),
    /** OCP FP8 e4m3 ("e4m3fn": no infinities, largest 448), the fine-grained FP8 checkpoints' weights. */
    F8_E4M3(1, "f8e4m3");

    private final int bytes;
    private final String label;

    DType(int bytes, String label) {
        this.bytes = bytes;
        this.label = label;
    }

    /** Bytes per element. */
    public int bytes() {
        return bytes;
    }

    @Override
    public String toString() {
        return label;
    }
}
