package dev.jnext.bench;

import dev.jnext.cuda.kernels.DType;
import dev.jnext.cuda.kernels.DeviceTensor;
import dev.jnext.cuda.kernels.DeviceWeight;
import dev.jnext.cuda.kernels.Fp8DequantKernel;
import dev.jnext.cuda.kernels.KernelLibrary;
import dev.jnext.cuda.kernels.MoeDecodeKernel;
import dev.jnext.gpu.CudaGraph;
import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.Stream;
import dev.jnext.numeric.Bf16;
import dev.jnext.numeric.Fp8E4m3;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.HashSet;
import java.util.Set;
import java.util.SplittableRandom;

import static dev.jnext.bench.BenchSuite.fmt;
import static dev.jnext.bench.BenchSuite.pct;

/**
 * {@code jnext bench fp8}: the fine-grained FP8 expert kernels at the 80B-A3B MoE geometry (512 experts, hidden 2048,
 * expert width 512, top-10, a shared expert), beside the bf16 kernels they replace, in the same run:
 * <ul>
 *   <li>Decode experts (batch 1, 8 and 64: with FP8 experts every decode step takes these kernels), gate_up + SiLU and down + combine, each replay with another token set and another
 *       random routing (16 sets a graph, so nothing stays in L2). Bytes that must move: each distinct selected expert's
 *       weights and the shared expert's, 3·H·I per expert at 2 B a weight (bf16) or 1 B plus one fp32 scale per 128 × 128
 *       block (FP8); % of the device copy ceiling measured in the same run, and the bf16 / FP8 time ratio (2 would be all
 *       of the halved bytes showing).</li>
 *   <li>Device dequantization of one layer's gate_up stack to bf16 (the prefill path's scratch): bytes read + written
 *       (1 + 2 per weight, plus the scales) against the copy ceiling.</li>
 * </ul>
 */
public final class Fp8Bench extends GpuBenchSuite {
    private static final int HIDDEN = 2048, INTER = 512, TOP_K = 10, EXPERTS = 512, SETS = 16;

    public Fp8Bench(Gpu gpu) {
        super(gpu);
    }

    @Override
    public void runAll() {
        try (Stream s = gpu.createStream(); GpuTimer timer = new GpuTimer(gpu, s); KernelLibrary lib = new KernelLibrary(gpu);
             Experts bf16 = Experts.bf16(gpu); Experts fp8 = Experts.fp8(gpu)) {
            measureCopyCeiling(s, timer);
            for (int batch : new int[] {1, 8, 64}) {
                double bf16Us = decode(s, timer, lib, bf16, batch);
                double fp8Us = decode(s, timer, lib, fp8, batch);
                numbers.put("moe_decode_experts_B" + batch + "_bf16_over_fp8", bf16Us / fp8Us);
                rows.add(new Row("  bf16 / FP8 time", "B=" + batch, fp8Us, fmt("%.2fx", bf16Us / fp8Us), "",
                        "2.00x would be every halved byte showing"));
            }
            dequant(s, timer, lib, fp8);
        }
    }

