package dev.jnext.model;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * The {@code synth --preset tiny --vocab-size 151936} checkpoint (bf16, seed 0): random weights sized for the Qwen3
 * tokenizer, written once per test JVM and shared by the engine, server and CLI tests.
 */
public final class TestCheckpoints {
    private static Path tinyQwen;

    private TestCheckpoints() {}

    public static synchronized Path tinyQwen() {
        if (tinyQwen == null) {
            try {
                Path dir = Files.createTempDirectory("jnext-tiny-qwen");
                Runtime.getRuntime().addShutdownHook(new Thread(() -> delete(dir)));
                SyntheticCheckpoint.write(dir, new SyntheticCheckpoint.Options(tinyQwenConfig(), DType.BF16, 0, 1L << 30,
                        SyntheticCheckpoint.ExpertLayout.HUB), n -> { });
                tinyQwen = dir;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return tinyQwen;
    }

    /** The tiny preset with Qwen's vocabulary, BOS 151643 and EOS 151645 (what {@code synth --vocab-size 151936} writes). */
    public static ModelConfig tinyQwenConfig() {
        ModelConfig c = SyntheticCheckpoint.preset("tiny", null, null, DType.BF16);
        return new ModelConfig(151936, c.hiddenSize(), c.intermediateSize(), c.numHiddenLayers(), c.numAttentionHeads(),
                c.numKeyValueHeads(), c.headDim(), c.linearNumKeyHeads(), c.linearNumValueHeads(), c.linearKeyHeadDim(),
                c.linearValueHeadDim(), c.linearConvKernelDim(), c.numExperts(), c.numExpertsPerTok(),
                c.moeIntermediateSize(), c.sharedExpertIntermediateSize(), c.decoderSparseStep(), c.mlpOnlyLayers(),
                c.normTopkProb(), c.layerTypes(), c.ropeTheta(), c.partialRotaryFactor(), c.rmsNormEps(),
                c.maxPositionEmbeddings(), c.tieWordEmbeddings(), c.dtype(), 151643, java.util.List.of(151645));
    }

    private static void delete(Path dir) {
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // a temp folder left behind is harmless
        }
    }
}
