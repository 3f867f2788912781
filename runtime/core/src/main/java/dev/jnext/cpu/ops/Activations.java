package dev.jnext.cpu.ops;

/** The scalar nonlinearities of Qwen3-Next, in fp32 as torch computes them. */
public final class Activations {
    private Activations() {}

    public static float silu(float x) {
        return x / (1.0f + (float) Math.exp(-x));
    }

    public static float sigmoid(float x) {
        return 1.0f / (1.0f + (float) Math.exp(-x));
    }

    /** torch softplus with beta 1 and threshold 20: x above 20 passes through. */
    public static float softplus(float x) {
        return x > 20f ? x : (float) Math.log1p(Math.exp(x));
    }
}
