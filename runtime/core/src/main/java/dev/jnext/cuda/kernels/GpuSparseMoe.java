package dev.jnext.cuda.kernels;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Gemm;
import dev.jnext.gpu.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.List;

/**
 * The sparse MoE block ({@code Qwen3NextSparseMoeBlock}) on the GPU, for up to {@code maxTokens} rows, with every
 * scratch buffer allocated once with the op ({@link MoeBuffers}) and every launch's argument record built once, per
 * layer by {@link #bind} (a forward allocates nothing and reads nothing back, so it can be captured):
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
    public record Shape(int hidden, int experts, int topK, int inter, int sharedInter, boolean normTopkProb, boolean fp8Experts) {
        public Shape {
            if (experts < 1 || experts > ExpertGrouping.MAX_EXPERTS) throw new IllegalArgumentException("moe: experts " + experts);
            if (topK < 1 || topK > Math.min(experts, MoeRouterKernel.MAX_TOP_K)) throw new IllegalArgumentException("moe: top-k " + topK);
            if (sharedInter != 0 && sharedInter != inter) {
                throw new IllegalArgumentException("moe: the fused decode path needs the shared expert as wide as the experts ("
                        + sharedInter + " vs " + inter + ")");
            }
            MoeExpertGemm.checkShape(hidden, inter, 1);
        }

        /** bf16 experts. */
        public Shape(int hidden, int experts, int topK, int inter, int sharedInter, boolean normTopkProb) {
            this(hidden, experts, topK, inter, sharedInter, normTopkProb, false);
        }

        public boolean hasShared() {
            return sharedInter > 0;
        }

        /** This shape with FP8 experts allowed ({@link Weights#fp8()}): the op then keeps a bf16 copy's room for prefill. */
        public Shape withFp8Experts(boolean on) {
            return new Shape(hidden, experts, topK, inter, sharedInter, normTopkProb, on);
        }
    }

    /**
     * Device addresses of one layer's MoE weights (see the class comment for layouts); {@code fp8} null for bf16 experts,
     * else the experts and the shared expert are e4m3 codes with these block scales.
     */
    public record Weights(long router, long gateUp, long down, long sharedGateUp, long sharedDown, Fp8Scales fp8) {
        /** bf16 experts. */
        public Weights(long router, long gateUp, long down, long sharedGateUp, long sharedDown) {
            this(router, gateUp, down, sharedGateUp, sharedDown, null);
        }
    }

    /**
     * Where the fp32 block scales of FP8 experts are ({@code [E, scaleRows(2I, gateUpSplit), ⌈H/128⌉]},
     * {@code [E, ⌈H/128⌉, ⌈I/128⌉]}, the shared expert's likewise without E; 0 without a shared expert) and how each
     * gate|up stack was blocked ({@link DeviceWeight}: I for separate gate and up matrices, 2I for a fused stack) —
     * device addresses, or offsets in a weight image before it is placed.
     */
    public record Fp8Scales(long gateUp, int gateUpSplit, long down, long sharedGateUp, int sharedGateUpSplit, long sharedDown) {
        /** The same scales with every non-zero location passed through {@code place} (image offsets to addresses). */
        public Fp8Scales placed(java.util.function.LongUnaryOperator place) {
            return new Fp8Scales(place.applyAsLong(gateUp), gateUpSplit, place.applyAsLong(down),
                    sharedGateUp == 0 ? 0 : place.applyAsLong(sharedGateUp), sharedGateUpSplit,
                    sharedDown == 0 ? 0 : place.applyAsLong(sharedDown));
        }
    }

    /**
     * One layer's block bound to its weights and to its input {@code x [≥tokens, H]} and output {@code out [≥tokens, H]}
     * (bf16, rows = capacity): every launch's argument record over the op's scratch, checked against its contract once,
     * here — the decode launches' (null when the op has no decode path) and the prefill path's grouped GEMMs and combine
     * (null when it has none). Built once per layer when a plan is built; a forward only checks its token count against
     * the capacities. With FP8 experts, {@code dequant} turns them into the op's bf16 copy before the prefill path (whose
     * grouped GEMMs and shared-expert GEMMs, and {@code weights}, then address that copy); empty for bf16 experts.
     */
    public record Layer(Weights weights, DeviceTensor x, DeviceTensor out, MoeDecodeKernel.GateUpArgs decodeGateUp,
                        MoeDecodeKernel.DownArgs decodeDown, MoeExpertGemm.GateUpArgs gateUp, MoeExpertGemm.DownArgs down,
                        MoeCombineKernel.Args combine, List<Fp8DequantKernel.Args> dequant) {}

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
    private final Gemm gemm;
    private final MoeRouterKernel router;
    private final ExpertGrouping grouping;
    private final MoeExpertGemm experts;
    private final MoeCombineKernel combine;
    private final MoeDecodeKernel decode;
    private final SiluMulKernel siluMul;
    /** FP8 experts to bf16 for the prefill path; null unless the shape allows FP8 experts. */
    private final Fp8DequantKernel fp8Dequant;
    private final MoeBuffers buffers;
    /** The launches that read and write the scratch only, the same for every layer. */
    private final MoeRouterKernel.Args routerArgs;
    private final ExpertGrouping.Args groupingArgs;
    /** The shared expert's SiLU·mul (prefill path); null without it. */
    private final SiluMulKernel.Args sharedSilu;

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
        this.fp8Dequant = shape.fp8Experts() ? new Fp8DequantKernel(lib) : null;
        this.buffers = new MoeBuffers(lib.gpu(), shape, maxTokens, decodeMaxTokens);
        MoeBuffers b = buffers;
        try {
            this.routerArgs = new MoeRouterKernel.Args(b.logits, b.topkIds, b.topkWeights, shape.experts(), shape.normTopkProb());
            this.groupingArgs = new ExpertGrouping.Args(b.topkIds.reshape(maxTokens * shape.topK()), b.chunkCounts, b.expertStart,
                    b.sortedPairs, b.pairRow, b.tileExpert);
            this.sharedSilu = b.sharedAct == null ? null : new SiluMulKernel.Args(b.sharedGateUp, b.sharedAct);
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
     * Every scratch buffer the op allocates, in bytes (0: not allocated), computed in one place ({@link MoeBuffers},
     * which allocates exactly these); the runner's memory plan counts {@link #total()}.
     */
    public record Scratch(int maxTiles, long logits, long topkIds, long topkWeights, long chunkCounts, long expertStart,
                          long sortedPairs, long pairRow, long tileExpert, long act, long contrib, long decodeContrib,
                          long decodeCounters, long sharedGateUp, long sharedAct, long sharedOut, long fp8Copy) {
        /** All of it. */
        public long total() {
            return logits + topkIds + topkWeights + chunkCounts + expertStart + sortedPairs + pairRow + tileExpert + act
                    + contrib + decodeContrib + decodeCounters + sharedGateUp + sharedAct + sharedOut + fp8Copy;
        }
    }

    /** The scratch of an op of {@code shape} sized for {@code maxTokens} rows, decode kernels up to {@code decodeMaxTokens}. */
    public static Scratch scratch(Shape shape, int maxTokens, int decodeMaxTokens) {
        return MoeBuffers.sizes(shape, maxTokens, decodeMaxTokens);
    }

    public Shape shape() {
        return shape;
    }

    /** The worst-case m-tiles of the prefill path (the grouped GEMM grid height). */
    public int maxTiles() {
        return buffers.tileExpert.dim(0);
    }

    /**
     * Binds {@code w} (layouts of the class comment, at this op's shape) and the activations {@code x}, {@code out}
     * ({@code [rows, H]} bf16, rows the most tokens a forward will pass) into a {@link Layer}, building and checking every
     * launch's argument record over this op's scratch.
     */
    public Layer bind(Weights w, DeviceTensor x, DeviceTensor out) {
        int h = shape.hidden(), e = shape.experts(), i = shape.inter(), k = shape.topK();
        TensorContract.require("moe", "x", x, DType.BF16, TensorContract.ANY, h);
        TensorContract.require("moe", "out", out, DType.BF16, TensorContract.ANY, h);
        Fp8Scales f = w.fp8();
        if (f != null && !shape.fp8Experts()) throw new IllegalArgumentException("moe: FP8 experts need an op of Shape.withFp8Experts");
        MoeBuffers b = buffers;
        // the fused decode path needs sharedInter == inter (Shape's check)
        DeviceWeight gateUp = weight("moe.gate_up", w.gateUp(), f == null ? 0 : f.gateUp(), f == null ? 0 : f.gateUpSplit(), e, 2 * i, h);
        DeviceWeight down = weight("moe.down", w.down(), f == null ? 0 : f.down(), h, e, h, i);
        DeviceWeight sharedGateUp = shape.hasShared() ? weight("moe.shared_gate_up", w.sharedGateUp(), f == null ? 0 : f.sharedGateUp(),
                f == null ? 0 : f.sharedGateUpSplit(), 0, 2 * i, h) : null;
        DeviceWeight sharedDown = shape.hasShared() ? weight("moe.shared_down", w.sharedDown(), f == null ? 0 : f.sharedDown(), h, 0, h, i) : null;
        MoeDecodeKernel.GateUpArgs decodeGateUp = null;
        MoeDecodeKernel.DownArgs decodeDown = null;
        if (decodeMaxTokens > 0) {
            decodeGateUp = new MoeDecodeKernel.GateUpArgs(x, b.topkIds, gateUp, sharedGateUp, b.act);
            decodeDown = new MoeDecodeKernel.DownArgs(b.act, b.topkIds, b.topkWeights, down, sharedDown, b.logits, e, b.decodeContrib,
                    b.decodeCounters, out);
        }
        if (b.contrib == null) return new Layer(w, x, out, decodeGateUp, decodeDown, null, null, null, List.of());
        // the prefill path reads bf16: FP8 experts through the op's copy, refreshed by the dequant launches of each forward
        List<Fp8DequantKernel.Args> dequant = List.of();
        Weights prefillWeights = w;
        DeviceTensor gateUp16 = gateUp.values(), down16 = down.values();
        if (f != null) {
            List<Fp8DequantKernel.Args> d = new ArrayList<>(List.of(new Fp8DequantKernel.Args(gateUp, b.gateUp16),
                    new Fp8DequantKernel.Args(down, b.down16)));
            if (shape.hasShared()) {
                d.add(new Fp8DequantKernel.Args(sharedGateUp, b.sharedGateUp16));
                d.add(new Fp8DequantKernel.Args(sharedDown, b.sharedDown16));
            }
            dequant = List.copyOf(d);
            gateUp16 = b.gateUp16;
            down16 = b.down16;
            prefillWeights = new Weights(w.router(), b.gateUp16.address(), b.down16.address(),
                    shape.hasShared() ? b.sharedGateUp16.address() : 0, shape.hasShared() ? b.sharedDown16.address() : 0);
        }
        return new Layer(prefillWeights, x, out, decodeGateUp, decodeDown,
                new MoeExpertGemm.GateUpArgs(x, b.sortedPairs, b.tileExpert, gateUp16, b.act, k),
                new MoeExpertGemm.DownArgs(b.act, b.sortedPairs, b.tileExpert, down16, b.topkWeights, b.contrib),
                new MoeCombineKernel.Args(b.contrib, b.topkIds, e, shape.hasShared() ? b.sharedOut : null, b.logits, e, out), dequant);
    }

    /**
     * A weight at {@code address}: bf16 {@code [mats, rows, cols]} ({@code mats} 0: a matrix), or FP8 with its scales at
     * {@code scales} (non-zero) blocked at {@code split}.
     */
    private static DeviceWeight weight(String name, long address, long scales, int split, int mats, int rows, int cols) {
        int[] shape = mats == 0 ? new int[] {rows, cols} : new int[] {mats, rows, cols};
        if (scales == 0) return DeviceWeight.bf16(DeviceTensor.of(name, address, DType.BF16, shape));
        int sr = DeviceWeight.scaleRows(rows, split), sc = DeviceWeight.blocks(cols);
        return DeviceWeight.fp8(DeviceTensor.of(name + " (fp8)", address, DType.F8_E4M3, shape),
                DeviceTensor.of(name + " scales", scales, DType.F32, mats == 0 ? new int[] {sr, sc} : new int[] {mats, sr, sc}), split);
    }

    /**
     * {@code out [T, H] = MoE(x [T, H])} for a step of fixed {@code shape}, T = {@code shape.tokens()}: the decode path when
     * T ≤ {@link #decodeMaxTokens()}, else the prefill path — chosen from the shape only, so a captured piece stays valid
     * for every batch of its bucket. Rows are independent: whatever a padded row holds (NaN included) routes to valid
     * experts and changes no other row; its own output row is not meaningful.
     */
    public void forward(Stream s, StepShape shape, Layer layer) {
        int tokens = shape.tokens();
        if (tokens <= decodeMaxTokens) decode(s, layer, tokens);
        else prefill(s, layer, tokens);
    }

    /** The most rows {@link #forward} runs on the decode (GEMV) path. */
    public int decodeMaxTokens() {
        return decodeMaxTokens;
    }

    /** Router GEMM and top-k over {@code layer}'s input: fills {@link #topkIds()} / {@link #topkWeights()}. */
    public void route(Stream s, Layer layer, int tokens) {
        checkTokens(tokens);
        gemm.matmul(s, layer.x().address(), layer.weights().router(), routerArgs.logits().address(), tokens, routerRows(shape),
                shape.hidden());
        router.launch(s, routerArgs, tokens);
    }

    public void decode(Stream s, Layer layer, int tokens) {
        checkRows(layer, tokens);
        route(s, layer, tokens);
        decodeExperts(s, layer, tokens);
    }

    /** The decode path after the router (the routing of the last {@link #route}): two launches. */
    public void decodeExperts(Stream s, Layer layer, int tokens) {
        checkTokens(tokens);
        if (layer.decodeGateUp() == null) throw new IllegalStateException("moe: built without decode kernels");
        decode.launchGateUp(s, layer.decodeGateUp(), tokens);
        decode.launchDown(s, layer.decodeDown(), tokens);
    }

    public void prefill(Stream s, Layer layer, int tokens) {
        checkPrefill(layer);
        checkRows(layer, tokens);
        for (Fp8DequantKernel.Args d : layer.dequant()) fp8Dequant.launch(s, d);
        Weights w = layer.weights();
        route(s, layer, tokens);
        grouping.launch(s, groupingArgs, tokens * shape.topK());
        expertGemms(s, layer, tokens);
        if (shape.hasShared()) {
            int is = shape.sharedInter();
            MoeBuffers b = buffers;
            gemm.matmul(s, layer.x().address(), w.sharedGateUp(), b.sharedGateUp.address(), tokens, 2 * is, shape.hidden());
            siluMul.launch(s, sharedSilu, tokens);
            gemm.matmul(s, b.sharedAct.address(), w.sharedDown(), b.sharedOut.address(), tokens, shape.hidden(), is);
        }
        combine.launch(s, layer.combine(), tokens);
    }

    /** The two grouped GEMMs of the prefill path on the grouping of the last {@link #prefill} of {@code tokens} rows. */
    public void expertGemms(Stream s, Layer layer, int tokens) {
        expertGateUp(s, layer, tokens);
        expertDown(s, layer, tokens);
    }

    /** The gate_up + SiLU grouped GEMM alone (benchmarks). */
    public void expertGateUp(Stream s, Layer layer, int tokens) {
        checkTokens(tokens);
        checkPrefill(layer);
        experts.launchGateUp(s, layer.gateUp(), tokens);
    }

    /** The down grouped GEMM alone (benchmarks). */
    public void expertDown(Stream s, Layer layer, int tokens) {
        checkTokens(tokens);
        checkPrefill(layer);
        experts.launchDown(s, layer.down(), tokens);
    }

    private static void checkPrefill(Layer layer) {
        if (layer.gateUp() == null) throw new IllegalStateException("moe: built for decode only (maxTokens <= decodeMaxTokens)");
    }

    private static void checkRows(Layer layer, int tokens) {
        TensorContract.rows("moe", "x", layer.x(), tokens);
        TensorContract.rows("moe", "out", layer.out(), tokens);
    }

    private void checkTokens(int tokens) {
        if (tokens < 1 || tokens > maxTokens) {
            throw new IllegalArgumentException("moe: tokens must be in [1, " + maxTokens + "], got " + tokens);
        }
    }

    /** Router output of the last forward: [tokens, topK] int32 expert ids. */
    public DeviceBuffer topkIds() {
        return buffers.topkIdsBuffer;
    }

    /** Router output of the last forward: [tokens, topK] bf16 weights. */
    public DeviceBuffer topkWeights() {
        return buffers.topkWeightsBuffer;
    }

    /** Router and shared-gate logits of the last forward: [tokens, routerRows] bf16. */
    public DeviceBuffer logits() {
        return buffers.logitsBuffer;
    }

    @Override
    public void close() {
        buffers.close();
    }
}
