package dev.jnext.cpu;

import dev.jnext.backend.KvBudget;

import dev.jnext.backend.ModelBackend;
import dev.jnext.backend.PrefixCacheOptions;
import dev.jnext.backend.PrefixCacheStats;
import dev.jnext.backend.SamplingParams;
import dev.jnext.backend.BackendOptions;

import dev.jnext.JnextException;
import dev.jnext.backend.prefix.PrefixTree;
import dev.jnext.backend.prefix.SnapshotPlan;
import dev.jnext.cpu.ops.GatedDeltaRule;
import dev.jnext.model.LayerType;
import dev.jnext.model.ModelConfig;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.TreeSet;
import java.util.stream.IntStream;

/**
 * The CPU reference model as a {@link ModelBackend}: {@link CpuForward} over a {@link CpuState} of
 * {@code maxSequences} slots, one {@link Sampler} per open slot. The KV cache grows as needed, so {@link #reserve}
 * succeeds within the context length, and within a token budget when one is set ({@link KvBudget.Tokens};
 * a memory fraction sets no limit on the CPU).
 *
 * <p><b>Prefix caching</b> ({@link PrefixCacheOptions}, when enabled): a {@link PrefixTree} whose nodes hold copies of
 * the attention layers' KV ({@link CachedKv}) and, at chosen positions, of every GDN layer's conv and recurrent state
 * ({@link StateSnapshot}). {@link #restorePrefix} copies the longest cached prefix that ends at a snapshot into the slot;
 * while the slot's prompt is prefilled, the GDN layers copy their state at the planned positions in the middle of the
 * call ({@link CpuForward.SequenceInput#captureAt()}) and the step inserts them with the KV of their prefix. Snapshot
 * positions are multiples of the delta rule's chunk ({@link #prefillAlignment()}): every 512 tokens by default, the
 * last aligned position of the prompt (and the one before when the prompt length is itself aligned, so that the same
 * prompt sent again resumes there), and the aligned position at or before the point where the prompt leaves the path
 * the tree held (a branch point). A slot only leaves snapshots while its whole history was prefilled in chunks that
 * start at aligned positions (the scheduler's rule) — so every cached state has the bits of a cold prefill, and a
 * request resumed from one computes the bits of a cold run. Each slot holds the deepest node it resumed from or
 * inserted until it closes; the tree never evicts a held node.
 */
public final class CpuBackend implements ModelBackend {
    private static final Logger log = LoggerFactory.getLogger(CpuBackend.class);

    private final Qwen3NextModel model;
    private final CpuForward forward;
    private final CpuState state;
    private final Sampler[] samplers;
    private final int[] vocabLimits;
    private final long[] reserved;
    private final long kvTokenBudget;
    private final int maxStepTokens;
    private volatile long reservedTotal; // read by kvTokensReserved from any thread
    private String nonFiniteWeight; // what checkFinite found in the weights, once
    private int open;
    private boolean closed;
    // prefix caching (null / unused when off)
    private final PrefixTree<CachedKv, StateSnapshot> cache;
    private final int snapshotInterval;
    private final int[][] prompts;                 // the slot's prompt, from restorePrefix
    private final TreeSet<Integer>[] plans;        // positions where the slot's prefill leaves snapshots
    private final List<PrefixTree.Node<CachedKv, StateSnapshot>> holds; // the node each slot holds (root: none)

    /** Loads the checkpoint and sizes the state for the options' slots, step budget, KV budget and prefix cache. */
    public static CpuBackend open(Path modelDir, BackendOptions options) {
        long kv = options.kvBudget() instanceof KvBudget.Tokens t ? t.tokens() : Long.MAX_VALUE;
        return new CpuBackend(Qwen3NextModel.load(modelDir), options.maxSequences(), options.maxStepTokens(), kv,
                options.prefixCache());
    }

    /** Takes ownership of the model (closed with the backend); no prefix caching. */
    public CpuBackend(Qwen3NextModel model, int maxSequences, int maxStepTokens, long kvTokenBudget) {
        this(model, maxSequences, maxStepTokens, kvTokenBudget, PrefixCacheOptions.off());
    }

