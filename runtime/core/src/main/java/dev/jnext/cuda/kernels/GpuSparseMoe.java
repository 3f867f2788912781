package dev.jnext.cuda.kernels;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Gemm;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;

/**
 * The sparse MoE block ({@code Qwen3NextSparseMoeBlock}) on the GPU, for up to {@code maxTokens} rows, with every
 * scratch buffer allocated once here (a forward allocates nothing and reads nothing back, so it can be captured):
 * <ol>
 *   <li>router and shared-expert gate logits in one cuBLASLt GEMM ({@link #routerRows} rows: the E router rows, then
 *       the shared-expert gate at row E, zero rows up to a multiple of 8);</li>
 *   <li>{@link MoeRouterKernel}: softmax, top-k, renormalisation;</li>
 *   <li>decode (tokens ≤ {@code decodeMaxTokens}): {@link MoeDecodeKernel}, two launches including the shared expert;</li>
 *   <li>prefill: {@link ExpertGrouping}, {@link MoeExpertGemm} gate_up+SiLU and down, the shared expert as a dense MLP
 *       (cuBLASLt, {@link SiluMulKernel}, cuBLASLt), then {@link MoeCombineKernel}.</li>
 * </ol>
 * Weights: {@code gateUp [E, 2I, H]} (each expert's gate rows then up rows), {@code down [E, H, I]}, shared
 * {@code sharedGateUp [2Is, H]} and {@code sharedDown [H, Is]}; all bf16, 16-byte aligned.
 */
