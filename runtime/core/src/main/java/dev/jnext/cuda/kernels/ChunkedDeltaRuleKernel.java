package dev.jnext.cuda.kernels;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;
import dev.jnext.numeric.Bf16;
import dev.jnext.cpu.ops.GatedDeltaRule;

/**
 * The gated delta rule over a prefill batch (kernels-ptx/gated_delta_rule_chunked.cu), for variable-length
 * sequences described on the device.
 *
 * <p>Per launch: {@code qkv[tokens, 2·Hk·dk + Hv·dv]} bf16 (the conv output rows {@code [q | k | v]}),
 * {@code beta, g [tokens, Hv]} fp32 (g ≤ 0; β as {@link GdnSplitGatingKernel} writes it), {@code cuSeqlens[sequences + 1]}
 * int32 (0, non-decreasing, last ≤ tokens; an entry with no tokens is skipped), {@code slots[sequences]} int32 (state-pool
 * slot, −1 for a padding sequence: state untouched, outputs zero), {@code statePool[slots, Hv, dk, dv]} fp32 read as the
 * initial state and overwritten with the final one, and {@code out[tokens, Hv·dv]} bf16. Rows past
 * {@code cuSeqlens[sequences]} are written as zeros. tokens and sequences are the {@link StepShape}'s.
 *
 * <p>{@link Path#CHUNKED} (dk = 128, dv a multiple of 32) is fla's chunked WY form with bf16 tensor-core
 * operands and fp32 state and accumulation (X and V' enter their products as bf16 hi + lo pairs, issue 16): a parallel pass over (chunk, key head) builds each chunk's matrices
 * T·diag(β) = (I + A)⁻¹·diag(β) and P and its per-token decay factors into scratch ("chunk blocks"), then one block
 * per (sequence, value head, 32 value columns) carries the state through the chunks on chip (a loader warp, two
 * state warps on the dependent chain, two output warps). {@link Path#RECURRENT} (any dk ≤ 128, any dv) steps token by
 * token in fp32.
 * Scratch is allocated once, here, for {@link Config#maxTokens()} and {@link Config#maxSequences()}: a launch
 * allocates nothing and reads no device value on the host, so it can be captured into a CUDA graph.
 */
public final class ChunkedDeltaRuleKernel implements AutoCloseable {
    public static final int CHUNK = 64;
    /** The key dim of the chunked path. */
    public static final int CHUNKED_KEY_DIM = 128;
    static final int MAX_KEY_DIM = 128;
    /** Value columns per state-pass block (2 warps × 16). */
    static final int STATE_COLUMNS = 32;
    static final int PREP_THREADS = 128;
    static final int STATE_THREADS = 160;
    static final int RECURRENT_THREADS = 256;
    /** Dynamic shared memory: static_asserts in the .cu keep the structs within these. */
    static final int PREP_SMEM_BYTES = 56 * 1024;
    static final int STATE_SMEM_BYTES = 158 * 1024;
    /** Bytes of one chunk block (the .cu's CB_BYTES): Tβ and P as bf16 [64][72], fk, fq, fl fp32 [64], el + padding. */
    static final int CHUNK_BLOCK_BYTES = 2 * CHUNK * (CHUNK + 8) * 2 + 3 * CHUNK * 4 + 16;

    public enum Path { CHUNKED, RECURRENT }

    /** Layer geometry and the largest batch a launch may carry (sizes the scratch). */
    public record Config(int keyHeads, int valueHeads, int keyDim, int valueDim, int maxTokens, int maxSequences) {
        public Config {
            if (keyHeads < 1 || valueHeads < 1 || valueHeads % keyHeads != 0) {
                throw new IllegalArgumentException("gated delta rule: value heads (" + valueHeads
                        + ") must be a positive multiple of key heads (" + keyHeads + ")");
            }
            if (keyDim < 1 || keyDim > MAX_KEY_DIM) {
                throw new IllegalArgumentException("gated delta rule: key dim must be in 1.." + MAX_KEY_DIM + ", got " + keyDim);
            }
            if (valueDim < 1) throw new IllegalArgumentException("gated delta rule: value dim must be >= 1, got " + valueDim);
            if (maxTokens < 1 || maxSequences < 1) {
                throw new IllegalArgumentException("gated delta rule: max tokens and max sequences must be >= 1, got "
                        + maxTokens + " and " + maxSequences);
            }
        }

        public static Config of(GatedDeltaRule rule, int maxTokens, int maxSequences) {
            return new Config(rule.keyHeads(), rule.valueHeads(), rule.keyDim(), rule.valueDim(), maxTokens, maxSequences);
        }

        /** Elements per qkv row: {@code 2·Hk·dk + Hv·dv}. */
        public int qkvWidth() {
            return 2 * keyHeads * keyDim + valueHeads * valueDim;
        }

