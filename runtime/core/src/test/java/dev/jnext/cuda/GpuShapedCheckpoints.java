package dev.jnext.cuda;

import dev.jnext.model.DType;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.SyntheticCheckpoint;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Small random checkpoints in the shape the CUDA kernels take (the {@code gpu-small} preset) for the runner's tests. */
final class GpuShapedCheckpoints {
    private GpuShapedCheckpoints() {}

    /** The gpu-small preset with {@code vocab} ids, dense layers {@code mlpOnly}, and a sharpened output. */
    static ModelConfig config(int layers, int vocab, List<Integer> mlpOnly, boolean normTopk, boolean tied) {
        ModelConfig c = SyntheticCheckpoint.preset("gpu-small", layers, null, DType.BF16);
        return new ModelConfig(vocab, c.hiddenSize(), c.intermediateSize(), c.numHiddenLayers(), c.numAttentionHeads(),
                c.numKeyValueHeads(), c.headDim(), c.linearNumKeyHeads(), c.linearNumValueHeads(), c.linearKeyHeadDim(),
                c.linearValueHeadDim(), c.linearConvKernelDim(), c.numExperts(), c.numExpertsPerTok(), c.moeIntermediateSize(),
                c.sharedExpertIntermediateSize(), c.decoderSparseStep(), mlpOnly, normTopk, c.layerTypes(), c.ropeTheta(),
                c.partialRotaryFactor(), c.rmsNormEps(), c.maxPositionEmbeddings(), tied, DType.BF16, null, List.of());
    }

    /** Writes a checkpoint of any {@code config} (hub experts, default scales) into a new temporary folder. */
    static Path writeAny(ModelConfig config) throws IOException {
        Path dir = Files.createTempDirectory("jnext-ckpt");
        Files.delete(dir);
        SyntheticCheckpoint.write(dir, new SyntheticCheckpoint.Options(config, DType.BF16, 1, 1L << 30,
                SyntheticCheckpoint.ExpertLayout.HUB), b -> {});
        return dir;
    }

    /** Writes a checkpoint of {@code config} into a new temporary folder. */
    static Path write(ModelConfig config, SyntheticCheckpoint.ExpertLayout layout, long seed) throws IOException {
        Path dir = Files.createTempDirectory("jnext-gpu-small");
        Files.delete(dir);
        SyntheticCheckpoint.write(dir, new SyntheticCheckpoint.Options(config, DType.BF16, seed, 1L << 30, layout, 5f,
                SyntheticCheckpoint.ConfigStyle.V5), b -> {});
        return dir;
    }
}
