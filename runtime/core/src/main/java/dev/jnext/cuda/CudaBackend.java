package dev.jnext.cuda;

import dev.jnext.JnextException;
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
     * The CUDA runner's options for a backend's: the GPU, slots, step budget, KV budget and the graph switches. The one
     * place the port's options become the runner's.
     */
    public static CudaOptions options(BackendOptions o) {
        return CudaOptions.defaults().withGpu(o.device().gpu()).withMaxSequences(o.maxSequences())
                .withMaxStepTokens(o.maxStepTokens()).withKvBudget(o.kvBudget()).withPrefill(o.prefillMode())
                .withDecodeGraphs(o.decodeGraphs()).withMaxLogitRows(Math.max(CudaOptions.DEFAULT_MAX_LOGIT_ROWS, o.maxSequences()));
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
        for (StepInput s : inputs) {
            if (s.allowed() != null) { // the engine refuses such requests first (supportsTokenMasks): this is the port's guard
                throw new JnextException("the CUDA backend does not apply token masks (structured output) yet; "
                        + "run constrained requests on the CPU backend");
            }
        }
        List<CudaModel.Input> in = new ArrayList<>(inputs.size());
        for (StepInput s : inputs) {
            in.add(new CudaModel.Input(s.slot(), s.tokens(), s.sample(),
                    s.sample() && s.topLogprobs() > 0 ? CudaModel.Logits.LAST : CudaModel.Logits.NONE));
        }
        List<CudaModel.Output> out = model.step(in);
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
     * No prefix cache on the GPU yet: restores nothing (every prompt is prefilled whole, as before). Caching needs
     * device-side copies of the GDN conv and recurrent state at snapshot positions (in the middle of a chunked
     * delta-rule launch) and KV pages shared between the tree and the slots' page tables — work for a session with a GPU.
     */
    @Override
    public int restorePrefix(int slot, int[] prompt) {
        return 0;
    }

    /** {@link PrefixCacheStats#DISABLED}: the CUDA backend has no prefix cache yet ({@link #restorePrefix}). */
    @Override
    public PrefixCacheStats prefixCacheStats() {
        return PrefixCacheStats.DISABLED;
    }

    /** Prompt chunks end on multiples of the delta rule's chunk, so a prompt's logits do not depend on its split. */
    @Override
    public int prefillAlignment() {
        return dev.jnext.cuda.kernels.ChunkedDeltaRuleKernel.CHUNK;
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