        public boolean supportsChunked() {
            return keyDim == CHUNKED_KEY_DIM && valueDim % STATE_COLUMNS == 0;
        }

        public Path defaultPath() {
            return supportsChunked() ? Path.CHUNKED : Path.RECURRENT;
        }

        /** Chunk ids a launch can use: every sequence adds at most one partial chunk. */
        long chunkIds() {
            return maxSequences + (maxTokens + CHUNK - 1L) / CHUNK;
        }

        /** One chunk block per chunk id and value head. */
        public long scratchBytes() {
            return supportsChunked() ? chunkIds() * valueHeads * CHUNK_BLOCK_BYTES : 0;
        }
    }

    private final Config config;
    private final Kernel prep;
    private final Kernel statePass;
    private final Kernel recurrent;
    private final DeviceBuffer chunkBlocks;
    private final float scale;

    public ChunkedDeltaRuleKernel(KernelLibrary lib, Config config) {
        this.config = config;
        this.scale = (float) (1.0 / Math.sqrt(config.keyDim()));
        this.recurrent = lib.kernel("gated_delta_rule_chunked", "gdr_recurrent");
        if (config.supportsChunked()) {
            this.prep = lib.kernel("gated_delta_rule_chunked", "gdr_chunk_prep_d128").allowDynamicSharedMemory(PREP_SMEM_BYTES);
            this.statePass = lib.kernel("gated_delta_rule_chunked", "gdr_chunk_state_d128").allowDynamicSharedMemory(STATE_SMEM_BYTES);
            this.chunkBlocks = lib.gpu().allocate(config.scratchBytes(), "gdr.chunk_blocks");
        } else {
            this.prep = null;
            this.statePass = null;
            this.chunkBlocks = null;
        }
    }

    public Config config() {
        return config;
    }

    /**
     * A launch's tensors, checked against {@code config}: {@code qkv [≥T, 2·Hk·dk + Hv·dv]} bf16 (16-byte aligned),
     * {@code beta}, {@code g [≥T, Hv]} f32, {@code cuSeqlens [≥seqs + 1]} and {@code slots [≥seqs]} i32, the layer's
     * {@code statePool [slots, Hv, dk, dv]} f32 and {@code out [≥T, Hv·dv]} bf16 (16-byte aligned). Row counts are
     * capacities, checked per launch against the step's shape.
     */
    public record Args(Config config, DeviceTensor qkv, DeviceTensor beta, DeviceTensor g, DeviceTensor cuSeqlens,
                       DeviceTensor slots, DeviceTensor statePool, DeviceTensor out) {
        static final String OP = "gated delta rule";

        public Args {
            int any = TensorContract.ANY, hv = config.valueHeads();
            TensorContract.require(OP, "qkv", qkv, DType.BF16, any, config.qkvWidth());
            TensorContract.require(OP, "beta", beta, DType.F32, any, hv);
            TensorContract.require(OP, "g", g, DType.F32, any, hv);
            TensorContract.require(OP, "cuSeqlens", cuSeqlens, DType.I32, any);
            TensorContract.require(OP, "slots", slots, DType.I32, any);
            TensorContract.require(OP, "statePool", statePool, DType.F32, any, hv, config.keyDim(), config.valueDim());
            TensorContract.require(OP, "out", out, DType.BF16, any, hv * config.valueDim());
            TensorContract.aligned(OP, "qkv", qkv, 16);
            TensorContract.aligned(OP, "beta", beta, 4);
            TensorContract.aligned(OP, "g", g, 4);
            TensorContract.aligned(OP, "cuSeqlens", cuSeqlens, 4);
            TensorContract.aligned(OP, "slots", slots, 4);
            TensorContract.aligned(OP, "statePool", statePool, 4);
            TensorContract.aligned(OP, "out", out, 16);
        }
    }

    /**
     * Launches the config's {@link Config#defaultPath() default path} for a step of fixed {@code shape}: {@code shape.seqs()}
     * entries ({@code cuSeqlens [seqs + 1]}, {@code slots [seqs]}) over {@code shape.tokens()} rows. Empty entries and slot −1
     * entries are skipped (their rows, and the rows past {@code cuSeqlens[seqs]}, are written as zeros); the grids come from
     * the shape only, so the launch can be captured once per bucket.
     */
    public void launch(Stream s, StepShape shape, Args a) {
        launch(s, shape, a, config.defaultPath());
    }

