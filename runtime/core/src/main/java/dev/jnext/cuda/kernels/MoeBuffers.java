package dev.jnext.cuda.kernels;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.Stream;

import java.util.ArrayList;
import java.util.List;

/**
 * The scratch of one {@link GpuSparseMoe}, allocated once in exactly the sizes of its {@link GpuSparseMoe.Scratch} and
 * viewed as the typed tensors that its launches' argument records hold (rows = the op's {@code maxTokens}, or the
 * worst-case m-tiles of the grouping). A tensor whose buffer the op does not need is null. Closing frees every buffer;
 * a failed allocation frees what was allocated before it throws.
 */
final class MoeBuffers implements AutoCloseable {
    private final List<DeviceBuffer> owned = new ArrayList<>();
    /** The router's outputs, read back by tests and benchmarks. */
    final DeviceBuffer logitsBuffer, topkIdsBuffer, topkWeightsBuffer;
    /** {@code [maxTokens, routerRows]} bf16: the E router logits, then the shared gate's, per token. */
    final DeviceTensor logits;
    /** {@code [maxTokens, topK]}: i32 expert ids, bf16 weights. */
    final DeviceTensor topkIds, topkWeights;
    /** The grouping, i32: {@code [chunks, E]}, {@code [E + 1]}, {@code [maxTiles, BLOCK_M]}, {@code [pairs]}, {@code [maxTiles]}. */
    final DeviceTensor chunkCounts, expertStart, sortedPairs, pairRow, tileExpert;
    /** {@code [rows, I]} bf16: both paths' activations (sorted order on the prefill path, slot order on the decode path). */
    final DeviceTensor act;
    /** {@code [pairs, H]} bf16: the prefill path's weighted expert rows; null without a prefill path. */
    final DeviceTensor contrib;
    /** The decode path's per-slot down outputs {@code [actRows, H]} bf16 and its counters {@code [decodeRows, H/64]} u32. */
    final DeviceTensor decodeContrib, decodeCounters;
    /** The prefill path's dense shared expert, bf16: {@code [maxTokens, 2·Is]}, {@code [maxTokens, Is]}, {@code [maxTokens, H]}; null without. */
    final DeviceTensor sharedGateUp, sharedAct, sharedOut;
    /**
     * The prefill path's bf16 copy of one layer's FP8 experts (one buffer, refreshed by each forward's dequant launches):
     * {@code [E, 2I, H]}, {@code [E, H, I]}, and the shared expert's {@code [2Is, H]}, {@code [H, Is]}; null unless the shape
     * allows FP8 experts and the op has a prefill path.
     */
    final DeviceTensor gateUp16, down16, sharedGateUp16, sharedDown16;

    MoeBuffers(Gpu gpu, GpuSparseMoe.Shape shape, int maxTokens, int decodeMaxTokens) {
        GpuSparseMoe.Scratch z = sizes(shape, maxTokens, decodeMaxTokens);
        int decodeRows = GpuSparseMoe.decodeRows(shape, maxTokens, decodeMaxTokens);
        int h = shape.hidden(), e = shape.experts(), i = shape.inter(), k = shape.topK(), is = shape.sharedInter();
        int pairs = maxTokens * k, bm = MoeExpertGemm.BLOCK_M;
        try {
            logitsBuffer = alloc(gpu, z.logits(), "moe.logits");
            topkIdsBuffer = alloc(gpu, z.topkIds(), "moe.topk_ids");
            topkWeightsBuffer = alloc(gpu, z.topkWeights(), "moe.topk_weights");
            logits = DeviceTensor.of(logitsBuffer, DType.BF16, maxTokens, GpuSparseMoe.routerRows(shape));
            topkIds = DeviceTensor.of(topkIdsBuffer, DType.I32, maxTokens, k);
            topkWeights = DeviceTensor.of(topkWeightsBuffer, DType.BF16, maxTokens, k);
            chunkCounts = DeviceTensor.of(alloc(gpu, z.chunkCounts(), "moe.chunk_counts"), DType.I32, ExpertGrouping.chunks(pairs), e);
            expertStart = DeviceTensor.of(alloc(gpu, z.expertStart(), "moe.expert_start"), DType.I32, e + 1);
            sortedPairs = DeviceTensor.of(alloc(gpu, z.sortedPairs(), "moe.sorted_pairs"), DType.I32, z.maxTiles(), bm);
            pairRow = DeviceTensor.of(alloc(gpu, z.pairRow(), "moe.pair_row"), DType.I32, pairs);
            tileExpert = DeviceTensor.of(alloc(gpu, z.tileExpert(), "moe.tile_expert"), DType.I32, z.maxTiles());
            act = DeviceTensor.of(alloc(gpu, z.act(), "moe.act"), DType.BF16, (int) (z.act() / (2L * i)), i);
            contrib = z.contrib() > 0 ? DeviceTensor.of(alloc(gpu, z.contrib(), "moe.contrib"), DType.BF16, pairs, h) : null;
            decodeContrib = DeviceTensor.of(alloc(gpu, z.decodeContrib(), "moe.decode_contrib"), DType.BF16,
                    (int) (z.decodeContrib() / (2L * h)), h);
            DeviceBuffer counters = alloc(gpu, z.decodeCounters(), "moe.decode_counters");
            try (Stream init = gpu.createStream()) {  // zeroed once; every decode leaves them zeroed
                counters.fill32(0, init);
                init.synchronize();
            }
            decodeCounters = DeviceTensor.of(counters, DType.U32, decodeRows, h / MoeDecodeKernel.ROWS_PER_BLOCK);
            sharedGateUp = z.sharedGateUp() > 0
                    ? DeviceTensor.of(alloc(gpu, z.sharedGateUp(), "moe.shared_gate_up"), DType.BF16, maxTokens, 2 * is) : null;
            sharedAct = z.sharedAct() > 0 ? DeviceTensor.of(alloc(gpu, z.sharedAct(), "moe.shared_act"), DType.BF16, maxTokens, is) : null;
            sharedOut = z.sharedOut() > 0 ? DeviceTensor.of(alloc(gpu, z.sharedOut(), "moe.shared_out"), DType.BF16, maxTokens, h) : null;
            if (z.fp8Copy() > 0) {
                DeviceBuffer copy = alloc(gpu, z.fp8Copy(), "moe.fp8_bf16_copy");
                long[] at = fp8CopyOffsets(shape);
                gateUp16 = DeviceTensor.of(copy, at[0], "moe.gate_up (bf16 copy)", DType.BF16, e, 2 * i, h);
                down16 = DeviceTensor.of(copy, at[1], "moe.down (bf16 copy)", DType.BF16, e, h, i);
                sharedGateUp16 = shape.hasShared() ? DeviceTensor.of(copy, at[2], "moe.shared_gate_up (bf16 copy)", DType.BF16, 2 * is, h) : null;
                sharedDown16 = shape.hasShared() ? DeviceTensor.of(copy, at[3], "moe.shared_down (bf16 copy)", DType.BF16, h, is) : null;
            } else {
                gateUp16 = down16 = sharedGateUp16 = sharedDown16 = null;
            }
        } catch (RuntimeException ex) {
            close();
            throw ex;
        }
    }

