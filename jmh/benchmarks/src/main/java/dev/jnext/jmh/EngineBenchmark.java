package dev.jnext.jmh;

import dev.jnext.backend.PrefillMode;
import dev.jnext.backend.DeviceChoice;

import dev.jnext.engine.Engine;
import dev.jnext.engine.EngineOptions;
import dev.jnext.engine.GenerationHandle;
import dev.jnext.engine.GenerationRequest;
import dev.jnext.model.DType;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.SyntheticCheckpoint;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The engine with continuous batching: {@code slots} requests (64-token prompts, 16 new tokens each, EOS ignored)
 * submitted at once and run to the end, on the synthetic tiny checkpoint with Qwen's vocabulary. The engine options are
 * the same {@link EngineOptions} the CLI builds ({@code device}, {@code graphs}, {@code slots}); {@code tokenizer} is a
 * folder with the Qwen3 tokenizer.json (the build fetches one into .cache/tokenizer-qwen3).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 3)
@Measurement(iterations = 5, time = 3)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class EngineBenchmark {

    @Param({"cpu"})
    public String device;

    @Param({"piecewise"})
    public String graphs;

    @Param({"8"})
    public int slots;

    @Param({".cache/tokenizer-qwen3"})
    public String tokenizer;

    private Path dir;
    private Engine engine;
    private List<GenerationRequest> requests;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        dir = Files.createTempDirectory("jnext-engine-bench");
        ModelConfig c = SyntheticCheckpoint.preset("tiny", null, null, DType.BF16);
        ModelConfig qwen = new ModelConfig(151936, c.hiddenSize(), c.intermediateSize(), c.numHiddenLayers(), c.numAttentionHeads(),
                c.numKeyValueHeads(), c.headDim(), c.linearNumKeyHeads(), c.linearNumValueHeads(), c.linearKeyHeadDim(),
                c.linearValueHeadDim(), c.linearConvKernelDim(), c.numExperts(), c.numExpertsPerTok(),
                c.moeIntermediateSize(), c.sharedExpertIntermediateSize(), c.decoderSparseStep(), c.mlpOnlyLayers(),
                c.normTopkProb(), c.layerTypes(), c.ropeTheta(), c.partialRotaryFactor(), c.rmsNormEps(),
                c.maxPositionEmbeddings(), c.tieWordEmbeddings(), c.dtype(), 151643, List.of(151645));
        SyntheticCheckpoint.write(dir.resolve("m"), new SyntheticCheckpoint.Options(qwen, DType.BF16, 1, 1L << 31,
                SyntheticCheckpoint.ExpertLayout.HUB), n -> { });
        EngineOptions options = EngineOptions.defaults().withDevice(DeviceChoice.parse(device))
                .withPrefillMode(PrefillMode.parse(graphs)).withMaxSequences(slots)
                .withTokenizer(Path.of(tokenizer));
        engine = Engine.open(dir.resolve("m"), options);
        SplittableRandom r = new SplittableRandom(1);
        requests = new ArrayList<>();
        for (int i = 0; i < slots; i++) {
            requests.add(GenerationRequest.tokens(r.ints(64, 0, 151_643).toArray()).greedy().maxTokens(16).ignoreEos(true).build());
        }
    }

    @Benchmark
    public int batch() {
        List<GenerationHandle> handles = new ArrayList<>();
        for (GenerationRequest q : requests) handles.add(engine.submit(q));
        int tokens = 0;
        for (GenerationHandle h : handles) tokens += h.await().tokens().size();
        return tokens;
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        engine.close();
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}
