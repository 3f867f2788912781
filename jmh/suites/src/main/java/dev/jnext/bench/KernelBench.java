package dev.jnext.bench;

import dev.jnext.gpu.CudaGraph;
import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Gemm;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.KernelArgs;
import dev.jnext.gpu.Stream;
import dev.jnext.cuda.kernels.DType;
import dev.jnext.cuda.kernels.DeviceTensor;
import dev.jnext.cuda.kernels.GatedRmsNormKernel;
import dev.jnext.cuda.kernels.KernelLibrary;
import dev.jnext.numeric.Bf16;

import static dev.jnext.bench.BenchSuite.fmt;
import static dev.jnext.bench.BenchSuite.pct;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Locale;
import java.util.Random;

/**
 * The Foundation benchmarks, timed on the GPU with CUDA events (median of many repetitions after warm-up),
 * each row with its bytes or FLOPs and the copy ceiling measured in the same run:
 * device copy ceiling, gated RMSNorm at decode and prefill sizes, Java launch cost eager vs graph node,
 * and cuBLASLt GEMMs at the model's shapes.
 */
public final class KernelBench extends GpuBenchSuite {

    public KernelBench(Gpu gpu) {
        super(gpu);
    }

    /** Flat name → value map of every figure (for JSON output). */

    @Override
    public void runAll() {
        try (Stream s = gpu.createStream(); GpuTimer timer = new GpuTimer(gpu, s); KernelLibrary lib = new KernelLibrary(gpu)) {
            measureCopyCeiling(s, timer);
            gatedRmsNorm(s, timer, lib, 32);
            gatedRmsNorm(s, timer, lib, 131072);
            launchCost(s, timer, lib);
            tokenMasks(s, timer, lib, 1);
            tokenMasks(s, timer, lib, 32);
            gemms(s, timer);
        }
    }

    private void gatedRmsNorm(Stream s, GpuTimer timer, KernelLibrary lib, int n) {
        int dim = 128;
        GatedRmsNormKernel k = new GatedRmsNormKernel(lib);
        int sets = n >= 65536 ? 2 : 1;
        DeviceBuffer[] b = new DeviceBuffer[3 * sets + 1];
        try {
            Random rnd = new Random(n);
            try (Arena a = Arena.ofConfined()) {
                MemorySegment host = a.allocate(2L * n * dim);
                for (int i = 0; i < b.length; i++) {
                    long count = i == b.length - 1 ? dim : (long) n * dim;
                    for (long j = 0; j < count; j++) host.setAtIndex(ValueLayout.JAVA_SHORT, j, Bf16.fromFloat((float) rnd.nextGaussian()));
                    b[i] = gpu.allocate(2 * count, "norm" + i);
                    b[i].copyFromHost(host.asSlice(0, 2 * count));
                }
            }
            CudaGraph[] graphs = new CudaGraph[sets];
            for (int g = 0; g < sets; g++) {
                int base = 3 * g;
                GatedRmsNormKernel.Args args = new GatedRmsNormKernel.Args(DeviceTensor.of(b[base], DType.BF16, n, dim),
                        DeviceTensor.of(b[base + 1], DType.BF16, n, dim), DeviceTensor.of(b[b.length - 1], DType.BF16, dim),
                        DeviceTensor.of(b[base + 2], DType.BF16, n, dim));
                graphs[g] = CudaGraph.capture(s, st -> k.launch(st, args, n, 1e-6f));
                graphs[g].upload(s);
            }
            int[] turn = {0};
            double ms = timer.medianMillis(() -> graphs[turn[0]++ % sets].replay(s), 20, 200);
            double tbps = 3.0 * 2 * n * dim / ms / 1e9;
            numbers.put("gated_rmsnorm_rows" + n + "_us", ms * 1e3);
            numbers.put("gated_rmsnorm_rows" + n + "_TBps", tbps);
            rows.add(new Row("gated RMSNorm (graph, 4 rows/block)", n + " x 128", ms * 1e3, fmt("%.2f TB/s", tbps),
                    pct(tbps / copyTBps), n >= 65536 ? "fla anchor (H100): 41.4 us, 2.43 TB/s" : "fla anchor (H100): 17.1 us"));
            for (CudaGraph g : graphs) g.close();
        } finally {
            for (DeviceBuffer x : b) if (x != null) x.close();
        }
    }