    /** One layer's routed and shared expert weights in one dtype. */
    private record Experts(boolean isFp8, DeviceBuffer gateUp, DeviceBuffer gateUpScales, DeviceBuffer down,
                           DeviceBuffer downScales, DeviceBuffer sharedGateUp, DeviceBuffer sharedGateUpScales,
                           DeviceBuffer sharedDown, DeviceBuffer sharedDownScales) implements AutoCloseable {
        static Experts bf16(Gpu gpu) {
            long gu = (long) EXPERTS * 2 * INTER * HIDDEN, d = (long) EXPERTS * HIDDEN * INTER;
            return new Experts(false, randomBf16(gpu, gu, 1.7 / Math.sqrt(HIDDEN), 2, "gate_up"), null,
                    randomBf16(gpu, d, 1.7 / Math.sqrt(INTER), 3, "down"), null,
                    randomBf16(gpu, 2L * INTER * HIDDEN, 1.7 / Math.sqrt(HIDDEN), 4, "shared_gate_up"), null,
                    randomBf16(gpu, (long) HIDDEN * INTER, 1.7 / Math.sqrt(INTER), 5, "shared_down"), null);
        }

        static Experts fp8(Gpu gpu) {
            long gu = (long) EXPERTS * 2 * INTER * HIDDEN, d = (long) EXPERTS * HIDDEN * INTER;
            int guBlocks = DeviceWeight.scaleRows(2 * INTER, INTER) * DeviceWeight.blocks(HIDDEN);
            int dBlocks = DeviceWeight.blocks(HIDDEN) * DeviceWeight.blocks(INTER);
            return new Experts(true, randomFp8(gpu, gu, 12, "gate_up"), scales(gpu, (long) EXPERTS * guBlocks, HIDDEN, 13),
                    randomFp8(gpu, d, 14, "down"), scales(gpu, (long) EXPERTS * dBlocks, INTER, 15),
                    randomFp8(gpu, 2L * INTER * HIDDEN, 16, "shared_gate_up"), scales(gpu, guBlocks, HIDDEN, 17),
                    randomFp8(gpu, (long) HIDDEN * INTER, 18, "shared_down"), scales(gpu, dBlocks, INTER, 19));
        }

        DeviceWeight gateUpWeight() {
            return isFp8 ? DeviceWeight.fp8(DeviceTensor.of(gateUp, DType.F8_E4M3, EXPERTS, 2 * INTER, HIDDEN),
                    DeviceTensor.of(gateUpScales, DType.F32, EXPERTS, DeviceWeight.scaleRows(2 * INTER, INTER), DeviceWeight.blocks(HIDDEN)), INTER)
                    : DeviceWeight.bf16(DeviceTensor.of(gateUp, DType.BF16, EXPERTS, 2 * INTER, HIDDEN));
        }

        DeviceWeight sharedGateUpWeight() {
            return isFp8 ? DeviceWeight.fp8(DeviceTensor.of(sharedGateUp, DType.F8_E4M3, 2 * INTER, HIDDEN),
                    DeviceTensor.of(sharedGateUpScales, DType.F32, DeviceWeight.scaleRows(2 * INTER, INTER), DeviceWeight.blocks(HIDDEN)), INTER)
                    : DeviceWeight.bf16(DeviceTensor.of(sharedGateUp, DType.BF16, 2 * INTER, HIDDEN));
        }

        DeviceWeight downWeight() {
            return isFp8 ? DeviceWeight.fp8(DeviceTensor.of(down, DType.F8_E4M3, EXPERTS, HIDDEN, INTER),
                    DeviceTensor.of(downScales, DType.F32, EXPERTS, DeviceWeight.blocks(HIDDEN), DeviceWeight.blocks(INTER)))
                    : DeviceWeight.bf16(DeviceTensor.of(down, DType.BF16, EXPERTS, HIDDEN, INTER));
        }

        DeviceWeight sharedDownWeight() {
            return isFp8 ? DeviceWeight.fp8(DeviceTensor.of(sharedDown, DType.F8_E4M3, HIDDEN, INTER),
                    DeviceTensor.of(sharedDownScales, DType.F32, DeviceWeight.blocks(HIDDEN), DeviceWeight.blocks(INTER)))
                    : DeviceWeight.bf16(DeviceTensor.of(sharedDown, DType.BF16, HIDDEN, INTER));
        }

        /** Bytes one expert's three matrices occupy (values and scales). */
        double bytesPerExpert() {
            double w = 3.0 * HIDDEN * INTER;
            return isFp8 ? w + 4.0 * (DeviceWeight.scaleRows(2 * INTER, INTER) + DeviceWeight.blocks(HIDDEN))
                    * DeviceWeight.blocks(HIDDEN) : 2 * w;
        }

        String label() {
            return isFp8 ? "FP8" : "bf16";
        }

        @Override
        public void close() {
            for (DeviceBuffer b : new DeviceBuffer[] {gateUp, gateUpScales, down, downScales, sharedGateUp, sharedGateUpScales,
                    sharedDown, sharedDownScales}) {
                if (b != null) b.close();
            }
        }
    }

