package dev.jnext.cuda;

import dev.jnext.JnextException;
import dev.jnext.backend.PrefillMode;
import dev.jnext.backend.PrefixCacheStats;
import dev.jnext.backend.TokenMask;
import dev.jnext.backend.SamplingParams;
import dev.jnext.cuda.kernels.SamplingKernel;
import dev.jnext.cuda.kernels.StepShape;
import dev.jnext.model.ModelConfig;

import java.nio.file.Path;
import java.util.List;
import java.util.function.LongConsumer;

/**
 * A Qwen3-Next checkpoint on one GPU. Sequences live in slots 0..{@code maxSequences}−1; a {@link #step} runs the new
 * tokens of several of them in one forward and samples or returns logits. The facade over the runner's parts: the
 * device resources ({@link RunnerResources}), the forward plan and lm_head ({@link PlanBuilder}), the capture sizes
 * ({@link CapturePolicy}), the slots ({@link SequenceSlots}), the metadata staging ({@link StepStager}), one
 * {@link StepExecutor} per way of running a step (eager; one decode graph per batch bucket; piecewise prefill graphs)
 * chosen per step ({@link StepRoute}), and sampling and read-back ({@link StepReadback}). Not thread-safe: one thread
 * drives it (it binds the GPU context to the calling thread on every step). Closing frees every device resource it owns.
 */
public final class CudaModel implements AutoCloseable {

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
     * sampling parameters; {@code logits}: copy logits to the host (the last token's, or every token's — raw, before any
     * mask); {@code allowed}: constrained decoding, the ids the sampled token may be (null: any).
     */
    public record Input(int slot, int[] tokens, boolean sample, Logits logits, TokenMask allowed) {
        /** Checks that there is a token and that only a sampling input has a mask. */
        public Input {
            if (tokens.length == 0) throw new JnextException("sequence slot " + slot + ": a step input needs at least one token");
            if (allowed != null && !sample) throw new JnextException("sequence slot " + slot + ": a token mask needs sample");
        }

        /** An input without a token mask. */
        public Input(int slot, int[] tokens, boolean sample, Logits logits) {
            this(slot, tokens, sample, logits, null);
        }
    }

    /** Per input: the sampled token (−1 if not sampled) and the logits asked for ({@code null}, [vocab] or [n·vocab]). */
    public record Output(int token, float[] logits) {}

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

    private final RunnerResources res;
    private final ForwardPlan plan;
    private final SequenceSlots slots;
    private final StepStager stager;
    private final StepReadback readback;
    private final EagerExecutor eager;
    /** Null when decode graphs are off. */
    private final DecodeGraphExecutor decode;
    /** Null in eager prefill mode. */
    private final PiecewiseExecutor piecewise;
    private boolean closed;