    public void launch(Stream s, StepShape shape, Args a, Path path) {
        checkLaunch(config, a, shape, path);
        int tokens = shape.tokens(), sequences = shape.seqs();
        long qkv = a.qkv().address(), beta = a.beta().address(), g = a.g().address(), cuSeqlens = a.cuSeqlens().address();
        long slots = a.slots().address(), statePool = a.statePool().address(), out = a.out().address();
        if (path == Path.RECURRENT) {
            int hk = config.keyHeads(), hv = config.valueHeads(), dk = config.keyDim(), dv = config.valueDim();
            recurrent.args().ptr(qkv).i32(config.qkvWidth()).ptr(beta).ptr(g).ptr(cuSeqlens).ptr(slots).i32(sequences).i32(tokens)
                    .i32(hk).i32(hv).i32(dk).i32(dv).f32(scale).ptr(statePool).ptr(out);
            recurrent.launch(s, Dim3.of(sequences + 1, hv, (dv + 31) / 32), Dim3.of(RECURRENT_THREADS), 0);
            return;
        }
        launchPrep(s, qkv, beta, g, cuSeqlens, slots, tokens, sequences);
        launchState(s, qkv, cuSeqlens, slots, statePool, out, tokens, sequences);
    }

    /** The chunked path's two passes, for benchmarks; the state pass reads what the last prep pass wrote. */
    public enum Stage { PREP, STATE }

    /** Launches one {@link Stage} of the chunked path. */
    public void launchStage(Stage stage, Stream s, StepShape shape, Args a) {
        checkLaunch(config, a, shape, Path.CHUNKED);
        long qkv = a.qkv().address(), cuSeqlens = a.cuSeqlens().address(), slots = a.slots().address();
        if (stage == Stage.PREP) launchPrep(s, qkv, a.beta().address(), a.g().address(), cuSeqlens, slots, shape.tokens(), shape.seqs());
        else launchState(s, qkv, cuSeqlens, slots, a.statePool().address(), a.out().address(), shape.tokens(), shape.seqs());
    }

    private void launchPrep(Stream s, long qkv, long beta, long g, long cuSeqlens, long slots, int tokens, int sequences) {
        int chunkIds = sequences + (tokens + CHUNK - 1) / CHUNK;
        prep.args().ptr(qkv).i32(config.qkvWidth()).ptr(beta).ptr(g).ptr(cuSeqlens).ptr(slots).i32(sequences).i32(tokens)
                .i32(config.keyHeads()).i32(config.valueHeads()).f32(scale).ptr(chunkBlocks.address());
        prep.launch(s, Dim3.of(chunkIds, config.keyHeads()), Dim3.of(PREP_THREADS), PREP_SMEM_BYTES);
    }

    /** One block row per entry plus one for the rows past the last entry. */
    private void launchState(Stream s, long qkv, long cuSeqlens, long slots, long statePool, long out, int tokens,
                             int sequences) {
        int hv = config.valueHeads(), dv = config.valueDim();
        statePass.args().ptr(qkv).i32(config.qkvWidth()).ptr(cuSeqlens).ptr(slots).i32(tokens).i32(sequences).i32(config.keyHeads())
                .i32(hv).i32(dv).ptr(chunkBlocks.address()).ptr(statePool).ptr(out);
        statePass.launch(s, Dim3.of(sequences + 1, hv, dv / STATE_COLUMNS), Dim3.of(STATE_THREADS), STATE_SMEM_BYTES);
    }

    /** Host-side checks of a launch (the device arrays' contents are the caller's contract). */
    static void checkLaunch(Config c, Args a, StepShape shape, Path path) {
        int tokens = shape.tokens(), sequences = shape.seqs();
        if (tokens < 1 || tokens > c.maxTokens()) {
            throw new IllegalArgumentException("gated delta rule: tokens must be in 1.." + c.maxTokens() + ", got " + tokens);
        }
        if (sequences < 1 || sequences > c.maxSequences()) {
            throw new IllegalArgumentException("gated delta rule: sequences must be in 1.." + c.maxSequences() + ", got " + sequences);
        }
        if (path == Path.CHUNKED && !c.supportsChunked()) {
            throw new IllegalArgumentException("gated delta rule: the chunked path needs dk = " + CHUNKED_KEY_DIM
                    + " and dv a multiple of " + STATE_COLUMNS + ", got dk=" + c.keyDim() + " dv=" + c.valueDim());
        }
        Config ac = a.config();
        if (ac.keyHeads() != c.keyHeads() || ac.valueHeads() != c.valueHeads() || ac.keyDim() != c.keyDim()
                || ac.valueDim() != c.valueDim()) {
            throw new IllegalArgumentException("gated delta rule: arguments built for " + ac + ", the kernel runs " + c);
        }
        String op = Args.OP;
        TensorContract.rows(op, "qkv", a.qkv(), tokens);
        TensorContract.rows(op, "beta", a.beta(), tokens);
        TensorContract.rows(op, "g", a.g(), tokens);
        TensorContract.rows(op, "cuSeqlens", a.cuSeqlens(), sequences + 1L);
        TensorContract.rows(op, "slots", a.slots(), sequences);
        TensorContract.rows(op, "out", a.out(), tokens);
    }

    @Override
    public void close() {
        if (chunkBlocks != null) chunkBlocks.close();
    }
}
