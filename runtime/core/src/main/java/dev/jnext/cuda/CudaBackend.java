package dev.jnext.cuda;

import dev.jnext.backend.KvBudget;
import dev.jnext.backend.PrefillMode;

import dev.jnext.backend.BackendOptions;
import dev.jnext.backend.DeviceChoice;
import dev.jnext.backend.ModelBackend;
import dev.jnext.backend.PrefixCacheStats;
import dev.jnext.backend.SamplingParams;
import dev.jnext.cuda.kernels.SamplingKernel;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongConsumer;

/**
 * The CUDA runner as the engine's {@link ModelBackend}: sampling (penalties included) happens on the device and only
 * the sampled ids cross PCIe, except for inputs that ask for log-probabilities, whose logits row is read back.
 */
public final class CudaBackend implements ModelBackend {
    private final CudaModel model;

    /** The backend over an open model (which it then owns and closes). */
    public CudaBackend(CudaModel model) {
        this.model = model;
    }

    /** Loads {@code dir} onto GPU 0 ({@link CudaModel#load}) and wraps it. */
    public static CudaBackend open(Path dir, CudaOptions options, LongConsumer progress) {
        return new CudaBackend(CudaModel.load(dir, options, progress));
    }

    /**
     * The CUDA runner's options for a backend's: the GPU, slots, step budget, KV budget, the graph switches and the
     * quantization while loading. The one
     * place the port's options become the runner's.
     */
    public static CudaOptions options(BackendOptions o) {
        return CudaOptions.defaults().withGpu(o.device().gpu()).withMaxSequences(o.maxSequences())
                .withMaxStepTokens(o.maxStepTokens()).withKvBudget(o.kvBudget()).withPrefill(o.prefillMode())
                .withDecodeGraphs(o.decodeGraphs()).withMaxLogitRows(Math.max(CudaOptions.DEFAULT_MAX_LOGIT_ROWS, o.maxSequences()))
                .withQuantize(o.quantize()).withPrefixCache(o.prefixCache());
    }

    /** The device form of a request's sampling parameters. */
    static SamplingKernel.RowParams rowParams(SamplingParams p) {
        return new SamplingKernel.RowParams(p.temperature(), p.topK(), p.topP(), p.minP(), p.repetitionPenalty(), p.presencePenalty());
    }

    /** The model this backend runs. */
    public CudaModel model() {
        return model;
    }

    @Override
    public String device() {
        return model.deviceName();
    }

    @Override
    public int vocabSize() {
        return model.config().vocabSize();
    }

    @Override
    public int contextLength() {
        return model.maxContext();
    }

    @Override
    public int maxSequences() {
        return model.options().maxSequences();
    }

    @Override
    public DeviceChoice placement() {
        return DeviceChoice.cuda(model.options().gpu());
    }

    @Override
    public int maxStepTokens() {
        return model.maxStepTokens();
    }

    @Override
    public int freeSequences() {
        return model.freeSlots();
    }

    @Override
    public int openSequence(SamplingParams sampling, int vocabLimit) {
        return model.open(rowParams(sampling), vocabLimit, sampling.seed());
    }

    @Override
    public boolean reserve(int slot, int totalTokens) {
        return model.reserve(slot, totalTokens);
    }

    @Override
    public void closeSequence(int slot) {
        model.close(slot);
    }

    @Override
    public List<StepOutput> step(List<StepInput> inputs) {
        List<CudaModel.Input> in = new ArrayList<>(inputs.size());
        for (StepInput s : inputs) {
            in.add(new CudaModel.Input(s.slot(), s.tokens(), s.sample(),
                    s.sample() && s.topLogprobs() > 0 ? CudaModel.Logits.LAST : CudaModel.Logits.NONE, s.allowed()));
        }
        int[] before = new int[inputs.size()];
        for (int i = 0; i < before.length; i++) before[i] = model.position(inputs.get(i).slot());
        List<CudaModel.Output> out = model.step(in);
        for (int i = 0; i < before.length; i++) {
            StepInput s = inputs.get(i);
            model.afterStep(s.slot(), before[i], s.tokens(), s.prompt());
        }
        List<StepOutput> result = new ArrayList<>(out.size());
        for (int i = 0; i < out.size(); i++) {
            CudaModel.Output o = out.get(i);
            StepInput s = inputs.get(i);
            if (!s.sample()) {
                result.add(StepOutput.NONE);
            } else if (o.logits() == null) {
                result.add(new StepOutput(o.token(), Float.NaN, new int[0], new float[0]));
            } else {
                result.add(LogProbs.of(o.logits(), o.token(), s.topLogprobs()));
            }
        }
        return result;
    }

    /**
     * Prefix caching on the device ({@link DevicePrefixCache}): the prompt's longest cached prefix that ends at a snapshot
     * is restored — KV pages shared with the cache, GDN state copied from its snapshot arena — and its length returned.
     */
    @Override
    public int restorePrefix(int slot, int[] prompt) {
        return model.restorePrefix(slot, prompt);
    }

    /** The cached prefix first, then pages for the rest only: shared pages need no room of their own. */
    @Override
    public int admit(int slot, int[] prompt, int totalTokens) {
        return model.admit(slot, prompt, totalTokens);
    }

    /** The device has a sequence's GDN state only between steps: prompt chunks end where the cache snapshots it. */
    @Override
    public int prefillStop(int slot, int position) {
        return model.prefillStop(slot, position);
    }

    @Override
    public PrefixCacheStats prefixCacheStats() {
        return model.prefixCacheStats();
    }

    /** Prompt chunks end on multiples of the delta rule's chunk, so a prompt's logits do not depend on its split. */
    /**
     * Whether constrained requests (structured output) run on the device: their token masks are uploaded and applied
     * before the sampler ({@link dev.jnext.cuda.kernels.TokenMaskKernel}, whose kernel passed {@code TokenMaskGpuTest} on
     * an H100), log-probabilities read back from the raw logits. Off unless {@value #TOKEN_MASKS_PROPERTY} is
     * {@code true}, until the runner-level path has passed {@code StructuredOutputGpuTest} on a GPU (its first run failed
     * on the test's own chat template); off, the engine refuses constrained requests on CUDA with a clear message.
     */
    @Override
    public boolean supportsTokenMasks() {
        return Boolean.getBoolean(TOKEN_MASKS_PROPERTY);
    }

    /** The system property that turns device token masks on ({@link #supportsTokenMasks()}). */
    public static final String TOKEN_MASKS_PROPERTY = "jnext.cuda.tokenMasks";

    @Override
    public int prefillAlignment() {
        return dev.jnext.cuda.kernels.ChunkedDeltaRuleKernel.CHUNK;
    }

    @Override
    public long kvTokensReserved() {
        return model.kvTokensReserved();
    }

    @Override
    public long deviceMemoryUsed() {
        return model.deviceBytesInUse();
    }

    @Override
    public void close() {
        model.close();
    }
}