    private CudaModel(Path dir, CudaOptions options, LongConsumer progress) {
        this.res = new RunnerResources(dir, options, progress);  // frees what it allocated if it fails
        try {
            this.plan = PlanBuilder.plan(res);
            PlanBuilder.Head head = PlanBuilder.head(res);
            this.slots = new SequenceSlots(res);
            this.stager = new StepStager(res, slots);
            this.readback = new StepReadback(res, slots);
            this.eager = new EagerExecutor(plan, head);
            this.decode = options.decodeGraphs() ? new DecodeGraphExecutor(res, eager) : null;
            if (decode != null) decode.captureAll();
            this.piecewise = options.prefill() == PrefillMode.EAGER ? null : new PiecewiseExecutor(res, plan, head);
            if (piecewise != null && !options.lazyCapture()) piecewise.captureAll();
        } catch (RuntimeException | Error e) {
            res.closeOwned(e);
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

    /** The checkpoint's config.json. */
    public ModelConfig config() {
        return res.config;
    }

    /** The options it was loaded with. */
    public CudaOptions options() {
        return res.options;
    }

    /** {@code "cuda:0 "} and the GPU's name. */
    public String deviceName() {
        return res.deviceName;
    }

    MemoryPlan memoryPlan() {
        return res.memoryPlan;
    }

    ForwardPlan plan() {
        return plan;
    }

    /** Most tokens one sequence may hold. */
    public int maxContext() {
        return res.maxContext;
    }

    /** Most new tokens one step may carry. */
    public int maxStepTokens() {
        return res.options.maxStepTokens();
    }

    /** Most logits rows one step may return. */
    public int maxLogitRows() {
        return res.acts.maxLogitRows();
    }

    /** Time spent capturing CUDA graphs so far (decode graphs at load, prefill buckets at load or on first use). */
    public long graphCaptureNanos() {
        return (decode == null ? 0 : decode.captureNanos()) + (piecewise == null ? 0 : piecewise.captureNanos());
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
        return decode == null ? 0 : decode.graphCount();
    }

    /** Tests: plant NaN in the padded rows of the residual stream after the first piece of every piecewise step. */
    void poisonPadding(boolean on) {
        if (piecewise != null) piecewise.poisonPadding(on);
    }

    /** Sequence slots not open now. */
    public int freeSlots() {
        return slots.free();
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
        return slots.open(params, vocabLimit, seed);
    }

    /** Frees the slot and its KV pages. */
    public void close(int slot) {
        check();
        slots.close(slot);
    }

    /** Reserves KV pages so the slot can hold {@code totalTokens}; false (nothing reserved) when the pool cannot. */
    public boolean reserve(int slot, int totalTokens) {
        check();
        return slots.reserve(slot, totalTokens);
    }

    /**
     * Prefix caching ({@link CudaOptions#prefixCache()}): restores into the freshly opened, reserved slot the longest
     * prefix of {@code prompt} the cache holds up to a snapshot — shared KV pages, the GDN state, the token history — and
     * returns its length (0: nothing, or the cache is off). See {@link DevicePrefixCache}.
     */
    public int restorePrefix(int slot, int[] prompt) {
        check();
        return slots.restorePrefix(slot, prompt);
    }

    /**
     * Admits a request into the freshly opened slot: KV pages for {@code totalTokens} and, with prefix caching, the
     * longest cached prefix of {@code prompt} first, so that only the pages it does not share are reserved. Returns the
     * restored length, or −1 (nothing reserved or restored) when the pool cannot hold the sequence now.
     */
    public int admit(int slot, int[] prompt, int totalTokens) {
        check();
        return slots.admit(slot, prompt, totalTokens);
    }

    /** Where the slot's next prompt chunk, from {@code position}, must end so that its state can be cached. */
    public int prefillStop(int slot, int position) {
        check();
        return slots.prefillStop(slot, position);
    }

    /**
     * After {@link #step}: tells the prefix cache that the step fed {@code tokens} to the slot from {@code before} on, as
     * a prompt chunk or not; the cache may snapshot the state there (copies queued behind the step).
     */
    public void afterStep(int slot, int before, int[] tokens, boolean prompt) {
        check();
        slots.afterStep(slot, before, tokens, prompt);
    }

    /** KV tokens the open sequences hold reserved (their pages, shared ones included); safe from any thread. */
    public long kvTokensReserved() {
        return slots == null ? -1 : slots.reservedTokens();
    }

    /** What the prefix cache has done and holds ({@link PrefixCacheStats#DISABLED} when it is off). */
    public PrefixCacheStats prefixCacheStats() {
        DevicePrefixCache c = slots == null ? null : slots.cache();
        return c == null ? PrefixCacheStats.DISABLED : c.stats();
    }

    /** Tokens the slot's sequence holds. */
    public int position(int slot) {
        check();
        return slots.get(slot).position;
    }

    /** Runs one forward step over {@code inputs} (each slot at most once). */
    public List<Output> step(List<Input> inputs) {
        return step(inputs, null);
    }

    /** As {@link #step(List)}, forcing an executor path ({@code null}: the options decide); tests compare paths. */
    public List<Output> step(List<Input> inputs, StepPath force) {
        check();
        stager.checkCount(inputs);
        res.gpu.bindThread();
        StepStager.Batch batch = stager.validate(inputs);
        StepRoute route = StepRoute.choose(res.policy, force, inputs.size(), batch.total(), batch.decode());
        if (route.eagerFallback()) piecewise.logEagerFallback(batch.total());
        StepExecutor executor = executor(route.path());
        // a bucket not captured yet (lazy prefill capture) is captured now, before this step stages its metadata
        if (executor != null && route.shape() != null && !executor.canRun(route.shape())) executor.capture(route.shape());
        stager.reserve(inputs);
        route.checkDecodeBucket(res.policy);
        StepShape shape = route.shape();
        boolean decodePath = route.path().decode();
        int rows = decodePath ? shape.seqs() : batch.logitRows();
        int[] firstLogitRow = stager.stage(inputs, shape, decodePath, rows, batch.total());
        executor.replay(shape, batch.total(), rows, res.stream);
        return readback.read(inputs, batch, shape, rows, firstLogitRow);
    }

    /**
     * Runs one step as {@link #step(List)} does, but eagerly (exact size) with a CUDA event around every operation of the
     * plan, the LM head and the sampler, and returns each one's GPU time (issue 23's step profile; {@code bench model
     * --profile}). The sequences advance as in any step; the graphs are not involved.
     */
    public List<StepProfile.OpTime> profile(List<Input> inputs) {
        boolean decodeStep = inputs.stream().allMatch(i -> i.tokens().length == 1);
        StepProfile p = new StepProfile(res.gpu);
        eager.profiling = p;
        readback.profiling = p;
        try {
            step(inputs, decodeStep ? StepPath.EAGER_DECODE : StepPath.EAGER_PREFILL);
        } catch (RuntimeException | Error e) {
            p.discard();
            throw e;
        } finally {
            eager.profiling = null;
            readback.profiling = null;
        }
        return p.read();
    }

    /** The executor of {@code path} (null: that executor is off, and the route refuses the path). */
    private StepExecutor executor(StepPath path) {
        return switch (path) {
            case DECODE_GRAPH -> decode;
            case PIECEWISE_PREFILL -> piecewise;
            case EAGER_DECODE, EAGER_DECODE_BUCKET, EAGER_PREFILL, EAGER_PREFILL_BUCKET -> eager;
        };
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
        if (decode == null) throw new JnextException("no decode graph for batch " + batch);
        return decode.millis(batch, reps);
    }

    /** Device memory held by this process's GPU context now (for leak checks). */
    public long deviceBytesInUse() {
        return res.gpu.liveBufferBytes();
    }

    /** Frees every device resource (graphs, buffers, streams, modules, the context's allocations). */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        try {
            if (slots.cache() != null) slots.cache().close(); // host bookkeeping: the cached pages go back to the pool
        } finally {
            res.close();
        }
    }
}
