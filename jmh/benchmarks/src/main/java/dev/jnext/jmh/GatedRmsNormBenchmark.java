package dev.jnext.jmh;

import dev.jnext.cuda.kernels.DType;
import dev.jnext.cuda.kernels.DeviceTensor;
import dev.jnext.gpu.CudaGraph;
import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.Stream;
import dev.jnext.cuda.kernels.GatedRmsNormKernel;
import dev.jnext.cuda.kernels.KernelLibrary;
import dev.jnext.numeric.Bf16;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import java.util.concurrent.TimeUnit;

/**
 * The gated RMSNorm (rows × 128, bf16) at decode size (32 rows = batch 1 × 32 heads) and at prefill size
 * (131,072 rows = 4,096 tokens × 32 heads): a graph of {@value #N} launches (capture rule: 4 rows per block)
 * alternating between two input/output sets (192 MB at the large size, beyond L2), replayed and waited for.
 * Per kernel; bytes moved per kernel = 3 · rows · 128 · 2 (x, z read, out written).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class GatedRmsNormBenchmark {
    static final int N = 20;
    static final int DIM = 128;

    @Param({"32", "131072"})
    public int rows;

    private Gpu gpu;
    private KernelLibrary lib;
    private Stream stream;
    private DeviceBuffer[] buffers;
    private CudaGraph graph;

    @Setup
    public void setup() {
        gpu = Gpu.open(0);
        lib = new KernelLibrary(gpu);
        stream = gpu.createStream();
        GatedRmsNormKernel kernel = new GatedRmsNormKernel(lib);
        long bytes = 2L * rows * DIM;
        Random rnd = new Random(1);
        buffers = new DeviceBuffer[7];
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocate(bytes);
            for (int i = 0; i < 7; i++) {
                long n = i == 6 ? DIM : bytes / 2;
                for (long j = 0; j < n; j++) host.setAtIndex(ValueLayout.JAVA_SHORT, j, Bf16.fromFloat((float) rnd.nextGaussian()));
                buffers[i] = gpu.allocate(2 * n, "buf" + i);
                buffers[i].copyFromHost(host.asSlice(0, 2 * n));
            }
        }
        GatedRmsNormKernel.Args[] args = new GatedRmsNormKernel.Args[2];
        for (int k = 0; k < 2; k++) {
            int set = k * 3;
            args[k] = new GatedRmsNormKernel.Args(DeviceTensor.of(buffers[set], DType.BF16, rows, DIM),
                    DeviceTensor.of(buffers[set + 1], DType.BF16, rows, DIM), DeviceTensor.of(buffers[6], DType.BF16, DIM),
                    DeviceTensor.of(buffers[set + 2], DType.BF16, rows, DIM));
        }
        graph = CudaGraph.capture(stream, s -> {
            for (int i = 0; i < N; i++) kernel.launch(s, args[i % 2], rows, 1e-6f);
        });
        graph.upload(stream);
        stream.synchronize();
    }

    @Benchmark
    @OperationsPerInvocation(N)
    public void gatedRmsNormGraph() {
        graph.replay(stream);
        stream.synchronize();
    }

    @TearDown
    public void tearDown() {
        graph.close();
        for (DeviceBuffer b : buffers) b.close();
        stream.close();
        lib.close();
        gpu.close();
    }
}
