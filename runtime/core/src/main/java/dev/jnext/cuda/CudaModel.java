package dev.jnext.cuda;

import dev.jnext.backend.KvBudget;
import dev.jnext.backend.PrefillMode;

import dev.jnext.JnextException;
import dev.jnext.cuda.ForwardPlan.Op;
import dev.jnext.cuda.ForwardPlan.Role;
import dev.jnext.backend.SamplingParams;
import dev.jnext.cuda.ModelImage.AttentionWeights;
import dev.jnext.cuda.ModelImage.DenseWeights;
import dev.jnext.cuda.ModelImage.GdnWeights;
import dev.jnext.cuda.ModelImage.LayerWeights;
import dev.jnext.cuda.ModelImage.MoeWeights;
import dev.jnext.gpu.CudaGraph;
import dev.jnext.gpu.Gemm;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.Stream;
import dev.jnext.cuda.kernels.AttentionGeometry;
import dev.jnext.cuda.kernels.CausalConv1dKernel;
import dev.jnext.cuda.kernels.ChunkedDeltaRuleKernel;
import dev.jnext.cuda.kernels.EmbeddingKernel;
import dev.jnext.cuda.kernels.GatedAttentionCore;
import dev.jnext.cuda.kernels.GatedDeltaRuleDecodeKernel;
import dev.jnext.cuda.kernels.GatedRmsNormKernel;
import dev.jnext.cuda.kernels.GdnSplitGatingKernel;
import dev.jnext.cuda.kernels.GpuSparseMoe;
import dev.jnext.cuda.kernels.KernelLibrary;
import dev.jnext.cuda.kernels.RmsNormKernel;
import dev.jnext.cuda.kernels.SamplingKernel;
import dev.jnext.cuda.kernels.SiluMulKernel;
import dev.jnext.cuda.kernels.StepShape;
import dev.jnext.cuda.kernels.TokenHistory;
import dev.jnext.model.LayerType;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.weights.ModelWeights;
import dev.jnext.numeric.Bf16;
import dev.jnext.cpu.ops.GatedDeltaRule;
import dev.jnext.model.GdnProjections;
import dev.jnext.cuda.state.AttentionBatch;
import dev.jnext.cuda.state.GdnStatePools;
import dev.jnext.cuda.state.KvPages;
import dev.jnext.cuda.state.PageTable;
import dev.jnext.cuda.state.StepMetadata;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.event.Level;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongConsumer;

/**
 * A Qwen3-Next checkpoint on one GPU: device weights, activations, the paged KV cache, the GDN state pools, the step
 * metadata, every kernel launcher, the forward plan built from the model's layers and the executors over it
 * (eager; one decode graph per batch bucket). Sequences live in slots 0..{@code maxSequences}−1; a {@link #step} runs the
 * new tokens of several of them in one forward and samples or returns logits. Not thread-safe: one thread drives it
 * (it binds the GPU context to the calling thread on every step). Closing frees every device resource it owns.
 */