public final class GpuSparseMoe implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(GpuSparseMoe.class);

    /** The block's sizes; {@code sharedInter == 0}: no shared expert. */
    public record Shape(int hidden, int experts, int topK, int inter, int sharedInter, boolean normTopkProb) {
        public Shape {
            if (experts < 1 || experts > ExpertGrouping.MAX_EXPERTS) throw new IllegalArgumentException("moe: experts " + experts);
            if (topK < 1 || topK > Math.min(experts, MoeRouterKernel.MAX_TOP_K)) throw new IllegalArgumentException("moe: top-k " + topK);
            if (sharedInter != 0 && sharedInter != inter) {
                throw new IllegalArgumentException("moe: the fused decode path needs the shared expert as wide as the experts ("
                        + sharedInter + " vs " + inter + ")");
            }
            MoeExpertGemm.checkShape(hidden, inter, 1);
        }

        public boolean hasShared() {
            return sharedInter > 0;
        }
    }

    /** Device addresses of one layer's MoE weights (see the class comment for layouts). */
    public record Weights(long router, long gateUp, long down, long sharedGateUp, long sharedDown) {}

    /** Rows of the router weight (and of each logits row): E router rows, the shared gate row, padding to 8. */
    public static int routerRows(Shape shape) {
        return routerRows(shape.experts(), shape.hasShared());
    }

    /** {@link #routerRows(Shape)} from the counts alone (planning a weight image needs no kernel shape checks). */
    public static int routerRows(int experts, boolean hasShared) {
        return (experts + (hasShared ? 1 : 0) + 7) / 8 * 8;
    }

    private final Shape shape;
    private final int maxTokens;
    private final int decodeMaxTokens;
    private final int maxTiles;
    private final Gemm gemm;
    private final MoeRouterKernel router;
    private final ExpertGrouping grouping;
    private final MoeExpertGemm experts;
    private final MoeCombineKernel combine;
    private final MoeDecodeKernel decode;
    private final SiluMulKernel siluMul;
    private final List<DeviceBuffer> owned = new ArrayList<>();
    private final DeviceBuffer logits, topkIds, topkWeights, chunkCounts, expertStart, sortedPairs, pairRow, tileExpert;
    private final DeviceBuffer act, contrib, decodeContrib, decodeCounters, sharedGateUpOut, sharedAct, sharedOut;

    /** With the Hopper (wgmma) grouped GEMMs; {@link MoeExpertGemm.Engine#MMA_SYNC} is the portable alternative. */
    public GpuSparseMoe(KernelLibrary lib, Gemm gemm, Shape shape, int maxTokens, int decodeMaxTokens) {
        this(lib, gemm, shape, maxTokens, decodeMaxTokens, MoeExpertGemm.Engine.WGMMA);
    }

    public GpuSparseMoe(KernelLibrary lib, Gemm gemm, Shape shape, int maxTokens, int decodeMaxTokens, MoeExpertGemm.Engine engine) {
        if (maxTokens < 1) throw new IllegalArgumentException("moe: maxTokens must be >= 1, got " + maxTokens);
        this.shape = shape;
        this.maxTokens = maxTokens;
        // experts wider than the decode kernels take the grouped GEMMs at every size
        this.decodeMaxTokens = decodeRows(shape, maxTokens, decodeMaxTokens);
        if (LOG.isDebugEnabled()) {
            boolean wgmma = engine == MoeExpertGemm.Engine.WGMMA;
            String fallback = wgmma ? "mma.sync (wgmma cannot tile it)" : "mma.sync";
            LOG.debug("MoE of {} experts, top-{}, H {}, I {}: grouped GEMMs gate_up {}, down {}; {}", shape.experts(), shape.topK(),
                    shape.hidden(), shape.inter(),
                    wgmma && MoeExpertGemm.gateUpTileN(shape.inter()) == 256 ? "wgmma" : fallback,
                    wgmma && MoeExpertGemm.downTileN(shape.hidden()) == 256 ? "wgmma" : fallback,
                    this.decodeMaxTokens > 0 ? "decode kernels for steps of up to " + this.decodeMaxTokens + " tokens"
                            : "no decode kernels (I > " + MoeDecodeKernel.MAX_INTER + " or maxTokens 0): every step takes the grouped GEMMs");
        }
        this.gemm = gemm;
        this.router = new MoeRouterKernel(lib);
        this.grouping = new ExpertGrouping(lib);
        this.experts = new MoeExpertGemm(lib, engine);
        this.combine = new MoeCombineKernel(lib);
        this.decode = new MoeDecodeKernel(lib);
        this.siluMul = new SiluMulKernel(lib);
        Gpu gpu = lib.gpu();
        Scratch z = scratch(shape, maxTokens, decodeMaxTokens);
        this.maxTiles = z.maxTiles();
        try {
            logits = alloc(gpu, z.logits(), "moe.logits");
            topkIds = alloc(gpu, z.topkIds(), "moe.topk_ids");
            topkWeights = alloc(gpu, z.topkWeights(), "moe.topk_weights");
            chunkCounts = alloc(gpu, z.chunkCounts(), "moe.chunk_counts");
            expertStart = alloc(gpu, z.expertStart(), "moe.expert_start");
            sortedPairs = alloc(gpu, z.sortedPairs(), "moe.sorted_pairs");
            pairRow = alloc(gpu, z.pairRow(), "moe.pair_row");
            tileExpert = alloc(gpu, z.tileExpert(), "moe.tile_expert");
            act = alloc(gpu, z.act(), "moe.act");
            contrib = z.contrib() > 0 ? alloc(gpu, z.contrib(), "moe.contrib") : null;
            decodeContrib = alloc(gpu, z.decodeContrib(), "moe.decode_contrib");
            decodeCounters = alloc(gpu, z.decodeCounters(), "moe.decode_counters");
            try (Stream init = gpu.createStream()) {  // zeroed once; every decode leaves them zeroed
                decodeCounters.fill32(0, init);
                init.synchronize();
            }
            sharedGateUpOut = z.sharedGateUp() > 0 ? alloc(gpu, z.sharedGateUp(), "moe.shared_gate_up") : null;
            sharedAct = z.sharedAct() > 0 ? alloc(gpu, z.sharedAct(), "moe.shared_act") : null;
            sharedOut = z.sharedOut() > 0 ? alloc(gpu, z.sharedOut(), "moe.shared_out") : null;
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** Rows the decode kernels take: none when the experts are wider than they handle, else up to {@code decodeMaxTokens}. */
    public static int decodeRows(Shape shape, int maxTokens, int decodeMaxTokens) {
        return shape.inter() > MoeDecodeKernel.MAX_INTER ? 0 : Math.min(decodeMaxTokens, maxTokens);
    }

    /**
     * Every scratch buffer the op allocates, in bytes (0: not allocated): the one place these sizes are computed. The
     * constructor allocates exactly these; the runner's memory plan counts {@link #total()}.
     */
    public record Scratch(int maxTiles, long logits, long topkIds, long topkWeights, long chunkCounts, long expertStart,
                          long sortedPairs, long pairRow, long tileExpert, long act, long contrib, long decodeContrib,
                          long decodeCounters, long sharedGateUp, long sharedAct, long sharedOut) {
        /** All of it. */
        public long total() {
            return logits + topkIds + topkWeights + chunkCounts + expertStart + sortedPairs + pairRow + tileExpert + act
                    + contrib + decodeContrib + decodeCounters + sharedGateUp + sharedAct + sharedOut;
        }
    }

    /** The scratch of an op of {@code shape} sized for {@code maxTokens} rows, decode kernels up to {@code decodeMaxTokens}. */
    public static Scratch scratch(Shape shape, int maxTokens, int decodeMaxTokens) {
        int decodeRows = decodeRows(shape, maxTokens, decodeMaxTokens);
        int pairs = maxTokens * shape.topK();
        int h = shape.hidden(), i = shape.inter();
        int maxTiles = ExpertGrouping.maxTiles(pairs, shape.experts(), MoeExpertGemm.BLOCK_M);
        long actRows = Math.max((long) maxTiles * MoeExpertGemm.BLOCK_M, MoeDecodeKernel.actRows(maxTokens, shape.topK(), shape.hasShared()));
        boolean denseShared = shape.hasShared() && maxTokens > decodeRows;
        return new Scratch(maxTiles,
                2L * maxTokens * routerRows(shape),
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
                denseShared ? 2L * maxTokens * h : 0);
    }

    private DeviceBuffer alloc(Gpu gpu, long bytes, String label) {
        DeviceBuffer b = gpu.allocate(bytes, label);
        owned.add(b);
        return b;
    }

    public Shape shape() {
        return shape;
    }

    /** The worst-case m-tiles of the prefill path (the grouped GEMM grid height). */
    public int maxTiles() {
        return maxTiles;
    }

    /**
     * {@code out [T, H] = MoE(x [T, H])} for a step of fixed {@code shape}, T = {@code shape.tokens()}: the decode path when
     * T ≤ {@link #decodeMaxTokens()}, else the prefill path — chosen from the shape only, so a captured piece stays valid
     * for every batch of its bucket. Rows are independent: whatever a padded row holds (NaN included) routes to valid
     * experts and changes no other row; its own output row is not meaningful.
     */
    public void forward(Stream s, StepShape shape, Weights w, long x, long out) {
        int tokens = shape.tokens();
        if (tokens <= decodeMaxTokens) decode(s, w, x, out, tokens);
        else prefill(s, w, x, out, tokens);
    }

    /** The most rows {@link #forward} runs on the decode (GEMV) path. */
    public int decodeMaxTokens() {
        return decodeMaxTokens;
    }

    /** Router GEMM and top-k: fills {@link #topkIds()} / {@link #topkWeights()}. */
    public void route(Stream s, Weights w, long x, int tokens) {
        checkTokens(tokens);
        int rows = routerRows(shape);
        gemm.matmul(s, x, w.router(), logits.address(), tokens, rows, shape.hidden());
        router.launch(s, logits.address(), rows, topkIds.address(), topkWeights.address(), tokens, shape.experts(), shape.topK(),
                shape.normTopkProb());
    }

    public void decode(Stream s, Weights w, long x, long out, int tokens) {
        route(s, w, x, tokens);
        decodeExperts(s, w, x, out, tokens);
    }

    /** The decode path after the router (the routing of the last {@link #route}): two launches. */
    public void decodeExperts(Stream s, Weights w, long x, long out, int tokens) {
        checkTokens(tokens);
        long sgu = shape.hasShared() ? w.sharedGateUp() : 0, sd = shape.hasShared() ? w.sharedDown() : 0;
        decode.launchGateUp(s, x, topkIds.address(), w.gateUp(), sgu, act.address(), tokens, shape.topK(), shape.hidden(), shape.inter(),
                shape.experts());
        decode.launchDown(s, act.address(), topkIds.address(), topkWeights.address(), w.down(), sd, sharedGateLogits(), routerRows(shape),
                decodeContrib.address(), decodeCounters.address(), out, tokens, shape.topK(), shape.hidden(), shape.inter(), shape.experts());
    }

    public void prefill(Stream s, Weights w, long x, long out, int tokens) {
        if (contrib == null) throw new IllegalStateException("moe: built for decode only (maxTokens <= decodeMaxTokens)");
        route(s, w, x, tokens);
        int pairs = tokens * shape.topK();
        grouping.launch(s, topkIds.address(), pairs, shape.experts(), MoeExpertGemm.BLOCK_M, chunkCounts.address(),
                expertStart.address(), sortedPairs.address(), pairRow.address(), tileExpert.address());
        expertGemms(s, w, x, tokens);
        long shared = 0;
        if (shape.hasShared()) {
            int is = shape.sharedInter();
            gemm.matmul(s, x, w.sharedGateUp(), sharedGateUpOut.address(), tokens, 2 * is, shape.hidden());
            siluMul.launch(s, sharedGateUpOut.address(), sharedAct.address(), tokens, is);
            gemm.matmul(s, sharedAct.address(), w.sharedDown(), sharedOut.address(), tokens, shape.hidden(), is);
            shared = sharedOut.address();
        }
        combine.launch(s, contrib.address(), topkIds.address(), shape.experts(), shared, sharedGateLogits(), routerRows(shape), out, tokens,
                shape.topK(), shape.hidden());
    }

    /** The two grouped GEMMs of the prefill path on the grouping of the last {@link #prefill} of {@code tokens} rows. */
    public void expertGemms(Stream s, Weights w, long x, int tokens) {
        expertGateUp(s, w, x, tokens);
        expertDown(s, w, tokens);
    }

    /** The gate_up + SiLU grouped GEMM alone (benchmarks). */
    public void expertGateUp(Stream s, Weights w, long x, int tokens) {
        checkTokens(tokens);
        if (contrib == null) throw new IllegalStateException("moe: built for decode only (maxTokens <= decodeMaxTokens)");
        int tiles = ExpertGrouping.maxTiles(tokens * shape.topK(), shape.experts(), MoeExpertGemm.BLOCK_M);
        experts.launchGateUp(s, x, sortedPairs.address(), tileExpert.address(), tiles, w.gateUp(), act.address(), shape.topK(),
                shape.hidden(), shape.inter());
    }

    /** The down grouped GEMM alone (benchmarks). */
    public void expertDown(Stream s, Weights w, int tokens) {
        checkTokens(tokens);
        if (contrib == null) throw new IllegalStateException("moe: built for decode only (maxTokens <= decodeMaxTokens)");
        int tiles = ExpertGrouping.maxTiles(tokens * shape.topK(), shape.experts(), MoeExpertGemm.BLOCK_M);
        experts.launchDown(s, act.address(), sortedPairs.address(), tileExpert.address(), tiles, w.down(), topkWeights.address(),
                contrib.address(), shape.hidden(), shape.inter());
    }

    private long sharedGateLogits() {
        return shape.hasShared() ? logits.address() + 2L * shape.experts() : 0;
    }

    private void checkTokens(int tokens) {
        if (tokens < 1 || tokens > maxTokens) {
            throw new IllegalArgumentException("moe: tokens must be in [1, " + maxTokens + "], got " + tokens);
        }
    }

    /** Router output of the last forward: [tokens, topK] int32 expert ids. */
    public DeviceBuffer topkIds() {
        return topkIds;
    }

    /** Router output of the last forward: [tokens, topK] bf16 weights. */
    public DeviceBuffer topkWeights() {
        return topkWeights;
    }

    /** Router and shared-gate logits of the last forward: [tokens, routerRows] bf16. */
    public DeviceBuffer logits() {
        return logits;
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
