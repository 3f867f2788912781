package dev.jnext.cli;

import dev.jnext.JnextException;
import dev.jnext.model.DType;
import dev.jnext.model.Fp8Quantization;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.ModelFamily;
import dev.jnext.model.SyntheticCheckpoint;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code jnext synth}: a random Qwen3-Next or Qwen3.5 checkpoint in the Hugging Face layout, streamed to disk. */
@Command(name = "synth", mixinStandardHelpOptions = true, sortOptions = false, sortSynopsis = false,
        description = "Write a checkpoint with random weights in the Hugging Face layout (config.json, sharded safetensors, index) for tests and benchmarks.")
public final class SynthCommand implements Callable<Integer> {

    enum Dtype { bf16, f32, fp8 }

    @Spec
    CommandSpec spec;

    @Option(names = "--preset", required = true, paramLabel = "NAME", converter = PresetConverter.class,
            description = "tiny (every block at toy sizes, a 256-token vocabulary unless --vocab-size), gpu-small (the smallest shape the CUDA kernels run on their fast paths), next-80b-a3b (the per-layer geometry of Qwen3-Next-80B-A3B), "
                    + "qwen3.5-0.8b, qwen3.5-9b, qwen3.5-27b, qwen3.5-35b-a3b (the Qwen3.5 / Qwen3.6 text models' geometries, vocabulary 248320), qwen3.5-tiny or qwen3.5-moe-tiny (toy Qwen3.5 dense and MoE models).")
    String preset;

    @Option(names = "--multimodal", description = "Qwen3.5 presets: write the released checkpoints' multimodal layout (config.json with text_config, weights under model.language_model., no vision tower) instead of the text-only one.")
    boolean multimodal;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Output folder; created if needed, must not hold a checkpoint.")
    Path out;

    @Option(names = "--vocab-size", paramLabel = "N",
            description = "Vocabulary size (default: the preset's). 151936 fits the Qwen3 tokenizer, so generate and score can use it with --tokenizer.")
    Integer vocabSize;

    @Option(names = "--layers", paramLabel = "N", description = "Number of decoder layers; every 4th is full attention (default: the preset's).")
    Integer layers;

    @Option(names = "--experts", paramLabel = "N", description = "Routed experts per MoE layer; top-k is capped at it (default: the preset's).")
    Integer experts;

    @Option(names = "--dtype", paramLabel = "TYPE", defaultValue = "bf16", description = "bf16, f32, or fp8: the official fine-grained FP8 layout (the linear weights in e4m3 with one weight_scale_inv per 128x128 block, block-quantized from the bf16 weights; embeddings, lm_head, norms, router and shared-expert gates, A_log, dt_bias, conv1d and in_proj_ba (Qwen3.5: in_proj_a and in_proj_b) in bf16) with its quantization_config (default: ${DEFAULT-VALUE}).")
    Dtype dtype;

    @Option(names = "--experts-layout", paramLabel = "LAYOUT", defaultValue = "hub",
            description = "hub (one tensor per expert: experts.{e}.gate_proj, ...) or fused (experts.gate_up_proj [E, 2I, H], ...) (default: ${DEFAULT-VALUE}).")
    String layout;

    @Option(names = "--mlp-only-layers", paramLabel = "L,...", split = ",", description = "Layers that get a dense MLP instead of the MoE (mlp_only_layers).")
    List<Integer> mlpOnlyLayers = new ArrayList<>();

    @Option(names = "--no-norm-topk-prob", description = "Do not renormalise the top-k routing weights (norm_topk_prob false).")
    boolean noNormTopk;

    @Option(names = "--tie-word-embeddings", description = "No lm_head.weight: the output layer is the embedding.")
    boolean tie;

    @Option(names = "--config-style", paramLabel = "V", defaultValue = "5", description = "config.json as transformers 5 writes it (rope_parameters, layer_types) or as 4 does (top-level rope_theta, full_attention_interval) (default: ${DEFAULT-VALUE}).")
    int configStyle;

    @Option(names = "--logit-scale", paramLabel = "S", defaultValue = "1", description = "Scale of the final norm: 1 gives near-uniform next-token distributions, 5 gives 2-4 nats like a trained model (default: ${DEFAULT-VALUE}).")
    float logitScale;