public final class CudaModel implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(CudaModel.class);

    /** What a step returns for an input besides advancing its sequence. */
    public enum Logits {
        /** No logits (sampling only). */
        NONE,
        /** The last token's [vocab]. */
        LAST,
        /** Every token's [n·vocab] (scoring). */
        ALL
    }

    /**
     * New tokens of one sequence slot. {@code sample}: pick the next token from the last token's logits with the slot's
     * sampling parameters; {@code logits}: copy logits to the host (the last token's, or every token's).
     */
    public record Input(int slot, int[] tokens, boolean sample, Logits logits) {
        /** Checks that there is a token. */
        public Input {
            if (tokens.length == 0) throw new JnextException("sequence slot " + slot + ": a step input needs at least one token");
        }
    }

    /** Per input: the sampled token (−1 if not sampled) and the logits asked for ({@code null}, [vocab] or [n·vocab]). */
    public record Output(int token, float[] logits) {}

    /** Host-side state of an open sequence slot. */
    private static final class Sequence {
        int position;
        PageTable pages;
        SamplingKernel.RowParams params = SamplingKernel.RowParams.greedy();
        int vocabLimit;
        long seed;
        long draws;
    }

    private final ModelConfig config;
    private final CudaOptions options;
    private final String deviceName;
    private final Gpu gpu;
    private final List<AutoCloseable> owned = new ArrayList<>();
    private final KernelLibrary lib;
    private final Gemm gemm;
    private final Stream stream;
    private final ModelImage image;
    private final DeviceWeights weights;
    private final Activations acts;
    private final StepMetadata meta;
    private final KvPages kv;
    private final GdnStatePools gdn;
    private final EmbeddingKernel embedding;
    private final RmsNormKernel rmsnorm;
    private final GdnSplitGatingKernel split;
    private final CausalConv1dKernel conv;
    private final ChunkedDeltaRuleKernel chunked;
    private final GatedDeltaRuleDecodeKernel decodeRule;
    private final GatedRmsNormKernel gatedNorm;
    private final GatedAttentionCore attention;
    private final GpuSparseMoe moe;
    private final SiluMulKernel siluMul;
    private final SamplingKernel sampling;
    private final TokenHistory history;
    private final ForwardPlan plan;
    private final Buckets decodeBuckets;
    private final Map<Integer, CudaGraph> decodeGraphs = new HashMap<>();
    private final PiecewiseGraphs piecewise;
    private final Sequence[] slots;
    private final int maxTokens, maxEntries, maxPagesPerSeq, maxContext;
    private final MemoryPlan memoryPlan;
    private final long graphCaptureNanos;
    private boolean closed;
    /** Prefill steps that ran eagerly because no graph bucket holds them (logged). */
    private int eagerFallbacks;
    /** Tests: plant NaN in the padded rows of the residual stream after the first piece of a piecewise step. */
    boolean poisonPadding;

    private CudaModel(Path dir, CudaOptions options, LongConsumer progress) {
        this.options = options;
        if (!dev.jnext.gpu.Cuda.driverPresent()) {
            throw new dev.jnext.gpu.NoCudaDriverException("no CUDA driver found (libcuda.so.1 is not loadable): the CUDA backend "
                    + "needs an NVIDIA GPU and its driver; the CPU backend needs neither");
        }
        this.config = ModelConfig.load(dir);
        CudaGeometry.check(config, dir.toString());
        this.maxContext = options.maxContext() > 0 ? options.maxContext()
                : Math.min(config.maxPositionEmbeddings(), CudaOptions.DEFAULT_CONTEXT_CAP);
        this.decodeBuckets = Buckets.decode(options.maxSequences());
        int decodeMax = options.decodeGraphs() ? decodeBuckets.largest() : options.maxSequences();
        this.maxEntries = Math.max(options.maxSequences() + 1, decodeMax);
        this.maxTokens = Math.max(options.maxStepTokens(), maxEntries);
        this.maxPagesPerSeq = (maxContext + KvPages.PAGE_TOKENS - 1) / KvPages.PAGE_TOKENS;
        int attnLayers = config.countLayers(LayerType.FULL_ATTENTION);
        int gdnLayers = config.countLayers(LayerType.LINEAR_ATTENTION);

        ModelWeights model = ModelWeights.load(dir);
        try {
            this.image = ModelImage.of(model);
            this.gpu = Gpu.open(options.gpu());
            owned.add(gpu);
            this.deviceName = "cuda:" + options.gpu() + " " + gpu.device().name();
            this.acts = new Activations(config, maxTokens, Math.max(options.maxLogitRows(), maxEntries), image.vocabStride());
            GdnStatePools.Geometry gdnGeometry = new GdnStatePools.Geometry(gdnLayers, options.maxSequences(), config.convDim(),
                    config.linearConvKernelDim(), config.linearNumValueHeads(), config.linearKeyHeadDim(), config.linearValueHeadDim());
            ChunkedDeltaRuleKernel.Config ruleConfig = gdnLayers == 0 ? null : new ChunkedDeltaRuleKernel.Config(
                    config.linearNumKeyHeads(), config.linearNumValueHeads(), config.linearKeyHeadDim(), config.linearValueHeadDim(),
                    maxTokens, maxEntries);

            // the memory plan, before the first allocation
            MemoryPlan mp = new MemoryPlan()
                    // an FP8 checkpoint is dequantized to bf16 while it streams (WeightImage): no FP8 kernels yet
                    .add(config.quantization() != null ? "weights (bf16, dequantized from FP8)" : "weights", image.image().bytes())
                    .add("activations", acts.bytes())
                    .add("step metadata", StepMetadata.bytesFor(maxTokens, maxEntries, maxPagesPerSeq, acts.maxLogitRows()))
                    .add("GDN state", gdnGeometry.totalBytes())
                    .add("cuBLASLt workspace", Gemm.DEFAULT_WORKSPACE_BYTES)
                    .add("sampling history", 2L * options.maxSequences() * ((config.vocabSize() + 31) / 32) * 4);
            if (ruleConfig != null) mp.add("delta-rule scratch", ruleConfig.scratchBytes());
            if (hasMoe(config)) mp.add("MoE scratch", GpuSparseMoe.scratch(CudaGeometry.moeShape(config), maxTokens, options.moeDecodeMaxTokens()).total());
            Gpu.MemoryInfo mem = gpu.memoryInfo();
            int pages = 0;
            if (attnLayers > 0) {
                long perPage = new KvPages.Geometry(attnLayers, config.numKeyValueHeads(), config.headDim(), 1).totalBytes();
                long wanted = (long) options.maxSequences() * maxPagesPerSeq;
                long fit = switch (options.kvBudget()) {
                    case KvBudget.Tokens t -> (t.tokens() + KvPages.PAGE_TOKENS - 1) / KvPages.PAGE_TOKENS;
                    case KvBudget.MemoryFraction f -> {
                        long left = mem.free() - mp.total();
                        yield left <= 0 ? 0 : (long) (left * f.fraction()) / perPage;
                    }
                };
                pages = (int) Math.min(Integer.MAX_VALUE, Math.min(wanted, fit));
                if (pages < 1) pages = 1;
                mp.add("KV cache (" + pages + " pages of " + KvPages.PAGE_TOKENS + " tokens)", perPage * pages);
            }
            this.memoryPlan = mp;
            mp.check(mem.free(), deviceName);
            LOG.info("memory plan on {} ({} free): {}", deviceName, MemoryPlan.gib(mem.free()), mp.describe());

            this.lib = own(new KernelLibrary(gpu));
            this.stream = own(gpu.createStream());
            this.gemm = own(new Gemm(gpu));
            this.weights = own(DeviceWeights.upload(gpu, stream, image.image(), progress));
            LOG.info("uploaded {} of weights in {} ms ({} GB/s)", MemoryPlan.gib(weights.bytes()), weights.uploadNanos() / 1_000_000,
                    String.format("%.2f", weights.bytes() / (double) weights.uploadNanos()));
            acts.allocate(gpu);
            owned.add(acts);
            this.meta = own(new StepMetadata(gpu, maxTokens, maxEntries, maxPagesPerSeq, acts.maxLogitRows()));
            this.kv = attnLayers == 0 ? null
                    : own(KvPages.allocate(gpu, new KvPages.Geometry(attnLayers, config.numKeyValueHeads(), config.headDim(), pages)));
            this.gdn = own(new GdnStatePools(gpu, gdnGeometry));
            this.embedding = new EmbeddingKernel(lib);
            this.rmsnorm = new RmsNormKernel(lib);
            this.split = gdnLayers == 0 ? null : new GdnSplitGatingKernel(lib);
            this.conv = gdnLayers == 0 ? null : new CausalConv1dKernel(lib);
            this.chunked = ruleConfig == null ? null : own(new ChunkedDeltaRuleKernel(lib, ruleConfig));
            this.decodeRule = gdnLayers == 0 ? null : new GatedDeltaRuleDecodeKernel(lib);
            this.gatedNorm = gdnLayers == 0 ? null : new GatedRmsNormKernel(lib);
            this.attention = attnLayers == 0 ? null : own(new GatedAttentionCore(lib, new AttentionGeometry(config.numAttentionHeads(),
                    config.numKeyValueHeads(), config.headDim(), config.rotaryDim()), config.ropeTheta(), config.rmsNormEps(), maxEntries));
            this.moe = hasMoe(config) ? own(new GpuSparseMoe(lib, gemm, CudaGeometry.moeShape(config), maxTokens,
                    options.moeDecodeMaxTokens())) : null;
            this.siluMul = new SiluMulKernel(lib);
            this.sampling = own(new SamplingKernel(lib, acts.maxLogitRows()));
            this.history = own(new TokenHistory(lib, options.maxSequences(), config.vocabSize()));
            this.slots = new Sequence[options.maxSequences()];
            this.plan = buildPlan(model);
        } catch (RuntimeException | Error e) {
            closeOwned(e);
            model.close();
            throw e;
        }
        model.close();  // the device holds every weight now; drop the mappings
        try {
            this.graphCaptureNanos = options.decodeGraphs() ? captureDecodeGraphs() : 0;
            this.piecewise = options.prefill() == PrefillMode.EAGER ? null : own(new PiecewiseGraphs(plan,
                    options.prefill() == PrefillMode.PIECEWISE ? ForwardPlan.CORES : ForwardPlan.GDN_LAYER_CORES,
                    Buckets.prefill(options.maxPrefillBucket() > 0 ? Math.min(options.maxPrefillBucket(), maxTokens)
                            : Math.min(8192, options.maxStepTokens())), maxEntries));
            if (piecewise != null && !options.lazyCapture()) capturePrefillBuckets();
        } catch (RuntimeException | Error e) {
            closeOwned(e);
            throw e;
        }
    }

    /**
     * Loads {@code dir} onto GPU 0. A geometry the kernels cannot run, a GPU too small for the memory plan or a bad
     * checkpoint fails with a {@link JnextException} naming the cause, after freeing whatever was allocated.
     */
    public static CudaModel load(Path dir, CudaOptions options, LongConsumer progress) {
        return new CudaModel(dir, options, progress);
    }

    private <T extends AutoCloseable> T own(T resource) {
        owned.add(resource);
        return resource;
    }

    private void closeOwned(Throwable cause) {
        for (int i = owned.size() - 1; i >= 0; i--) {
            try {
                owned.get(i).close();
            } catch (Exception e) {
                if (cause != null) cause.addSuppressed(e);
            }
        }
        owned.clear();
    }

    private static boolean hasMoe(ModelConfig c) {
        for (int i = 0; i < c.numHiddenLayers(); i++) if (c.isMoeLayer(i)) return true;
        return false;
    }


    // ------------------------------------------------------------------------------------------------ the plan

    private ForwardPlan buildPlan(ModelWeights model) {
        List<Op> ops = new ArrayList<>();
        int h = config.hiddenSize();
        float eps = config.rmsNormEps();
        long x = acts.at(acts.x), hn = acts.at(acts.h), delta = acts.at(acts.delta);
        int vocab = config.vocabSize();
        long embed = weights.at(image.embed());
        long firstNorm = weights.at(image.layers().getFirst().inputNorm());
        ops.add(new Op("embedding + input norm 0", Role.PIECE, -1, (s, shape) -> {
            embedding.launch(s, embed, meta.ids(), x, shape.tokens(), h, vocab);
            rmsnorm.launch(s, x, firstNorm, hn, shape.tokens(), h, eps);
        }));
        int gdnIndex = 0, attnIndex = 0;
        List<LayerWeights> lw = image.layers();
        for (int l = 0; l < lw.size(); l++) {
            LayerWeights w = lw.get(l);
            final int layer = l;
            switch (w.mixer()) {
                case GdnWeights g -> addGdn(ops, layer, gdnIndex++, g);
                case AttentionWeights a -> addAttention(ops, layer, attnIndex++, a);
            }
            long post = weights.at(w.postNorm());
            ops.add(new Op("layer " + layer + " post-attention norm", Role.PIECE, layer,
                    (s, shape) -> rmsnorm.launchAdd(s, delta, x, post, hn, shape.tokens(), h, eps)));
            switch (w.ffn()) {
                case MoeWeights m -> {
                    GpuSparseMoe.Weights mw = new GpuSparseMoe.Weights(weights.at(m.router()), weights.at(m.gateUp()),
                            weights.at(m.down()), m.sharedGateUp() == 0 ? 0 : weights.at(m.sharedGateUp()),
                            m.sharedDown() == 0 ? 0 : weights.at(m.sharedDown()));
                    ops.add(new Op("layer " + layer + " moe", Role.PIECE, layer, (s, shape) -> moe.forward(s, shape, mw, hn, delta)));
                }
                case DenseWeights d -> {
                    long gu = weights.at(d.gateUp()), dn = weights.at(d.down());
                    long guOut = acts.at(acts.denseGateUp), act = acts.at(acts.denseAct);
                    int inter = d.inter();
                    ops.add(new Op("layer " + layer + " mlp", Role.PIECE, layer, (s, shape) -> {
                        gemm.matmul(s, hn, gu, guOut, shape.tokens(), 2 * inter, h);
                        siluMul.launch(s, guOut, act, shape.tokens(), inter);
                        gemm.matmul(s, act, dn, delta, shape.tokens(), h, inter);
                    }));
                }
            }
            long next = l + 1 < lw.size() ? weights.at(lw.get(l + 1).inputNorm()) : weights.at(image.finalNorm());
            String what = l + 1 < lw.size() ? "input norm " + (l + 1) : "final norm";
            ops.add(new Op("layer " + layer + " residual + " + what, Role.PIECE, layer,
                    (s, shape) -> rmsnorm.launchAdd(s, delta, x, next, hn, shape.tokens(), h, eps)));
        }
        return new ForwardPlan(ops);
    }

    private void addGdn(List<Op> ops, int layer, int gi, GdnWeights w) {
        int h = config.hiddenSize();
        GdnProjections proj = new GdnProjections(config.linearNumKeyHeads(), config.linearNumValueHeads(),
                config.linearKeyHeadDim(), config.linearValueHeadDim());
        GatedDeltaRule rule = new GatedDeltaRule(proj.keyHeads(), proj.valueHeads(), proj.keyDim(), proj.valueDim());
        long hn = acts.at(acts.h), delta = acts.at(acts.delta);
        long qkvz = acts.at(acts.qkvz), ba = acts.at(acts.ba), mixed = acts.at(acts.mixed), z = acts.at(acts.z);
        long beta = acts.at(acts.beta), g = acts.at(acts.g), convOut = acts.at(acts.convOut), core = acts.at(acts.core);
        long normed = acts.at(acts.normed);
        long wQkvz = weights.at(w.qkvz()), wBa = weights.at(w.ba()), wConv = weights.at(w.conv());
        long aLog = weights.at(w.aLog()), dtBias = weights.at(w.dtBias()), wNorm = weights.at(w.norm()), wOut = weights.at(w.outProj());
        long convState = gdn.conv(gi), recState = gdn.recurrent(gi);
        ChunkedDeltaRuleKernel.Path gdnPrefillPath = options.fp32GdnPrefill() ? ChunkedDeltaRuleKernel.Path.RECURRENT
                : chunked.config().defaultPath();
        int channels = config.convDim(), k = config.linearConvKernelDim();
        int hv = proj.valueHeads(), dv = proj.valueDim();
        float eps = config.rmsNormEps();
        ops.add(new Op("layer " + layer + " gdn projections + split", Role.GDN_LAYER, layer, (s, shape) -> {
            gemm.matmul(s, hn, wQkvz, qkvz, shape.tokens(), proj.qkvzWidth(), h);
            gemm.matmul(s, hn, wBa, ba, shape.tokens(), proj.baWidth(), h);
            split.launch(s, proj, qkvz, ba, aLog, dtBias, mixed, z, beta, g, shape.tokens());
        }));
        ops.add(new Op("layer " + layer + " gdn core", Role.GDN_CORE, layer, (s, shape) -> {
            long slotsArr = meta.gdnSlots();
            if (shape.decode()) {
                conv.launchUpdate(s, shape, mixed, wConv, convState, slotsArr, convOut, channels, k);
                decodeRule.launch(s, shape, rule, convOut, new GatedDeltaRuleDecodeKernel.Gates.Precomputed(beta, false, g),
                        recState, slotsArr, core);
            } else {
                long cu = meta.attention().cuSeqlens();
                conv.launchPrefill(s, shape, mixed, wConv, convState, cu, slotsArr, convOut, channels, k);
                chunked.launch(s, shape, convOut, beta, g, cu, slotsArr, recState, core, gdnPrefillPath);
            }
        }));
        ops.add(new Op("layer " + layer + " gdn gated norm + out_proj", Role.GDN_LAYER, layer, (s, shape) -> {
            gatedNorm.launch(s, core, z, wNorm, normed, shape.tokens() * hv, dv, eps);
            gemm.matmul(s, normed, wOut, delta, shape.tokens(), h, hv * dv);
        }));
    }

    private void addAttention(List<Op> ops, int layer, int ai, AttentionWeights w) {
        int h = config.hiddenSize();
        int nh = config.numAttentionHeads(), nkv = config.numKeyValueHeads(), hd = config.headDim();
        long hn = acts.at(acts.h), delta = acts.at(acts.delta);
        long qg = acts.at(acts.qg), kvOut = acts.at(acts.kv), q = acts.at(acts.q), out = acts.at(acts.attnOut);
        long wq = weights.at(w.q()), wkv = weights.at(w.kv()), wo = weights.at(w.o());
        long qNorm = weights.at(w.qNorm()), kNorm = weights.at(w.kNorm());
        int kvWidth = 2 * nkv * hd;
        ops.add(new Op("layer " + layer + " q/k/v projections", Role.PIECE, layer, (s, shape) -> {
            gemm.matmul(s, hn, wq, qg, shape.tokens(), nh * 2 * hd, h);
            gemm.matmul(s, hn, wkv, kvOut, shape.tokens(), kvWidth, h);
        }));
        ops.add(new Op("layer " + layer + " attention core", Role.ATTENTION_CORE, layer, (s, shape) ->
                attention.forward(s, shape, qg, kvOut, kvOut + 2L * nkv * hd, kvWidth, qNorm, kNorm, meta.attention(), kv, ai, q, out)));
        ops.add(new Op("layer " + layer + " o_proj", Role.PIECE, layer,
                (s, shape) -> gemm.matmul(s, out, wo, delta, shape.tokens(), h, nh * hd)));
    }

    /** Gathers {@code rows} logits rows from the final-normed activations and runs the lm_head over them. */
    private void enqueueHead(Stream s, StepShape shape, int rows) {
        long gathered = acts.at(acts.gathered);
        embedding.launch(s, acts.at(acts.h), meta.logitRows(), gathered, rows, config.hiddenSize(), shape.tokens());
        gemm.matmul(s, gathered, weights.at(image.lmHead()), acts.at(acts.logits), rows, image.vocabStride(), config.hiddenSize());
    }

    // ------------------------------------------------------------------------------------------------ decode graphs

    private long captureDecodeGraphs() {
        long t0 = System.nanoTime();
        long before = gpu.memoryInfo().free();
        int[] sizes = decodeBuckets.sizes();
        for (int i = sizes.length - 1; i >= 0; i--) {
            int b = sizes[i];
            StepShape shape = StepShape.decode(b);
            stagePadding(b);                  // every entry padding: the warm-up touches no state
            enqueueDecodeBody(stream, shape);  // warm-up: cuBLASLt plans and module loads happen outside the capture
            stream.synchronize();
            decodeGraphs.put(b, own(CudaGraph.capture(stream, st -> enqueueDecodeBody(st, shape))));
        }
        stream.synchronize();
        long nanos = System.nanoTime() - t0;
        LOG.info("captured {} decode graphs (batch {}..{}) in {} ms, {} of graph memory", sizes.length, sizes[0],
                sizes[sizes.length - 1], nanos / 1_000_000, MemoryPlan.gib(Math.max(0, before - gpu.memoryInfo().free())));
        return nanos;
    }

    /** Captures every prefill bucket's pieces, largest first, each after one eager warm-up at its shape. */
    private void capturePrefillBuckets() {
        long before = gpu.memoryInfo().free();
        int[] sizes = piecewise.buckets().sizes();
        for (int i = sizes.length - 1; i >= 0; i--) piecewise.capture(sizes[i], stream, this::warmUpPrefill);
        LOG.info("captured {} prefill graphs ({} buckets {}..{} x {} pieces, {}) in {} ms, {} of graph memory", piecewise.graphCount(),
                sizes.length, sizes[0], sizes[sizes.length - 1], piecewise.piecesPerBucket(), options.prefill(),
                piecewise.captureNanos() / 1_000_000, MemoryPlan.gib(Math.max(0, before - gpu.memoryInfo().free())));
    }

    /** NaN (bf16 0xffff) into rows [from, to) of the residual stream and the normed input. */
    private void poisonRows(int from, int to) {
        long rowBytes = 2L * config.hiddenSize();
        acts.buffer().fill32(acts.x + from * rowBytes, (to - from) * rowBytes / 4, 0xffffffff, stream);
        acts.buffer().fill32(acts.h + from * rowBytes, (to - from) * rowBytes / 4, 0xffffffff, stream);
    }

    /** One eager step at a prefill bucket's shape whose only entry is padding: no state is touched. */
    private void warmUpPrefill(int bucket) {
        meta.begin(List.of(AttentionBatch.Sequence.padding(bucket)));
        meta.upload(stream);
        plan.enqueue(stream, piecewise.shape(bucket));
    }

    private void enqueueDecodeBody(Stream s, StepShape shape) {
        plan.enqueue(s, shape);
        enqueueHead(s, shape, shape.seqs());
    }

    private void stagePadding(int entries) {
        List<AttentionBatch.Sequence> pad = new ArrayList<>();
        for (int i = 0; i < entries; i++) pad.add(AttentionBatch.Sequence.padding(1));
        meta.begin(pad);
        meta.upload(stream);
    }

    // ------------------------------------------------------------------------------------------------ sequences

    /** The checkpoint's config.json. */
    public ModelConfig config() {
        return config;
    }

    /** The options it was loaded with. */
    public CudaOptions options() {
        return options;
    }

    /** {@code "cuda:0 "} and the GPU's name. */
    public String deviceName() {
        return deviceName;
    }

    MemoryPlan memoryPlan() {
        return memoryPlan;
    }

    ForwardPlan plan() {
        return plan;
    }

    /** Most tokens one sequence may hold. */
    public int maxContext() {
        return maxContext;
    }

    /** Most new tokens one step may carry. */
    public int maxStepTokens() {
        return options.maxStepTokens();
    }

    /** Most logits rows one step may return. */
    public int maxLogitRows() {
        return acts.maxLogitRows();
    }

    /** Time spent capturing CUDA graphs so far (decode graphs at load, prefill buckets at load or on first use). */
    public long graphCaptureNanos() {
        return graphCaptureNanos + (piecewise == null ? 0 : piecewise.captureNanos());
    }

    /** Prefill graphs captured so far (0 in eager mode). */
    public int prefillGraphCount() {
        return piecewise == null ? 0 : piecewise.graphCount();
    }

    /** The prefill token buckets of the piecewise modes (null in eager mode). */
    Buckets prefillBuckets() {
        return piecewise == null ? null : piecewise.buckets();
    }

    /** Decode graphs captured (one per batch bucket; 0 when decode graphs are off). */
    public int decodeGraphCount() {
        return decodeGraphs.size();
    }

    /** Sequence slots not open now. */
    public int freeSlots() {
        int n = 0;
        for (Sequence s : slots) if (s == null) n++;
        return n;
    }

    /**
     * Opens a sequence in a free slot (its GDN state and sampling history zeroed) that samples with {@code sampling}
     * (its seed included); returns the slot.
     *
     * @param vocabLimit only ids below it are sampled (the tokenizer's vocabulary when the embedding is padded)
     * @throws JnextException when every slot is in use
     */
    public int open(SamplingParams sampling, int vocabLimit) {
        return open(CudaBackend.rowParams(sampling), vocabLimit, sampling.seed());
    }

    /** Opens a sequence in a free slot (its GDN state and sampling history zeroed); returns the slot. */
    int open(SamplingKernel.RowParams params, int vocabLimit, long seed) {
        check();
        for (int i = 0; i < slots.length; i++) {
            if (slots[i] == null) {
                gpu.bindThread();
                Sequence s = new Sequence();
                s.pages = kv == null ? null : kv.newSequence();
                s.params = params;
                s.vocabLimit = Math.min(vocabLimit, config.vocabSize());
                s.seed = seed;
                gdn.reset(i, stream);
                history.reset(stream, i);
                slots[i] = s;
                return i;
            }
        }
        throw new JnextException("all " + slots.length + " sequence slots are in use");
    }

    /** Frees the slot and its KV pages. */
    public void close(int slot) {
        Sequence s = sequence(slot);
        if (s.pages != null) s.pages.release();
        slots[slot] = null;
    }

    /** Reserves KV pages so the slot can hold {@code totalTokens}; false (nothing reserved) when the pool cannot. */
    public boolean reserve(int slot, int totalTokens) {
        Sequence s = sequence(slot);
        if (totalTokens > maxContext) return false;
        if (s.pages == null) return true;
        int need = kv.allocator().pagesFor(totalTokens) - s.pages.pageCount();
        if (need > kv.allocator().freePages()) return false;
        s.pages.reserve(totalTokens);
        return true;
    }

    /** Tokens the slot's sequence holds. */
    public int position(int slot) {
        return sequence(slot).position;
    }

    private Sequence sequence(int slot) {
        check();
        if (slot < 0 || slot >= slots.length || slots[slot] == null) throw new JnextException("sequence slot " + slot + " is not open");
        return slots[slot];
    }

    // ------------------------------------------------------------------------------------------------ one step

    /**
     * Which executor runs a step: a decode graph of the batch bucket; the same launches eagerly at the bucket's shape
     * (bitwise the graph's result); eagerly at the exact batch; a prefill/extend step eagerly at its exact token count.
     */
    public enum StepPath {
        /** Replay of the decode graph of the batch's bucket. */
        DECODE_GRAPH,
        /** The decode body launched eagerly at the bucket's padded shape. */
        EAGER_DECODE_BUCKET,
        /** The decode body launched eagerly at the exact batch size. */
        EAGER_DECODE,
        /** Piecewise prefill graphs of the token bucket, cores eager. */
        PIECEWISE_PREFILL,
        /** Prefill launched eagerly at the bucket's padded shape. */
        EAGER_PREFILL_BUCKET,
        /** Prefill launched eagerly at the exact token count. */
        EAGER_PREFILL;

        boolean decode() {
            return this == DECODE_GRAPH || this == EAGER_DECODE_BUCKET || this == EAGER_DECODE;
        }
    }

    /** Runs one forward step over {@code inputs} (each slot at most once). */
    public List<Output> step(List<Input> inputs) {
        return step(inputs, null);
    }

    /** As {@link #step(List)}, forcing an executor path ({@code null}: the options decide); tests compare paths. */
    public List<Output> step(List<Input> inputs, StepPath force) {
        check();
        if (inputs.isEmpty()) throw new JnextException("a step needs at least one input");
        if (inputs.size() > options.maxSequences()) {
            throw new JnextException("a step of " + inputs.size() + " sequences exceeds the " + options.maxSequences() + " slots");
        }
        gpu.bindThread();
        int total = 0, logitRows = 0;
        boolean decode = true, anySample = false, anyStochastic = false, anyLogits = false;
        int sampleVocab = config.vocabSize();
        boolean[] seen = new boolean[slots.length];
        for (Input in : inputs) {
            Sequence s = sequence(in.slot());
            if (seen[in.slot()]) throw new JnextException("sequence slot " + in.slot() + " appears twice in one step");
            seen[in.slot()] = true;
            EmbeddingKernel.validateIds(in.tokens(), in.tokens().length, config.vocabSize());
            if ((long) s.position + in.tokens().length > maxContext) {
                throw new JnextException("sequence slot " + in.slot() + ": " + s.position + " + " + in.tokens().length
                        + " tokens exceed the context of " + maxContext + " tokens");
            }
            total += in.tokens().length;
            decode &= in.tokens().length == 1;
            anySample |= in.sample();
            if (in.sample()) sampleVocab = Math.min(sampleVocab, s.vocabLimit);
            anyStochastic |= in.sample() && s.params.temperature() > 0;
            anyLogits |= in.logits() != Logits.NONE;
            logitRows += in.logits() == Logits.ALL ? in.tokens().length : (in.sample() || in.logits() == Logits.LAST ? 1 : 0);
        }
        if (total > options.maxStepTokens()) {
            throw new JnextException("a step of " + total + " tokens exceeds the step budget of " + options.maxStepTokens() + " tokens");
        }
        int prefillBucket = -1;
        if (!decode || (force != null && !force.decode())) {
            prefillBucket = piecewise != null ? piecewise.buckets().bucketFor(total) : Buckets.prefill(8192).bucketFor(total);
        }
        StepPath path = force != null ? force
                : decode ? (options.decodeGraphs() ? StepPath.DECODE_GRAPH : StepPath.EAGER_DECODE)
                : piecewise != null && prefillBucket > 0 ? StepPath.PIECEWISE_PREFILL : StepPath.EAGER_PREFILL;
        if (force == null && !decode && piecewise != null && prefillBucket < 0) {
            // once at info: a workload whose prompts outgrow the buckets would otherwise log every step
            LOG.atLevel(eagerFallbacks++ == 0 ? Level.INFO : Level.DEBUG).log(
                    "a prefill step of {} tokens is above the largest graph bucket ({}): it runs eagerly{}", total,
                    piecewise.buckets().largest(), eagerFallbacks == 1 ? " (further such steps are logged at debug)" : "");
        }
        if (path.decode() && !decode) throw new JnextException("a decode path needs one token per sequence");
        if ((path == StepPath.PIECEWISE_PREFILL || path == StepPath.EAGER_PREFILL_BUCKET) && prefillBucket < 0) {
            throw new JnextException("a step of " + total + " tokens is above the largest prefill bucket");
        }
        if (path == StepPath.PIECEWISE_PREFILL && piecewise == null) {
            throw new JnextException("prefill graphs are off (CudaOptions.prefill is EAGER)");
        }
        if (prefillBucket > maxTokens && path != StepPath.EAGER_PREFILL) {
            throw new JnextException("prefill bucket " + prefillBucket + " exceeds the " + maxTokens + " activation rows");
        }
        if (path == StepPath.PIECEWISE_PREFILL && !piecewise.captured(prefillBucket)) {
            long t0 = System.nanoTime(), before = gpu.memoryInfo().free();
            piecewise.capture(prefillBucket, stream, this::warmUpPrefill);  // before this step stages its metadata
            LOG.info("captured prefill bucket {} on first use ({} pieces, {}) in {} ms, {} of graph memory", prefillBucket,
                    piecewise.piecesPerBucket(), options.prefill(), (System.nanoTime() - t0) / 1_000_000,
                    MemoryPlan.gib(Math.max(0, before - gpu.memoryInfo().free())));
        }
        // KV pages for the new tokens (all or nothing per sequence)
        for (Input in : inputs) {
            if (!reserve(in.slot(), sequence(in.slot()).position + in.tokens().length)) {
                throw new JnextException("KV cache full: sequence slot " + in.slot() + " cannot grow to "
                        + (sequence(in.slot()).position + in.tokens().length) + " tokens");
            }
        }

        // the step's shape and entries
        int n = inputs.size();
        boolean bucketed = path == StepPath.DECODE_GRAPH || path == StepPath.EAGER_DECODE_BUCKET;
        int bucket = bucketed ? decodeBuckets.bucketFor(n) : -1;
        if (bucketed && bucket < 0) throw new JnextException("a decode batch of " + n + " exceeds the largest bucket " + decodeBuckets.largest());
        if (path == StepPath.DECODE_GRAPH && !decodeGraphs.containsKey(bucket)) {
            throw new JnextException("decode graphs are off (CudaOptions.decodeGraphs)");
        }
        StepShape shape;
        if (bucketed) shape = StepShape.decode(bucket);
        else if (path == StepPath.EAGER_DECODE) shape = StepShape.decode(n);
        else if (path == StepPath.EAGER_PREFILL) shape = StepShape.prefill(total, n);
        else shape = StepShape.prefill(prefillBucket, maxEntries);
        boolean decodePath = path.decode();
        int rows = decodePath ? shape.seqs() : logitRows;
        if (rows > acts.maxLogitRows()) {
            throw new JnextException("a step asking for " + rows + " logits rows exceeds the " + acts.maxLogitRows() + " it was sized for");
        }
        List<AttentionBatch.Sequence> entries = new ArrayList<>(shape.seqs());
        for (Input in : inputs) {
            Sequence s = slots[in.slot()];
            // without attention layers nothing reads past/pages: the entry only delimits its rows for the GDN kernels
            entries.add(s.pages == null ? AttentionBatch.Sequence.padding(in.tokens().length)
                    : new AttentionBatch.Sequence(s.pages, s.position, in.tokens().length));
        }
        if (decodePath) {
            for (int i = n; i < shape.seqs(); i++) entries.add(AttentionBatch.Sequence.padding(1));
        } else if (shape.tokens() > total) {
            entries.add(AttentionBatch.Sequence.padding(shape.tokens() - total));  // rows [total, bucket): one padding entry
        }
        meta.begin(entries);
        int row = 0, r = 0;
        int[] firstLogitRow = new int[n];
        for (int i = 0; i < n; i++) {
            Input in = inputs.get(i);
            Sequence s = slots[in.slot()];
            meta.setGdnSlot(i, in.slot());
            for (int t = 0; t < in.tokens().length; t++) meta.setToken(row + t, in.tokens()[t], in.slot());
            int last = row + in.tokens().length - 1;
            firstLogitRow[i] = r;
            if (decodePath) {
                setLogitRow(r++, i, in.sample() ? in.slot() : -1, s);
            } else if (in.logits() == Logits.ALL) {
                for (int t = row; t <= last; t++) setLogitRow(r++, t, t == last && in.sample() ? in.slot() : -1, s);
            } else if (in.sample() || in.logits() == Logits.LAST) {
                setLogitRow(r++, last, in.sample() ? in.slot() : -1, s);
            }
            row += in.tokens().length;
        }
        meta.upload(stream);

        // the forward
        switch (path) {
            case DECODE_GRAPH -> decodeGraphs.get(bucket).replay(stream);
            case EAGER_DECODE, EAGER_DECODE_BUCKET -> enqueueDecodeBody(stream, shape);
            case EAGER_PREFILL, EAGER_PREFILL_BUCKET -> {
                plan.enqueue(stream, shape);
                if (rows > 0) enqueueHead(stream, shape, rows);
            }
            case PIECEWISE_PREFILL -> {
                int realRows = total, bucketRows = prefillBucket;
                piecewise.run(bucketRows, stream, poisonPadding && bucketRows > realRows ? () -> poisonRows(realRows, bucketRows) : null);
                if (rows > 0) enqueueHead(stream, shape, rows);
            }
        }
        // sampling and read-back
        int[] sampled = null;
        if (anySample) {
            long ids = meta.ids();
            history.observe(stream, ids, meta.tokenSlots(), shape.tokens());
            long logits = acts.at(acts.logits), out = acts.at(acts.sampled);
            if (anyStochastic) {
                sampling.sample(stream, logits, image.vocabStride(), sampleVocab, rows, meta.params(), meta.rng(),
                        meta.sampleSlots(), history, out);
            } else {
                sampling.greedy(stream, logits, image.vocabStride(), sampleVocab, rows, meta.params(), meta.sampleSlots(),
                        history, out);
            }
            sampled = new int[rows];
            try (Arena a = Arena.ofConfined()) {
                MemorySegment host = a.allocate(4L * rows);
                acts.buffer().copyToHost(host, acts.sampled);
                MemorySegment.copy(host, ValueLayout.JAVA_INT, 0, sampled, 0, rows);
            }
        }
        float[] hostLogits = null;
        if (anyLogits) hostLogits = copyLogits(rows);
        stream.synchronize();

        List<Output> outputs = new ArrayList<>(n);
        int vocab = config.vocabSize();
        for (int i = 0; i < n; i++) {
            Input in = inputs.get(i);
            Sequence s = slots[in.slot()];
            s.position += in.tokens().length;
            int token = -1;
            int lastRow = in.logits() == Logits.ALL ? firstLogitRow[i] + in.tokens().length - 1 : firstLogitRow[i];
            if (in.sample()) {
                token = sampled[lastRow];
                s.draws++;
                if (token < 0 || token >= s.vocabLimit) {
                    throw new JnextException("sampling failed for sequence slot " + in.slot() + " (the logits hold NaN: id " + token + ")");
                }
            }
            float[] l = null;
            if (in.logits() == Logits.LAST) {
                l = new float[vocab];
                System.arraycopy(hostLogits, lastRow * vocab, l, 0, vocab);
            } else if (in.logits() == Logits.ALL) {
                l = new float[in.tokens().length * vocab];
                System.arraycopy(hostLogits, firstLogitRow[i] * vocab, l, 0, l.length);
            }
            outputs.add(new Output(token, l));
        }
        return outputs;
    }

    private void setLogitRow(int r, int row, int sampleSlot, Sequence s) {
        meta.setLogitRow(r, row, sampleSlot, s.seed, s.draws);
        SamplingKernel.writeParams(meta.paramsStaging(), r, s.params);
    }

    /** The first {@code rows} logits rows as floats [rows · vocab] (bf16 on the device). */
    private float[] copyLogits(int rows) {
        int vocab = config.vocabSize(), stride = image.vocabStride();
        float[] out = new float[Math.multiplyExact(rows, vocab)];
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocate(2L * rows * stride);
            acts.buffer().copyToHost(host, acts.logits);
            for (int r = 0; r < rows; r++) {
                for (int v = 0; v < vocab; v++) {
                    out[r * vocab + v] = Bf16.toFloat(host.getAtIndex(ValueLayout.JAVA_SHORT, (long) r * stride + v));
                }
            }
        }
        return out;
    }

    private void check() {
        if (closed) throw new JnextException("the CUDA model is closed");
    }

    /**
     * GPU time of one replay of the decode graph of {@code batch}'s bucket, in ms (CUDA events around {@code reps}
     * back-to-back replays on the last staged metadata): what a decode step costs the GPU, without the host's share.
     */
    public double decodeGraphMillis(int batch, int reps) {
        check();
        CudaGraph g = decodeGraphs.get(decodeBuckets.bucketFor(batch));
        if (g == null) throw new JnextException("no decode graph for batch " + batch);
        gpu.bindThread();
        try (dev.jnext.gpu.Event a = gpu.createEvent(true); dev.jnext.gpu.Event b = gpu.createEvent(true)) {
            g.replay(stream);
            a.record(stream);
            for (int i = 0; i < reps; i++) g.replay(stream);
            b.record(stream);
            b.synchronize();
            return b.elapsedMillisSince(a) / reps;
        }
    }

    /** Device memory held by this process's GPU context now (for leak checks). */
    public long deviceBytesInUse() {
        return gpu.liveBufferBytes();
    }

    /** Frees every device resource (graphs, buffers, streams, modules, the context's allocations). */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        gpu.bindThread();
        try {
            stream.synchronize();
        } finally {
            closeOwned(null);
        }
    }
}
