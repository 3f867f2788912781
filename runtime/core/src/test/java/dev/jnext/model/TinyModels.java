package dev.jnext.model;

import java.nio.file.Path;
import java.util.List;

/** Small synthetic checkpoints for tests (every block, a dense layer, a prompt longer than one GDN chunk). */
public final class TinyModels {
    private TinyModels() {}

    /** 5 layers [lin, lin, lin, full, lin], layer 4 dense, Hv = 2 Hk, dk != dv, GQA 2:1, partial RoPE. */
    public static ModelConfig config(boolean normTopkProb, DType dtype) {
        List<LayerType> types = List.of(LayerType.LINEAR_ATTENTION, LayerType.LINEAR_ATTENTION,
                LayerType.LINEAR_ATTENTION, LayerType.FULL_ATTENTION, LayerType.LINEAR_ATTENTION);
        return new ModelConfig(128, 32, 48, 5, 4, 2, 16, 2, 4, 8, 12, 4, 6, 2, 16, 20, 1, List.of(4),
                normTopkProb, types, 1.0e6, 0.5, 1e-6f, 4096, false, dtype, null, List.of());
    }

    public static Path write(Path dir, ModelConfig config, long seed, SyntheticCheckpoint.ExpertLayout layout,
                             long maxShardBytes) {
        SyntheticCheckpoint.write(dir, new SyntheticCheckpoint.Options(config, config.dtype(), seed, maxShardBytes,
                layout), n -> { });
        return dir;
    }

    public static Path write(Path dir, long seed) {
        return write(dir, config(true, DType.F32), seed, SyntheticCheckpoint.ExpertLayout.HUB, 1 << 20);
    }

    /** Deterministic token ids in [0, vocab). */
    public static int[] ids(int n, int vocab, long seed) {
        java.util.SplittableRandom r = new java.util.SplittableRandom(seed);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) out[i] = r.nextInt(vocab);
        return out;
    }

    /** max |a − b| / max |b| over the arrays; fails on NaN. */
    public static double maxRelError(float[] a, int aOff, float[] b, int bOff, int n) {
        double maxDiff = 0;
        double maxRef = 0;
        for (int i = 0; i < n; i++) {
            float x = a[aOff + i];
            float y = b[bOff + i];
            if (Float.isNaN(x) || Float.isNaN(y)) return Double.NaN;
            maxDiff = Math.max(maxDiff, Math.abs((double) x - y));
            maxRef = Math.max(maxRef, Math.abs(y));
        }
        return maxDiff / maxRef;
    }
}
