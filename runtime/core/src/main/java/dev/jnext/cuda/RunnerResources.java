package dev.jnext.cuda;

import dev.jnext.backend.KvBudget;
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
import dev.jnext.cuda.kernels.TokenHistory;
import dev.jnext.cuda.kernels.TokenMaskKernel;
import dev.jnext.cuda.state.GdnStatePools;
import dev.jnext.cuda.state.KvPages;
import dev.jnext.cuda.state.StepMetadata;
import dev.jnext.gpu.Cuda;
import dev.jnext.gpu.Gemm;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.NoCudaDriverException;
import dev.jnext.gpu.Stream;
import dev.jnext.model.LayerType;
import dev.jnext.backend.Quantization;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.weights.ModelWeights;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongConsumer;

/**
 * Every device resource of a CUDA runner: the memory plan made before the first allocation, the context, stream,
 * cuBLASLt, the weights, activations, step metadata, KV pages, GDN state pools and every kernel launcher. Whatever it
 * allocates (and every graph the executors capture, through {@link #own}) is closed in the reverse order of
 * acquisition; a failed load frees what it had allocated before it throws. Fields are read by the runner's parts (plan
 * builder, executors, stager, read-back) and never reassigned.
 */
final class RunnerResources implements AutoCloseable {
    // the runner logs under its facade's name
    private static final Logger LOG = LoggerFactory.getLogger(CudaModel.class);

    private final List<AutoCloseable> owned = new ArrayList<>();

    final ModelConfig config;
    final CudaOptions options;
    final CapturePolicy policy;
    final int maxContext, maxPagesPerSeq;
    final String deviceName;
    final MemoryPlan memoryPlan;
    final Gpu gpu;
    final KernelLibrary lib;
    final Stream stream;
    final Gemm gemm;
    final ModelImage image;
    final DeviceWeights weights;
    final Activations acts;
    final StepMetadata meta;
    /** Null without attention layers. */
    final KvPages kv;
    final GdnStatePools gdn;
    /** The prefix cache's GDN state snapshots ({@link #snapshotEntries} slots); null when the cache is off or stateless. */
    final GdnStatePools snapshots;
    /** Snapshot entries of the prefix cache (0: no prefix cache). */
    final int snapshotEntries;
    final EmbeddingKernel embedding;
    final RmsNormKernel rmsnorm;
    /** The Gated DeltaNet launchers: null without GDN layers. */
    final GdnSplitGatingKernel split;
    final CausalConv1dKernel conv;
    final ChunkedDeltaRuleKernel chunked;
    final GatedDeltaRuleDecodeKernel decodeRule;
    final GatedRmsNormKernel gatedNorm;
    /** Null without attention layers. */
    final GatedAttentionCore attention;
    /** Null without MoE layers. */
    final GpuSparseMoe moe;
    final SiluMulKernel siluMul;
    final SamplingKernel sampling;
    final TokenHistory history;
    /** Constrained decoding's token masks, applied before the sampler. */
    final TokenMaskKernel masks;

    /**
     * Checks the driver and the geometry, plans the memory and allocates everything for {@code dir}; a failure frees
     * what was allocated and closes the checkpoint's mappings before it throws.
     */
    RunnerResources(Path dir, CudaOptions options, LongConsumer progress) {
        this.options = options;
        if (!Cuda.driverPresent()) {
            throw new NoCudaDriverException("no CUDA driver found (libcuda.so.1 is not loadable): the CUDA backend "
                    + "needs an NVIDIA GPU and its driver; the CPU backend needs neither");
        }
        this.config = ModelConfig.load(dir);
        CudaGeometry.check(config, dir.toString());
        this.maxContext = options.maxContext() > 0 ? options.maxContext()
                : Math.min(config.maxPositionEmbeddings(), CudaOptions.DEFAULT_CONTEXT_CAP);
        this.policy = CapturePolicy.of(options);
        int maxEntries = policy.maxEntries(), maxTokens = policy.maxTokens();
        this.maxPagesPerSeq = (maxContext + KvPages.PAGE_TOKENS - 1) / KvPages.PAGE_TOKENS;
        int attnLayers = config.countLayers(LayerType.FULL_ATTENTION);
        int gdnLayers = config.countLayers(LayerType.LINEAR_ATTENTION);

        ModelWeights model = ModelWeights.load(dir);
        try {
            this.image = ModelImage.of(model, options.quantize() == Quantization.FP8);
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
                    .add(weightsLabel(config, image), image.image().bytes())
                    .add("activations", acts.bytes())
                    .add("step metadata", StepMetadata.bytesFor(maxTokens, maxEntries, maxPagesPerSeq, acts.maxLogitRows()))
                    .add("GDN state", gdnGeometry.totalBytes())
                    .add("cuBLASLt workspace", Gemm.DEFAULT_WORKSPACE_BYTES)
                    .add("sampling history", 2L * options.maxSequences() * ((config.vocabSize() + 31) / 32) * 4)
                    .add("token masks (structured output)", TokenMaskKernel.bytes(acts.maxLogitRows(), config.vocabSize()));
            if (ruleConfig != null) mp.add("delta-rule scratch", ruleConfig.scratchBytes());
            if (hasMoe(config)) mp.add("MoE scratch", GpuSparseMoe.scratch(CudaGeometry.moeShape(config).withFp8Experts(image.fp8Experts()), maxTokens,
                    moeDecodeRows(options, image.fp8Experts())).total());
            this.snapshotEntries = snapshotEntries(options, gdnGeometry, attnLayers);
            if (snapshotEntries > 0 && gdnLayers > 0) {
                mp.add("prefix-cache GDN snapshots (" + snapshotEntries + " of " + gdnGeometry.bytesPerSlot() + " bytes)",
                        snapshotEntries * gdnGeometry.bytesPerSlot());
            }
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
            this.snapshots = snapshotEntries > 0 && gdnLayers > 0 ? own(new GdnStatePools(gpu, new GdnStatePools.Geometry(gdnLayers,
                    snapshotEntries, gdnGeometry.convDim(), gdnGeometry.kernel(), gdnGeometry.valueHeads(), gdnGeometry.keyDim(),
                    gdnGeometry.valueDim()))) : null;
            this.embedding = new EmbeddingKernel(lib);
            this.rmsnorm = new RmsNormKernel(lib);
            this.split = gdnLayers == 0 ? null : new GdnSplitGatingKernel(lib);
            this.conv = gdnLayers == 0 ? null : new CausalConv1dKernel(lib);
            this.chunked = ruleConfig == null ? null : own(new ChunkedDeltaRuleKernel(lib, ruleConfig));
            this.decodeRule = gdnLayers == 0 ? null : new GatedDeltaRuleDecodeKernel(lib);
            this.gatedNorm = gdnLayers == 0 ? null : new GatedRmsNormKernel(lib);
            this.attention = attnLayers == 0 ? null : own(new GatedAttentionCore(lib, new AttentionGeometry(config.numAttentionHeads(),
                    config.numKeyValueHeads(), config.headDim(), config.rotaryDim()), config.ropeTheta(), config.rmsNormEps(), maxEntries));
            this.moe = hasMoe(config) ? own(new GpuSparseMoe(lib, gemm, CudaGeometry.moeShape(config).withFp8Experts(image.fp8Experts()), maxTokens,
                    moeDecodeRows(options, image.fp8Experts()))) : null;
            this.siluMul = new SiluMulKernel(lib);
            this.sampling = own(new SamplingKernel(lib, acts.maxLogitRows()));
            this.history = own(new TokenHistory(lib, options.maxSequences(), config.vocabSize()));
            this.masks = own(new TokenMaskKernel(lib, acts.maxLogitRows(), config.vocabSize()));
        } catch (RuntimeException | Error e) {
            closeOwned(e);
            model.close();
            throw e;
        }
        model.close();  // the device holds every weight now; drop the mappings
    }