    /** Both decode expert kernels over 16 routings a graph; returns µs per routing. */
    private double decode(Stream s, GpuTimer timer, KernelLibrary lib, Experts w, int batch) {
        MoeDecodeKernel k = new MoeDecodeKernel(lib);
        SplittableRandom r = new SplittableRandom(99 + batch);
        int[] ids = new int[SETS * batch * TOP_K];
        long distinct = 0;
        for (int set = 0; set < SETS; set++) {
            Set<Integer> seen = new HashSet<>();
            for (int t = 0; t < batch; t++) {
                Set<Integer> mine = new HashSet<>();
                for (int j = 0; j < TOP_K; j++) {
                    int e;
                    do e = r.nextInt(EXPERTS); while (!mine.add(e));
                    ids[(set * batch + t) * TOP_K + j] = e;
                    seen.add(e);
                }
            }
            distinct += seen.size();
        }
        int slots = MoeDecodeKernel.actRows(batch, TOP_K, true), stride = EXPERTS + 1;
        try (DeviceBuffer dIds = gpu.allocate(4L * ids.length, "ids");
             DeviceBuffer dW = randomBf16(gpu, (long) SETS * batch * TOP_K, 0.1, 7, "topk weights");
             DeviceBuffer x = randomBf16(gpu, (long) SETS * batch * HIDDEN, 1, 6, "x");
             DeviceBuffer gates = randomBf16(gpu, (long) batch * stride, 1, 8, "gate logits");
             DeviceBuffer act = gpu.allocate(2L * slots * INTER, "act"); DeviceBuffer contrib = gpu.allocate(2L * slots * HIDDEN, "contrib");
             DeviceBuffer counters = gpu.allocate(MoeDecodeKernel.counterBytes(batch, HIDDEN), "counters");
             DeviceBuffer out = gpu.allocate(2L * batch * HIDDEN, "out")) {
            counters.fill32(0, s);
            try (Arena a = Arena.ofConfined()) {
                dIds.copyFromHost(a.allocateFrom(ValueLayout.JAVA_INT, ids));
            }
            DeviceTensor actT = DeviceTensor.of(act, DType.BF16, slots, INTER);
            MoeDecodeKernel.GateUpArgs[] gateUpArgs = new MoeDecodeKernel.GateUpArgs[SETS];
            MoeDecodeKernel.DownArgs[] downArgs = new MoeDecodeKernel.DownArgs[SETS];
            for (int i = 0; i < SETS; i++) {
                DeviceTensor idi = DeviceTensor.of(dIds, 4L * i * batch * TOP_K, "ids" + i, DType.I32, batch, TOP_K);
                gateUpArgs[i] = new MoeDecodeKernel.GateUpArgs(DeviceTensor.of(x, 2L * i * batch * HIDDEN, "x" + i, DType.BF16, batch, HIDDEN),
                        idi, w.gateUpWeight(), w.sharedGateUpWeight(), actT);
                downArgs[i] = new MoeDecodeKernel.DownArgs(actT, idi, DeviceTensor.of(dW, 2L * i * batch * TOP_K, "w" + i, DType.BF16, batch, TOP_K),
                        w.downWeight(), w.sharedDownWeight(), DeviceTensor.of(gates, DType.BF16, batch, stride), EXPERTS,
                        DeviceTensor.of(contrib, DType.BF16, slots, HIDDEN), DeviceTensor.of(counters, DType.U32, batch, HIDDEN / 64),
                        DeviceTensor.of(out, DType.BF16, batch, HIDDEN));
            }
            try (CudaGraph g = CudaGraph.capture(s, st -> {
                for (int i = 0; i < SETS; i++) {
                    k.launchGateUp(st, gateUpArgs[i], batch);
                    k.launchDown(st, downArgs[i], batch);
                }
            })) {
                g.upload(s);
                double ms = timer.medianMillis(() -> g.replay(s), 10, 100) / SETS;
                double bytes = (distinct / (double) SETS + 1) * w.bytesPerExpert();
                double tbps = bytes / ms / 1e9;
                String key = "moe_decode_experts_B" + batch + "_" + w.label().toLowerCase(java.util.Locale.ROOT);
                numbers.put(key + "_us", ms * 1e3);
                numbers.put(key + "_TBps", tbps);
                rows.add(new Row("MoE decode experts " + w.label(), "B=" + batch + " E=" + EXPERTS + " k=" + TOP_K + " +shared",
                        ms * 1e3, fmt("%.2f TB/s (%.1f MB)", tbps, bytes / 1e6), pct(tbps / copyTBps), "gate_up + down + combine"));
                return ms * 1e3;
            }
        }
    }

