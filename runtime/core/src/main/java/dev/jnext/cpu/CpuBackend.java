package dev.jnext.cpu;

import dev.jnext.backend.KvBudget;

import dev.jnext.backend.ModelBackend;
import dev.jnext.backend.SamplingParams;
import dev.jnext.backend.BackendOptions;

import dev.jnext.JnextException;
import dev.jnext.cpu.ops.GatedDeltaRule;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

/**
 * The CPU reference model as a {@link ModelBackend}: {@link CpuForward} over a {@link CpuState} of
 * {@code maxSequences} slots, one {@link Sampler} per open slot. The KV cache grows as needed, so {@link #reserve}
 * succeeds within the context length, and within a token budget when one is set ({@link KvBudget.Tokens};
 * a memory fraction sets no limit on the CPU).
 */
public final class CpuBackend implements ModelBackend {
    private final Qwen3NextModel model;
    private final CpuForward forward;
    private final CpuState state;
    private final Sampler[] samplers;
    private final int[] vocabLimits;
    private final long[] reserved;
    private final long kvTokenBudget;
    private final int maxStepTokens;
    private long reservedTotal;
    private String nonFiniteWeight; // what checkFinite found in the weights, once
    private int open;
    private boolean closed;

    /** Loads the checkpoint and sizes the state for the options' slots, step budget and KV budget. */
    public static CpuBackend open(Path modelDir, BackendOptions options) {
        long kv = options.kvBudget() instanceof KvBudget.Tokens t ? t.tokens() : Long.MAX_VALUE;
        return new CpuBackend(Qwen3NextModel.load(modelDir), options.maxSequences(), options.maxStepTokens(), kv);
    }

    /** Takes ownership of the model (closed with the backend). */
    public CpuBackend(Qwen3NextModel model, int maxSequences, int maxStepTokens, long kvTokenBudget) {
        if (maxSequences < 1) throw new JnextException("sequence slots must be at least 1, got " + maxSequences);
        if (maxStepTokens < maxSequences) {
            throw new JnextException("the step token budget (" + maxStepTokens + ") must hold one token of each of the "
                    + maxSequences + " slots");
        }
        this.model = model;
        this.forward = new CpuForward(model);
        this.state = forward.newState(maxSequences);
        this.samplers = new Sampler[maxSequences];
        this.vocabLimits = new int[maxSequences];
        this.reserved = new long[maxSequences];
        this.kvTokenBudget = kvTokenBudget;
        this.maxStepTokens = maxStepTokens;
    }

    @Override
    public String device() {
        return "cpu";
    }

    @Override
    public int vocabSize() {
        return model.config().vocabSize();
    }

    @Override
    public int contextLength() {
        return model.config().maxPositionEmbeddings();
    }

    @Override
    public int maxSequences() {
        return state.slots();
    }

    @Override
    public int maxStepTokens() {
        return maxStepTokens;
    }

    @Override
    public int freeSequences() {
        return state.slots() - open;
    }

    /** Token masks (structured output) are applied by the {@link Sampler} before sampling. */
    @Override
    public boolean supportsTokenMasks() {
        return true;
    }

    /** The chunked delta rule's chunk: prompts cut at its multiples give the bits of an uncut prompt. */
    @Override
    public int prefillAlignment() {
        return GatedDeltaRule.CHUNK;
    }

    @Override
    public int openSequence(SamplingParams sampling, int vocabLimit) {
        checkOpen();
        if (vocabLimit < 1) throw new JnextException("vocabLimit must be at least 1, got " + vocabLimit);
        int slot = state.allocate();
        samplers[slot] = new Sampler(sampling, Math.min(vocabLimit, vocabSize()));
        vocabLimits[slot] = Math.min(vocabLimit, vocabSize());
        reserved[slot] = 0;
        open++;
        return slot;
    }

    @Override
    public boolean reserve(int slot, int totalTokens) {
        checkSlot(slot);
        if (totalTokens > contextLength()) return false;
        long more = totalTokens - reserved[slot];
        if (more <= 0) return true;
        if (reservedTotal + more > kvTokenBudget) return false;
        reservedTotal += more;
        reserved[slot] = totalTokens;
        return true;
    }