    /**
     * Constrained decoding's cost on the device per step (issue 18.3): {@code rows} masks of 151,936 ids (30% allowed)
     * uploaded from pinned staging and applied to the logits (GPU time), and the host's part of it (staging the masks
     * and issuing the copy and the launch, waited for).
     */
    private void tokenMasks(Stream s, GpuTimer timer, KernelLibrary lib, int rows) {
        int vocab = 151_936;
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(rows);
        dev.jnext.backend.TokenMask[] masks = new dev.jnext.backend.TokenMask[rows];
        for (int r = 0; r < rows; r++) {
            masks[r] = dev.jnext.backend.TokenMask.of(vocab, java.util.stream.IntStream.range(0, vocab).filter(i -> rnd.nextInt(10) < 3).toArray());
        }
        try (dev.jnext.cuda.kernels.TokenMaskKernel k = new dev.jnext.cuda.kernels.TokenMaskKernel(lib, rows, vocab);
             DeviceBuffer logits = gpu.allocate(2L * rows * vocab, "mask-logits")) {
            logits.fill16((short) 0x3f80, s);
            var args = new dev.jnext.cuda.kernels.TokenMaskKernel.Args(DeviceTensor.of(logits, DType.BF16, rows, vocab));
            double ms = timer.medianMillis(() -> k.apply(s, args, masks, vocab, rows), 10, 100);
            long[] host = new long[60];
            for (int i = 0; i < host.length; i++) {
                long t0 = System.nanoTime();
                k.apply(s, args, masks, vocab, rows);
                s.synchronize();
                host[i] = System.nanoTime() - t0;
            }
            Arrays.sort(host);
            double hostUs = host[host.length / 2] / 1e3;
            double bytes = rows * (2.0 * vocab + vocab / 8.0);
            numbers.put("token_masks_rows" + rows + "_us", ms * 1e3);
            numbers.put("token_masks_rows" + rows + "_host_us", hostUs);
            this.rows.add(new Row("token masks (upload + mask_logits)", rows + " x " + vocab, ms * 1e3,
                    fmt("%.2f TB/s", bytes / ms / 1e9), pct(bytes / ms / 1e9 / copyTBps), fmt("host, waited: %.1f us", hostUs)));
        }
    }

    private void launchCost(Stream s, GpuTimer timer, KernelLibrary lib) {
        Kernel k = lib.kernel("bench", "empty_kernel");
        KernelArgs args = k.newArgs();
        int n = 500;
        // host cost of an eager launch (JIT warmed): issue n launches, then wait; median over rounds
        double[] perLaunch = new double[40];
        for (int round = 0; round < perLaunch.length + 20; round++) {
            long t0 = System.nanoTime();
            for (int i = 0; i < n; i++) k.launch(s, Dim3.of(1), Dim3.of(32), 0, args.reset().ptr(0).i32(i));
            long t1 = System.nanoTime();
            s.synchronize();
            if (round >= 20) perLaunch[round - 20] = (t1 - t0) / 1e3 / n;
        }
        Arrays.sort(perLaunch);
        double eager = perLaunch[perLaunch.length / 2];
        try (CudaGraph g = CudaGraph.capture(s, st -> {
            for (int i = 0; i < 100; i++) k.launch(st, Dim3.of(1), Dim3.of(32), 0, args.reset().ptr(0).i32(i));
        })) {
            g.upload(s);
            double ms = timer.medianMillis(() -> g.replay(s), 10, 100);
            double perNode = ms * 1e3 / 100;
            numbers.put("eager_launch_host_us", eager);
            numbers.put("graph_node_gpu_us", perNode);
            rows.add(new Row("eager cuLaunchKernel from Java (host)", "empty kernel", eager, "", "", "target <= 3 us; anchor 5.6 us cold JIT"));
            rows.add(new Row("graph node (GPU time / node)", "100 empty kernels", perNode, "", "", "target <= 1 us; anchor 0.95 us"));
        }
    }

    private void gemms(Stream s, GpuTimer timer) {
        int[][] kn = {{2048, 12288}, {4096, 2048}, {2048, 8192}, {2048, 151936}};
        int[] ms = {1, 64, 4096};
        try (Gemm gemm = new Gemm(gpu)) {
            for (int[] shape : kn) {
                int k = shape[0], n = shape[1];
                try (DeviceBuffer w = gpu.allocate(2L * n * k, "w"); DeviceBuffer x = gpu.allocate(2L * 4096 * k, "x");
                     DeviceBuffer y = gpu.allocate(2L * 4096 * n, "y")) {
                    w.fill16(Bf16.fromFloat(0.01f), s);
                    x.fill16(Bf16.fromFloat(0.5f), s);
                    for (int m : ms) {
                        try (CudaGraph g = CudaGraph.capture(s, st -> gemm.matmul(st, x.address(), w.address(), y.address(), m, n, k))) {
                            double t = timer.medianMillis(() -> g.replay(s), 5, 50);
                            double flops = 2.0 * m * n * k / t / 1e9;
                            double bytes = 2.0 * ((double) n * k + (double) m * k + (double) m * n) / t / 1e9;
                            String key = "gemm_M" + m + "_K" + k + "_N" + n;
                            numbers.put(key + "_us", t * 1e3);
                            numbers.put(key + "_TFLOPs", flops);
                            numbers.put(key + "_TBps", bytes);
                            rows.add(new Row("cuBLASLt GEMM (graph)", m + "x" + k + "->" + n, t * 1e3,
                                    fmt("%.0f TFLOP/s, %.2f TB/s", flops, bytes), m <= 64 ? pct(bytes / copyTBps) : "", ""));
                        }
                    }
                }
            }
        }
    }

}