    @Option(names = "--shard-size-mb", paramLabel = "MIB", defaultValue = "2048", description = "Largest shard in MiB (default: ${DEFAULT-VALUE}).")
    long shardMb;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "Seed of the random weights (default: ${DEFAULT-VALUE}).")
    long seed;

    static final class PresetConverter implements picocli.CommandLine.ITypeConverter<String> {
        @Override
        public String convert(String value) {
            if (SyntheticCheckpoint.PRESETS.contains(value)) return value;
            throw new picocli.CommandLine.TypeConversionException("expected one of " + String.join(", ", SyntheticCheckpoint.PRESETS)
                    + ", got " + value);
        }
    }

    @Override
    public Integer call() {
        // every option is checked before anything is written
        DType dt = dtype == Dtype.f32 ? DType.F32 : DType.BF16;
        SyntheticCheckpoint.ExpertLayout el = switch (layout) {
            case "hub" -> SyntheticCheckpoint.ExpertLayout.HUB;
            case "fused" -> SyntheticCheckpoint.ExpertLayout.FUSED;
            default -> throw new JnextException("--experts-layout must be hub or fused, got " + layout);
        };
        if (layers != null && layers < 1) throw new JnextException("--layers must be at least 1, got " + layers);
        if (experts != null && experts < 1) throw new JnextException("--experts must be at least 1, got " + experts);
        if (vocabSize != null && vocabSize < 1) throw new JnextException("--vocab-size must be at least 1, got " + vocabSize);
        if (shardMb <= 0) throw new JnextException("--shard-size-mb must be positive, got " + shardMb);
        if (configStyle != 4 && configStyle != 5) throw new JnextException("--config-style must be 4 or 5, got " + configStyle);
        if (!(logitScale > 0) || !Float.isFinite(logitScale)) throw new JnextException("--logit-scale must be positive, got " + logitScale);
        if (Files.exists(out) && !Files.isDirectory(out)) throw new JnextException("--out " + out + ": not a folder");
        ModelConfig config = SyntheticCheckpoint.preset(preset, layers, experts, dt);
        boolean next = config.family() == ModelFamily.QWEN3_NEXT;
        if (next && multimodal) throw new JnextException("--multimodal is for the Qwen3.5 presets (Qwen3-Next has no multimodal layout)");
        if (!next && !mlpOnlyLayers.isEmpty()) throw new JnextException("--mlp-only-layers is Qwen3-Next's (Qwen3.5 models have no mlp_only_layers)");
        if (!next && noNormTopk) throw new JnextException("--no-norm-topk-prob is Qwen3-Next's (Qwen3.5 MoE always renormalises)");
        if (!next && configStyle == 4) throw new JnextException("--config-style 4 is Qwen3-Next's (transformers 4.x has no Qwen3.5)");
        config = derive(config, vocabSize != null ? vocabSize : config.vocabSize());
        if (dtype == Dtype.fp8) config = config.withQuantization(Fp8Quantization.official(config));
        var options = new SyntheticCheckpoint.Options(config, dt, seed, shardMb << 20, el, logitScale,
                configStyle == 4 ? SyntheticCheckpoint.ConfigStyle.V4 : SyntheticCheckpoint.ConfigStyle.V5);
        long total = SyntheticCheckpoint.dataBytes(options);
        long start = System.nanoTime();
        try (Terminal.Progress progress = Terminal.bytes("synth " + preset, total)) {
            SyntheticCheckpoint.write(out, options, progress);
        }
        spec.commandLine().getOut().printf("wrote %s: %s, %s, %s, %.1f MiB in %.1f s%n", out, Plural.of(config.numHiddenLayers(), "layer"),
                Plural.of(config.numExperts(), "expert"), dtype == Dtype.fp8 ? "FP8 (e4m3, 128x128 blocks; bf16 where kept)" : dt,
                total / 1048576.0, (System.nanoTime() - start) / 1e9);
        return 0;
    }

    /**
     * The preset with the command's vocabulary, dense layers, routing normalisation, tying and layout; Qwen's BOS/EOS ids
     * are set when the vocabulary holds them (Qwen3-Next: 151643 / 151645; Qwen3.5: no BOS, 248044).
     */
    private ModelConfig derive(ModelConfig c, int vocab) {
        for (int l : mlpOnlyLayers) {
            if (l < 0 || l >= c.numHiddenLayers()) {
                throw new JnextException("--mlp-only-layers: layer " + l + " is not in 0.." + (c.numHiddenLayers() - 1));
            }
        }
        return new ModelConfig(vocab, c.hiddenSize(), c.intermediateSize(), c.numHiddenLayers(), c.numAttentionHeads(),
                c.numKeyValueHeads(), c.headDim(), c.linearNumKeyHeads(), c.linearNumValueHeads(), c.linearKeyHeadDim(),
                c.linearValueHeadDim(), c.linearConvKernelDim(), c.numExperts(), c.numExpertsPerTok(),
                c.moeIntermediateSize(), c.sharedExpertIntermediateSize(), c.decoderSparseStep(), List.copyOf(mlpOnlyLayers),
                c.normTopkProb() && !noNormTopk, c.layerTypes(), c.ropeTheta(), c.partialRotaryFactor(), c.rmsNormEps(),
                c.maxPositionEmbeddings(), c.tieWordEmbeddings() || tie, c.dtype(),
                c.family() == ModelFamily.QWEN3_NEXT && vocab > 151643 ? Integer.valueOf(151643) : null,
                c.family() == ModelFamily.QWEN3_NEXT ? (vocab > 151645 ? List.of(151645) : List.of())
                        : (vocab > 248044 ? List.of(248044) : List.of()),
                c.family(), multimodal, c.mropeSection(), c.mropeInterleaved(), c.quantization());
    }
}