    /** Takes ownership of the model (closed with the backend). */
    @SuppressWarnings("unchecked")
    public CpuBackend(Qwen3NextModel model, int maxSequences, int maxStepTokens, long kvTokenBudget,
                      PrefixCacheOptions prefixCache) {
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
        this.prompts = new int[maxSequences][];
        this.plans = new TreeSet[maxSequences];
        this.holds = new ArrayList<>();
        for (int i = 0; i < maxSequences; i++) holds.add(null);
        int align = prefillAlignment();
        this.snapshotInterval = Math.ceilDiv(prefixCache.snapshotInterval(), align) * align;
        if (prefixCache.enabled()) {
            ModelConfig c = model.config();
            long kvPerToken = 0, snapshot = 0;
            for (int l = 0; l < c.numHiddenLayers(); l++) {
                if (c.layerType(l) == LayerType.LINEAR_ATTENTION) {
                    snapshot += (long) c.convDim() * (c.linearConvKernelDim() - 1)
                            + (long) c.linearNumValueHeads() * c.linearKeyHeadDim() * c.linearValueHeadDim();
                } else {
                    kvPerToken += 2L * c.numKeyValueHeads() * c.headDim();
                }
            }
            kvPerToken *= Float.BYTES;
            snapshot *= Float.BYTES;
            long[] budgets = heapBudgets(prefixCache.kvBytes(), prefixCache.snapshotBytes(), Runtime.getRuntime().maxMemory());
            if (budgets[0] != prefixCache.kvBytes() || budgets[1] != prefixCache.snapshotBytes()) {
                log.warn("prefix cache: its budgets ({} bytes of KV, {} of snapshots) would take more than half of the Java heap "
                                + "({} bytes, -Xmx), where the CPU backend keeps them: cut to {} and {} bytes", prefixCache.kvBytes(),
                        prefixCache.snapshotBytes(), Runtime.getRuntime().maxMemory(), budgets[0], budgets[1]);
            }
            this.cache = new PrefixTree<>(CachedKv::slice, kvPerToken, snapshot, budgets[0], budgets[1]);
            log.info("prefix cache on: KV up to {} bytes ({} tokens of {} bytes), GDN state snapshots up to {} bytes ({} of {} bytes), "
                            + "a snapshot every {} tokens and at each prompt's end", budgets[0],
                    kvPerToken == 0 ? "any number of" : budgets[0] / kvPerToken, kvPerToken,
                    budgets[1], snapshot == 0 ? "any number" : budgets[1] / snapshot,
                    snapshot, snapshotInterval);
        } else {
            this.cache = null;
        }
    }

