package dev.jnext.cli;

import dev.jnext.JnextException;
import dev.jnext.model.DType;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.SyntheticCheckpoint;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code jnext synth}: a random Qwen3-Next checkpoint in the Hugging Face layout, streamed to disk. */
@Command(name = "synth", mixinStandardHelpOptions = true,
        description = "Write a random Qwen3-Next checkpoint (config.json, sharded safetensors, index) for tests and benchmarks.")
public final class SynthCommand implements Callable<Integer> {

    enum Preset {
        tiny("tiny"), next_80b_a3b("next-80b-a3b");
        final String name;

        Preset(String name) {
            this.name = name;
        }

        @Override
        public String toString() {
            return name;
        }
    }

    enum Dtype { bf16, f32 }

    @Spec
    CommandSpec spec;

    @Option(names = "--preset", required = true, converter = PresetConverter.class,
            description = "tiny (a few MB, every block) or next-80b-a3b (the 80B-A3B per-layer geometry)")
    Preset preset;

    @Option(names = "--layers", description = "number of decoder layers (default: the preset's; every 4th is full attention)")
    Integer layers;

    @Option(names = "--experts", description = "routed experts per MoE layer (default: the preset's; top-k is capped at it)")
    Integer experts;

    @Option(names = "--vocab-size", description = "vocabulary size (default: the preset's; 151936 fits the Qwen3 tokenizer, "
            + "which `jnext generate --tokenizer` then can use)")
    Integer vocabSize;

    @Option(names = "--seed", defaultValue = "0", description = "random seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--dtype", defaultValue = "bf16", description = "bf16 or f32 (default: ${DEFAULT-VALUE})")
    Dtype dtype;

    @Option(names = "--shard-size-mb", defaultValue = "2048", description = "largest shard in MiB (default: ${DEFAULT-VALUE})")
    long shardMb;

    @Option(names = "--experts-layout", defaultValue = "hub",
            description = "hub (experts.{e}.gate_proj ...) or fused (experts.gate_up_proj [E,2I,H]) (default: ${DEFAULT-VALUE})")
    String layout;

    @Option(names = "--out", required = true, description = "output directory (created; must not hold a checkpoint)")
    Path out;

    static final class PresetConverter implements picocli.CommandLine.ITypeConverter<Preset> {
        @Override
        public Preset convert(String value) {
            for (Preset p : Preset.values()) if (p.name.equals(value)) return p;
            throw new picocli.CommandLine.TypeConversionException("expected tiny or next-80b-a3b, got " + value);
        }
    }

    @Override
    public Integer call() {
        // every option is checked before anything is written
        DType dt = dtype == Dtype.bf16 ? DType.BF16 : DType.F32;
        SyntheticCheckpoint.ExpertLayout el = switch (layout) {
            case "hub" -> SyntheticCheckpoint.ExpertLayout.HUB;
            case "fused" -> SyntheticCheckpoint.ExpertLayout.FUSED;
            default -> throw new JnextException("--experts-layout must be hub or fused, got " + layout);
        };
        if (layers != null && layers < 1) throw new JnextException("--layers must be at least 1, got " + layers);
        if (experts != null && experts < 1) throw new JnextException("--experts must be at least 1, got " + experts);
        if (vocabSize != null && vocabSize < 1) throw new JnextException("--vocab-size must be at least 1, got " + vocabSize);
        if (shardMb <= 0) throw new JnextException("--shard-size-mb must be positive, got " + shardMb);
        if (Files.exists(out) && !Files.isDirectory(out)) throw new JnextException("--out " + out + ": not a folder");
        ModelConfig config = SyntheticCheckpoint.preset(preset.name, layers, experts, dt);
        if (vocabSize != null) config = withVocabSize(config, vocabSize);
        var options = new SyntheticCheckpoint.Options(config, dt, seed, shardMb << 20, el);
        long total = SyntheticCheckpoint.dataBytes(options);
        long start = System.nanoTime();
        try (ProgressBar bar = new ProgressBarBuilder().setTaskName("synth " + preset.name)
                .setInitialMax(total).setUnit(" MiB", 1 << 20).setStyle(ProgressBarStyle.ASCII)
                .setUpdateIntervalMillis(500).build()) {
            SyntheticCheckpoint.write(out, options, bar::stepBy);
        }
        spec.commandLine().getOut().printf("wrote %s: %s, %s, %s, %.1f MiB in %.1f s%n", out, Plural.of(config.numHiddenLayers(), "layer"),
                Plural.of(config.numExperts(), "expert"), dt, total / 1048576.0, (System.nanoTime() - start) / 1e9);
        return 0;
    }

    /** The preset with another vocabulary; Qwen's BOS/EOS ids are set when the vocabulary holds them. */
    private static ModelConfig withVocabSize(ModelConfig c, int vocab) {
        return new ModelConfig(vocab, c.hiddenSize(), c.intermediateSize(), c.numHiddenLayers(), c.numAttentionHeads(),
                c.numKeyValueHeads(), c.headDim(), c.linearNumKeyHeads(), c.linearNumValueHeads(), c.linearKeyHeadDim(),
                c.linearValueHeadDim(), c.linearConvKernelDim(), c.numExperts(), c.numExpertsPerTok(),
                c.moeIntermediateSize(), c.sharedExpertIntermediateSize(), c.decoderSparseStep(), c.mlpOnlyLayers(),
                c.normTopkProb(), c.layerTypes(), c.ropeTheta(), c.partialRotaryFactor(), c.rmsNormEps(),
                c.maxPositionEmbeddings(), c.tieWordEmbeddings(), c.dtype(), vocab > 151643 ? Integer.valueOf(151643) : null,
                vocab > 151645 ? java.util.List.of(151645) : java.util.List.of());
    }
}