    @Override
    public void closeSequence(int slot) {
        checkSlot(slot);
        state.release(slot);
        samplers[slot] = null;
        reservedTotal -= reserved[slot];
        reserved[slot] = 0;
        open--;
    }

    @Override
    public List<StepOutput> step(List<StepInput> inputs) {
        checkOpen();
        int tokens = 0;
        List<CpuForward.SequenceInput> batch = new ArrayList<>(inputs.size());
        for (StepInput in : inputs) {
            checkSlot(in.slot());
            tokens += in.tokens().length;
            if (state.position(in.slot()) + in.tokens().length > contextLength()) {
                throw new JnextException("slot " + in.slot() + " would grow past the context of " + contextLength() + " tokens");
            }
            batch.add(new CpuForward.SequenceInput(in.slot(), in.tokens()));
        }
        if (tokens > maxStepTokens) {
            throw new JnextException("a step of " + tokens + " tokens exceeds the step budget of " + maxStepTokens);
        }
        List<float[]> logits = forward.forward(state, batch, false);
        for (int i = 0; i < inputs.size(); i++) {
            if (inputs.get(i).sample()) checkFinite(logits.get(i), vocabLimits[inputs.get(i).slot()]);
        }
        StepOutput[] out = new StepOutput[inputs.size()];
        // each input has its own slot and sampler: sampling and the log-softmax (~4 ms per row of 152k logits) run in parallel
        IntStream range = IntStream.range(0, inputs.size());
        (inputs.size() > 1 ? range.parallel() : range).forEach(i -> {
            StepInput in = inputs.get(i);
            Sampler sampler = samplers[in.slot()];
            sampler.observePrompt(in.tokens());
            if (!in.sample()) {
                out[i] = StepOutput.NONE;
                return;
            }
            float[] l = logits.get(i);
            int token = sampler.next(l, in.allowed()); // a token mask (structured output) before sampling; logprobs stay raw
            out[i] = logprobs(l, vocabLimits[in.slot()], token, in.topLogprobs());
        });
        return Arrays.asList(out);
    }

    /**
     * Refuses a row with a NaN or an infinity (nothing is sampled or reported from it): the message names the first
     * non-finite weight of the checkpoint (found once, on the first such row), or says that the activations overflowed.
     */
    private void checkFinite(float[] logits, int n) {
        for (int i = 0; i < n; i++) {
            if (Float.isFinite(logits[i])) continue;
            if (nonFiniteWeight == null) {
                nonFiniteWeight = CpuModel.of(model).checkpoint().firstNonFinite()
                        .map(w -> w + ": the checkpoint is corrupt").orElse("every weight is finite: the forward pass overflowed");
            }
            throw new JnextException("the model produced a " + (Float.isNaN(logits[i]) ? "NaN" : "infinite") + " logit (token id "
                    + i + "); " + nonFiniteWeight);
        }
    }

    /** Log-softmax of the raw logits over the ids that can be sampled; the {@code top} most likely, lower id first on ties. */
    public static StepOutput logprobs(float[] logits, int n, int token, int top) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, logits[i]);
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Math.exp((double) logits[i] - max);
        double logZ = max + Math.log(sum);
        int k = Math.min(top, n);
        int[] ids = new int[k];
        float[] lp = new float[k];
        int filled = 0;
        for (int i = 0; i < n && k > 0; i++) {
            float v = logits[i];
            if (filled == k && !(v > logits[ids[k - 1]])) continue;
            int at = filled < k ? filled++ : k - 1;
            while (at > 0 && v > logits[ids[at - 1]]) {
                ids[at] = ids[at - 1];
                at--;
            }
            ids[at] = i;
        }
        for (int j = 0; j < k; j++) lp[j] = (float) (logits[ids[j]] - logZ);
        return new StepOutput(token, (float) (logits[token] - logZ), ids, lp);
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        model.close();
    }

    private void checkOpen() {
        if (closed) throw new JnextException("the CPU backend is closed");
    }

    private void checkSlot(int slot) {
        checkOpen();
        if (slot < 0 || slot >= samplers.length || samplers[slot] == null) {
            throw new JnextException("sequence slot " + slot + " is not open");
        }
    }
}