    /** {@link GpuSparseMoe#scratch}: the bytes of every buffer the constructor allocates. */
    static GpuSparseMoe.Scratch sizes(GpuSparseMoe.Shape shape, int maxTokens, int decodeMaxTokens) {
        int decodeRows = GpuSparseMoe.decodeRows(shape, maxTokens, decodeMaxTokens);
        int pairs = maxTokens * shape.topK();
        int h = shape.hidden(), i = shape.inter();
        int maxTiles = ExpertGrouping.maxTiles(pairs, shape.experts(), MoeExpertGemm.BLOCK_M);
        long actRows = Math.max((long) maxTiles * MoeExpertGemm.BLOCK_M, MoeDecodeKernel.actRows(maxTokens, shape.topK(), shape.hasShared()));
        boolean denseShared = shape.hasShared() && maxTokens > decodeRows;
        return new GpuSparseMoe.Scratch(maxTiles,
                2L * maxTokens * GpuSparseMoe.routerRows(shape),
                4L * pairs,
                2L * pairs,
                4L * ExpertGrouping.chunks(pairs) * shape.experts(),
                4L * (shape.experts() + 1),
                4L * maxTiles * MoeExpertGemm.BLOCK_M,
                4L * pairs,
                4L * maxTiles,
                2L * actRows * i,
                maxTokens > decodeRows ? 2L * pairs * h : 0,
                2L * Math.max(1, MoeDecodeKernel.actRows(decodeRows, shape.topK(), shape.hasShared())) * h,
                Math.max(4, MoeDecodeKernel.counterBytes(decodeRows, h)),
                denseShared ? 4L * maxTokens * shape.sharedInter() : 0,
                denseShared ? 2L * maxTokens * shape.sharedInter() : 0,
                denseShared ? 2L * maxTokens * h : 0,
                shape.fp8Experts() && maxTokens > decodeRows ? fp8CopyOffsets(shape)[4] : 0);
    }

    /** Byte offsets of the bf16 copy's four parts, 256-byte aligned, and (last) its size. */
    static long[] fp8CopyOffsets(GpuSparseMoe.Shape shape) {
        long h = shape.hidden(), e = shape.experts(), i = shape.inter(), is = shape.sharedInter();
        long[] parts = {2 * e * 2 * i * h, 2 * e * h * i, 2 * 2 * is * h, 2 * h * is};
        long[] at = new long[5];
        for (int p = 0; p < 4; p++) at[p + 1] = at[p] + (parts[p] + 255) / 256 * 256;
        return at;
    }

    private DeviceBuffer alloc(Gpu gpu, long bytes, String label) {
        DeviceBuffer b = gpu.allocate(bytes, label);
        owned.add(b);
        return b;
    }

    @Override
    public void close() {
        RuntimeException first = null;
        for (DeviceBuffer b : owned) {
            try {
                b.close();
            } catch (RuntimeException e) {
                if (first == null) first = e;
            }
        }
        owned.clear();
        if (first != null) throw first;
    }
}
