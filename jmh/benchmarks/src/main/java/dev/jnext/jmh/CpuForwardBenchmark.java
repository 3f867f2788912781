package dev.jnext.jmh;

import dev.jnext.cpu.CpuSession;
import dev.jnext.model.DType;
import dev.jnext.cpu.Qwen3NextModel;
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
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The CPU reference forward on a synthetic bf16 checkpoint: one decode step after a 64-token prefill, and a
 * 64-token prefill. {@code model}: "tiny" or "next-80b-1l" (the 80B-A3B per-layer geometry, 1 GDN layer,
 * 16 experts; writes 1.3 GB to a temp directory in setup).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class CpuForwardBenchmark {

    @Param({"tiny", "next-80b-1l"})
    public String model;

    private Path dir;
    private Qwen3NextModel loaded;
    private CpuSession session;
    private int[] prompt;
    private int next;

    @Setup(Level.Trial)
    public void setup() throws IOException {
        dir = Files.createTempDirectory("jnext-cpu-bench");
        var config = model.equals("tiny")
                ? SyntheticCheckpoint.preset("tiny", null, null, DType.BF16)
                : SyntheticCheckpoint.preset("next-80b-a3b", 1, 16, DType.BF16);
        SyntheticCheckpoint.write(dir.resolve("m"), new SyntheticCheckpoint.Options(config, DType.BF16, 1, 1L << 31,
                SyntheticCheckpoint.ExpertLayout.HUB), n -> { });
        loaded = Qwen3NextModel.load(dir.resolve("m"));
        session = new CpuSession(loaded);
        SplittableRandom r = new SplittableRandom(1);
        prompt = r.ints(64, 0, config.vocabSize()).toArray();
        next = r.nextInt(config.vocabSize());
    }

    @Setup(Level.Invocation)
    public void prefillForDecode() {
        session.prefill(prompt);
    }

    @Benchmark
    public float[] decodeStep() {
        return session.decode(next);
    }

    @Benchmark
    public float[] prefill64() {
        return session.prefill(prompt);
    }

    @TearDown(Level.Trial)
    public void tearDown() throws IOException {
        session.close();
        loaded.close();
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }
}