    /** One layer's FP8 gate_up stack dequantized to bf16. */
    private void dequant(Stream s, GpuTimer timer, KernelLibrary lib, Experts w) {
        long n = (long) EXPERTS * 2 * INTER * HIDDEN;
        try (DeviceBuffer out = gpu.allocate(2 * n, "gate_up bf16")) {
            Fp8DequantKernel k = new Fp8DequantKernel(lib);
            Fp8DequantKernel.Args args = new Fp8DequantKernel.Args(w.gateUpWeight(),
                    DeviceTensor.of(out, DType.BF16, EXPERTS, 2 * INTER, HIDDEN));
            double ms = timer.medianMillis(() -> k.launch(s, args), 3, 20);
            double bytes = 3.0 * n + w.gateUpWeight().scales().bytes();
            double tbps = bytes / ms / 1e9;
            numbers.put("fp8_dequant_gate_up_E512_us", ms * 1e3);
            numbers.put("fp8_dequant_gate_up_E512_TBps", tbps);
            rows.add(new Row("FP8 -> bf16 dequant (one layer's gate_up)", "[512, 1024, 2048]", ms * 1e3,
                    fmt("%.2f TB/s (%.0f MB)", tbps, bytes / 1e6), pct(tbps / copyTBps), "read 1 B + write 2 B a weight"));
        }
    }

    private static DeviceBuffer randomBf16(Gpu gpu, long n, double scale, long seed, String label) {
        DeviceBuffer b = gpu.allocate(2 * n, label);
        SplittableRandom r = new SplittableRandom(seed);
        fill(b, 2, i -> {
            short v;
            do v = Bf16.fromFloat((float) ((r.nextDouble() * 2 - 1) * scale * Math.sqrt(3))); while (v == 0);
            return v;
        });
        return b;
    }

    private static DeviceBuffer randomFp8(Gpu gpu, long n, long seed, String label) {
        DeviceBuffer b = gpu.allocate(n, label);
        SplittableRandom r = new SplittableRandom(seed);
        fill(b, 1, i -> {
            byte v;
            do v = (byte) r.nextInt(256); while (Fp8E4m3.isNaN(v));
            return v;
        });
        return b;
    }

    /** Block scales around {@code 1 / (448 · √fanIn)}: FP8 weights of order 1/√fanIn. */
    private static DeviceBuffer scales(Gpu gpu, long n, int fanIn, long seed) {
        DeviceBuffer b = gpu.allocate(4 * n, "scales");
        SplittableRandom r = new SplittableRandom(seed);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocate(4 * n);
            for (long i = 0; i < n; i++) {
                host.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) (Math.pow(2, r.nextDouble(-1, 1)) / (Fp8E4m3.MAX * Math.sqrt(fanIn))));
            }
            b.copyFromHost(host);
        }
        return b;
    }

    /** A 16 MiB random pool of {@code width}-byte values tiled over the buffer at shifting offsets. */
    private static void fill(DeviceBuffer b, int width, java.util.function.LongFunction<Number> value) {
        int pool = 16 << 20;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocate(pool);
            for (int i = 0; i < pool / width; i++) {
                if (width == 2) host.setAtIndex(ValueLayout.JAVA_SHORT, i, value.apply(i).shortValue());
                else host.set(ValueLayout.JAVA_BYTE, i, value.apply(i).byteValue());
            }
            long size = b.bytes();
            for (long at = 0, k = 0; at < size; k++) {
                long shift = (k * 7919 * width) % (pool / 2);
                long len = Math.min(pool - shift, size - at);
                b.copyFromHost(host.asSlice(shift, len), at);
                at += len;
            }
        }
    }
}