    /**
     * The prefix cache's budgets as the CPU backend can hold them: it keeps the cached KV and snapshots on the Java heap,
     * so together they get at most half of {@code maxHeap}; budgets over that are cut in proportion.
     *
     * @return {kv, snapshot} bytes
     */
    static long[] heapBudgets(long kvBytes, long snapshotBytes, long maxHeap) {
        long cap = maxHeap / 2;
        double total = (double) kvBytes + snapshotBytes;
        if (total <= cap) return new long[]{kvBytes, snapshotBytes};
        return new long[]{(long) (kvBytes / total * cap), (long) (snapshotBytes / total * cap)};
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
    public long kvTokensReserved() {
        return reservedTotal;
    }

    @Override
    public int restorePrefix(int slot, int[] prompt) {
        checkSlot(slot);
        if (cache == null) return 0;
        if (state.position(slot) != 0 || prompts[slot] != null) {
            throw new JnextException("restorePrefix is called once, before the first step of slot " + slot);
        }
        int length = prompt.length;
        int align = prefillAlignment();
        PrefixTree.Match<CachedKv, StateSnapshot> m = cache.match(prompt, length - 1);
        int at = m.resumeAt();
        if (at % align != 0) throw new IllegalStateException("a snapshot at " + at + " is not on a multiple of " + align);
        if (m.hit()) {
            for (CachedKv kv : cache.kvPath(m.node())) kv.appendTo(state, slot);
            m.node().snapshot().restore(state, slot);
            state.advance(slot, at);
            samplers[slot].observePrompt(Arrays.copyOf(prompt, at));
            hold(slot, m.node());
        }
        cache.recordLookup(at);
        TreeSet<Integer> plan = SnapshotPlan.all(length, m.matched(), at, align, snapshotInterval);
        prompts[slot] = prompt.clone();
        plans[slot] = plan;
        return at;
    }

    @Override
    public PrefixCacheStats prefixCacheStats() {
        return cache == null ? PrefixCacheStats.DISABLED : cache.stats();
    }

    /** The prefix tree (null when prefix caching is off): for tests and diagnostics, on the engine thread only. */
    PrefixTree<CachedKv, StateSnapshot> prefixTree() {
        return cache;
    }

    /** The node slot {@code slot} holds in the prefix tree (null: none). */
    PrefixTree.Node<CachedKv, StateSnapshot> heldNode(int slot) {
        return holds.get(slot);
    }

    private void hold(int slot, PrefixTree.Node<CachedKv, StateSnapshot> node) {
        PrefixTree.Node<CachedKv, StateSnapshot> old = holds.get(slot);
        if (old == node) return;
        cache.hold(node);
        if (old != null) cache.release(old);
        holds.set(slot, node);
    }

    private void forgetPrompt(int slot) {
        PrefixTree.Node<CachedKv, StateSnapshot> held = holds.get(slot);
        if (held != null) cache.release(held);
        holds.set(slot, null);
        prompts[slot] = null;
        plans[slot] = null;
    }

    @Override
    public void closeSequence(int slot) {
        checkSlot(slot);
        if (cache != null) forgetPrompt(slot);
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
        }
        if (tokens > maxStepTokens) {
            throw new JnextException("a step of " + tokens + " tokens exceeds the step budget of " + maxStepTokens);
        }
        for (StepInput in : inputs) batch.add(withCaptures(in));
        List<float[]> logits = forward.forward(state, batch, false);
        for (int i = 0; i < inputs.size(); i++) {
            if (inputs.get(i).sample()) checkFinite(logits.get(i), vocabLimits[inputs.get(i).slot()]);
        }
        if (cache != null) {
            for (CpuForward.SequenceInput in : batch) insertSnapshots(in);
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
     * The forward input of a step input, asking for the slot's planned snapshots that fall within its tokens. A slot
     * stops leaving snapshots (its plan is dropped) once an input would give its state other bits than a cold prefill:
     * generated tokens, or a prompt chunk that does not start at a multiple of the alignment.
     */
    private CpuForward.SequenceInput withCaptures(StepInput in) {
        int slot = in.slot();
        TreeSet<Integer> plan = cache == null ? null : plans[slot];
        if (plan == null || plan.isEmpty()) {
            return new CpuForward.SequenceInput(slot, in.tokens(), in.prompt(), new int[0], new StateSnapshot[0]);
        }
        int position = state.position(slot);
        int[] prompt = prompts[slot];
        boolean canonical = in.prompt() && position % prefillAlignment() == 0 && position + in.tokens().length <= prompt.length
                && Arrays.equals(in.tokens(), 0, in.tokens().length, prompt, position, position + in.tokens().length);
        if (!canonical) {
            plan.clear();
            return new CpuForward.SequenceInput(slot, in.tokens(), in.prompt(), new int[0], new StateSnapshot[0]);
        }
        var within = plan.subSet(position, false, position + in.tokens().length, true);
        int[] at = within.stream().mapToInt(q -> q - position).toArray();
        within.clear();
        StateSnapshot[] captured = new StateSnapshot[at.length];
        for (int i = 0; i < at.length; i++) captured[i] = StateSnapshot.empty(state.layers());
        return new CpuForward.SequenceInput(slot, in.tokens(), true, at, captured);
    }

    /** Inserts the snapshots a step captured for one slot, with the KV of their prefixes; the slot holds the deepest. */
    private void insertSnapshots(CpuForward.SequenceInput in) {
        int slot = in.slot();
        int base = state.position(slot) - in.tokens().length;
        for (int i = 0; i < in.captureAt().length; i++) {
            int end = base + in.captureAt()[i];
            StateSnapshot snapshot = in.captured()[i];
            var node = cache.insert(prompts[slot], end, (from, to) -> CachedKv.copy(state, slot, from, to), () -> snapshot);
            if (node != null) hold(slot, node);
        }
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