    /** Takes {@code resource} into the close order (closed before everything acquired earlier). */
    <T extends AutoCloseable> T own(T resource) {
        owned.add(resource);
        return resource;
    }

    /** Closes every owned resource, last acquired first; failures are suppressed into {@code cause} (or dropped). */
    void closeOwned(Throwable cause) {
        for (int i = owned.size() - 1; i >= 0; i--) {
            try {
                owned.get(i).close();
            } catch (Exception e) {
                if (cause != null) cause.addSuppressed(e);
            }
        }
        owned.clear();
    }

    /** Waits for the stream, then frees everything (graphs, buffers, streams, modules, the context's allocations). */
    @Override
    public void close() {
        gpu.bindThread();
        try {
            stream.synchronize();
        } finally {
            closeOwned(null);
        }
    }

    /**
     * Snapshot entries the prefix cache gets: its snapshot budget over one sequence's GDN state (at most 65,536; as many
     * for a model without GDN layers, whose snapshots are empty). 0 when the cache is off, the model has no attention
     * layer (no KV pool to share), or the budget holds not one snapshot (logged).
     */
    static int snapshotEntries(CudaOptions options, GdnStatePools.Geometry gdn, int attnLayers) {
        var p = options.prefixCache();
        if (!p.enabled() || attnLayers == 0) return 0;
        if (gdn.layers() == 0) return 1 << 16;
        long n = Math.min(p.snapshotBytes() / gdn.bytesPerSlot(), 1 << 16);
        if (n < 1) {
            LOG.warn("prefix cache off: its snapshot budget of {} bytes holds no GDN state snapshot ({} bytes each)",
                    p.snapshotBytes(), gdn.bytesPerSlot());
        }
        return (int) n;
    }

    private static boolean hasMoe(ModelConfig c) {
        for (int i = 0; i < c.numHiddenLayers(); i++) if (c.isMoeLayer(i)) return true;
        return false;
    }

    /**
     * Steps of at most this many rows take the MoE decode kernels. With FP8 experts every decode step does (up to the
     * sequence slots): the FP8 decode kernels read each routed pair's expert once, about 3 MB a pair at 80B, where the
     * prefill path would first dequantize the whole layer into the bf16 copy (1.6 GB read, 3.2 GB written and read again).
     */
    static int moeDecodeRows(CudaOptions options, boolean fp8Experts) {
        return fp8Experts ? Math.max(options.moeDecodeMaxTokens(), options.maxSequences()) : options.moeDecodeMaxTokens();
    }

    /** The memory plan's name for the weights: what stays FP8 and what an FP8 checkpoint has dequantized to bf16. */
    static String weightsLabel(ModelConfig config, ModelImage image) {
        if (config.quantization() == null && !image.fp8Experts()) return "weights";
        if (config.quantization() == null) return "weights (experts block-quantized to FP8 while streaming, the rest bf16)";
        return image.fp8Experts() ? "weights (experts FP8 with block scales, the rest bf16 dequantized from FP8)" : "weights (bf16, dequantized from FP8)";
    }
}
