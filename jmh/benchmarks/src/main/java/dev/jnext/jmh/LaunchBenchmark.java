package dev.jnext.jmh;

import dev.jnext.gpu.CudaGraph;
import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.KernelArgs;
import dev.jnext.gpu.Stream;
import dev.jnext.cuda.kernels.KernelLibrary;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.concurrent.TimeUnit;

/**
 * What one kernel costs from Java: an eager {@code cuLaunchKernel} through FFM (arguments packed into a
 * reused off-heap block) versus one node of a captured graph of {@value #N} kernels. Each invocation
 * issues {@value #N} launches (or one replay) and waits for the stream, so the figure is per kernel,
 * including the GPU's own per-kernel time for an empty kernel.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class LaunchBenchmark {
    static final int N = 100;

    private Gpu gpu;
    private KernelLibrary lib;
    private Stream stream;
    private Kernel kernel;
    private KernelArgs args;
    private CudaGraph graph;

    @Setup
    public void setup() {
        gpu = Gpu.open(0);
        lib = new KernelLibrary(gpu);
        stream = gpu.createStream();
        kernel = lib.kernel("bench", "empty_kernel");
        args = kernel.newArgs();
        graph = CudaGraph.capture(stream, s -> {
            for (int i = 0; i < N; i++) kernel.launch(s, Dim3.of(1), Dim3.of(32), 0, args.reset().ptr(0).i32(i));
        });
        graph.upload(stream);
        stream.synchronize();
    }

    @Benchmark
    @OperationsPerInvocation(N)
    public void eagerLaunch() {
        for (int i = 0; i < N; i++) kernel.launch(stream, Dim3.of(1), Dim3.of(32), 0, args.reset().ptr(0).i32(i));
        stream.synchronize();
    }

    @Benchmark
    @OperationsPerInvocation(N)
    public void graphReplayPerNode() {
        graph.replay(stream);
        stream.synchronize();
    }

    @TearDown
    public void tearDown() {
        graph.close();
        stream.close();
        lib.close();
        gpu.close();
    }
}
