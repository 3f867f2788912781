package dev.jnext.cuda.kernels;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;
import dev.jnext.backend.SamplingRules;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * On-device sampling of the next token ids from bf16 logits rows (kernels-ptx/sampling.cu); the ids stay in device
 * memory. Greedy: a two-level argmax in one launch (lowest id on ties; a row with a NaN logit gives −1). Stochastic: temperature,
 * top-k, top-p, min-p with the CPU Sampler's semantics, found by radix select on the bf16 keys (no sort), and a
 * Philox4x32-10 draw whose (seed, offset) state lives in device memory and advances on every call, so a replayed graph
 * samples fresh numbers with no host-side seed.
 *
 * <p>Per-row device arrays: {@code params [rows]} of {@link #PARAMS_BYTES} ({@link #writeParams}) and {@code rng [rows]}
 * of 2 u64 (seed, offset; {@link #writeRng}). The greedy scratch is allocated here for {@code maxRows}.
 *
 * <p>With a {@link TokenHistory} and a device {@code rowSlot [rows]} array (each row's sequence slot, −1 for a padding
 * row: skipped, id −1), the repetition and presence penalties of {@link RowParams} are applied first — the CPU
 * {@code dev.jnext.cpu.Sampler}'s rules on the bf16 logits promoted to fp32 (greedy compares the penalized fp32 values
 * exactly; the stochastic path rounds a penalized logit to bf16, its key format; the logits are not modified) — and the
 * picked id is marked seen and generated in the row's slot. Nothing is decided on the host, so every launch can be
 * captured. Rows of one launch must have distinct slots.
 */
public final class SamplingKernel implements AutoCloseable {
    static final int ARGMAX_PARTS = 32;
    /** Bytes of one row's parameters: (temperature, topK, topP, minP), (repetition penalty, presence penalty, 0, 0) as floats. */
    public static final int PARAMS_BYTES = 32;
    /** Bytes of one row's generator state: (seed, offset) as two u64. */
    public static final int RNG_BYTES = 16;
    /** sample_rows' key histogram: 57,344 u32 bins below the largest logit's key (dynamic shared memory). */
    static final int SAMPLE_SMEM_BYTES = 1024 * 56 * 4;

    /**
     * One row's sampling parameters: temperature 0 is greedy; topK 0, topP 1 and minP 0 are off; repetitionPenalty 1
     * (Hugging Face's, over every token the sequence has seen: prompt and generated) and presencePenalty 0 (OpenAI's,
     * subtracted once from every token already generated) are off.
     */
    public record RowParams(float temperature, int topK, float topP, float minP, float repetitionPenalty, float presencePenalty) {
        public RowParams {
            if (!(temperature >= 0) || !Float.isFinite(temperature)) throw new IllegalArgumentException("temperature must be >= 0, got " + temperature);
            if (topK < 0 || topK > (1 << 24)) throw new IllegalArgumentException("top-k must be in [0, 2^24], got " + topK);
            if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
            if (!(minP >= 0 && minP < 1)) throw new IllegalArgumentException("min-p must be in [0, 1), got " + minP);
            if (!(repetitionPenalty > 0) || !Float.isFinite(repetitionPenalty)) {
                throw new IllegalArgumentException("repetition penalty must be > 0 (1 = off), got " + repetitionPenalty);
            }
            if (!Float.isFinite(presencePenalty)) throw new IllegalArgumentException("presence penalty must be finite, got " + presencePenalty);
        }

        /** Without penalties. */
        public RowParams(float temperature, int topK, float topP, float minP) {
            this(temperature, topK, topP, minP, 1f, 0f);
        }

        public static RowParams greedy() {
            return new RowParams(0, 0, 1, 0);
        }

        public boolean hasPenalties() {
            return repetitionPenalty != 1f || presencePenalty != 0f;
        }
    }

    private final Kernel argmax;
    private final Kernel sample;
    private final int maxRows;
    private final DeviceBuffer partials;
    private final DeviceBuffer counters;

    public SamplingKernel(KernelLibrary lib, int maxRows) {
        if (maxRows < 1) throw new IllegalArgumentException("sampling: maxRows must be >= 1, got " + maxRows);
        this.argmax = lib.kernel("sampling", "argmax_rows");
        this.sample = lib.kernel("sampling", "sample_rows").allowDynamicSharedMemory(SAMPLE_SMEM_BYTES);
        this.maxRows = maxRows;
        this.partials = lib.gpu().allocate(8L * ARGMAX_PARTS * maxRows, "sampling.argmax_partials");
        try {
            this.counters = lib.gpu().allocate(4L * maxRows, "sampling.argmax_counters");
            // each row's last block resets its counter, so zeroing once here is enough
            try (Stream init = lib.gpu().createStream()) {
                counters.fill32(0, init);
                init.synchronize();
            }
        } catch (RuntimeException e) {
            partials.close();
            throw e;
        }
    }

    /**
     * A launch's tensors (row counts are capacities, checked per launch): {@code logits [≥rows, stride]} bf16 (the stride a
     * multiple of 8); {@code outIds [≥rows]} i32; {@code params [≥rows, 8]} f32, each row's {@link #writeParams} record;
     * {@code rng [≥rows, 2]} u64, each row's {@link #writeRng} state; {@code rowSlot [≥rows]} i32, each row's sequence slot
     * of {@code history} (−1: a padding row). Greedy needs none of the last four, or params, rowSlot and the history for the
     * penalties; sampling needs params and rng, plus rowSlot and the history for the penalties. Absent ones are null.
     */
    public record Args(DeviceTensor logits, DeviceTensor params, DeviceTensor rng, DeviceTensor rowSlot, TokenHistory history,
                       DeviceTensor outIds) {
        static final String OP = "sampling";

        public Args {
            int any = TensorContract.ANY;
            TensorContract.require(OP, "logits", logits, DType.BF16, any, any);
            int stride = TensorContract.positive(OP, "logits", logits, 1);
            if (stride % 8 != 0) throw TensorContract.fail(OP, "logits", "row stride must be a multiple of 8, got " + logits);
            TensorContract.optional(OP, "params", params, DType.F32, any, PARAMS_BYTES / 4);
            TensorContract.optional(OP, "rng", rng, DType.U64, any, RNG_BYTES / 8);
            TensorContract.optional(OP, "rowSlot", rowSlot, DType.I32, any);
            if (history != null) {
                TensorContract.require(OP, "params", params, DType.F32, any, PARAMS_BYTES / 4);
                TensorContract.require(OP, "rowSlot", rowSlot, DType.I32, any);
            } else if (rowSlot != null) {
                throw TensorContract.fail(OP, "rowSlot", "needs the token history its slots index, got " + rowSlot);
            }
            TensorContract.require(OP, "outIds", outIds, DType.I32, any);
        }

        /** Elements between two logits rows. */
        public int stride() {
            return logits.dim(1);
        }

        /** The arguments a greedy ({@code sampling} false) or sampling launch over {@code rows} reads are there and fit. */
        void checkRows(int rows, boolean sampling) {
            if (sampling && params == null) throw TensorContract.fail(OP, "params", "is missing: sampling reads each row's parameters");
            if (sampling && rng == null) throw TensorContract.fail(OP, "rng", "is missing: sampling draws from each row's generator");
            TensorContract.rows(OP, "logits", logits, rows);
            if (history != null || sampling) TensorContract.rows(OP, "params", params, rows);
            if (sampling) TensorContract.rows(OP, "rng", rng, rows);
            if (history != null) TensorContract.rows(OP, "rowSlot", rowSlot, rows);
            TensorContract.rows(OP, "outIds", outIds, rows);
        }
    }

    /**
     * {@code outIds[r] = argmax(logits[r, 0:vocab])} over the first {@code rows} rows (lowest id on ties, −1 if the row has
     * a NaN). With a history in {@code a}: the rows' penalties first ({@code params}: only the penalties are read) over each
     * row's slot of the history, then the picked id marked seen and generated there; a row whose {@code rowSlot} is −1 is
     * skipped (id −1, nothing read or marked). Without one: no penalties, no history.
     */
    public void greedy(Stream s, Args a, int vocab, int rows) {
        int stride = a.stride();
        check(stride, vocab, rows);
        TokenHistory h = a.history();
        if (h != null) checkHistory(vocab, a.params().address(), a.rowSlot().address(), h);
        a.checkRows(rows, false);
        if (h == null) {
            launchArgmax(s, a.logits().address(), stride, vocab, rows, 0, 0, 0, 0, 0, 0, a.outIds().address());
        } else {
            launchArgmax(s, a.logits().address(), stride, vocab, rows, a.params().address(), a.rowSlot().address(), h.seen(),
                    h.generated(), h.words(), h.slots(), a.outIds().address());
        }
    }

    private void launchArgmax(Stream s, long logits, int stride, int vocab, int rows, long params, long rowSlot, long seen,
                              long generated, int words, int slots, long outIds) {
        int partLen = ((vocab + ARGMAX_PARTS - 1) / ARGMAX_PARTS + 7) / 8 * 8;
        argmax.args().ptr(logits).i32(stride).i32(vocab).i32(partLen).ptr(params).ptr(rowSlot).ptr(seen).ptr(generated).i32(words)
                .i32(slots).ptr(partials.address()).ptr(counters.address()).ptr(outIds);
        argmax.launch(s, Dim3.of(ARGMAX_PARTS, rows), Dim3.of(256), 0);
    }

    /**
     * One token per row of the first {@code rows} following {@code params[r]}; sampled rows (temperature > 0) advance
     * {@code rng[r]}'s offset by one. With a history in {@code a}: penalties included, over each row's slot of the history,
     * the picked id marked seen and generated there, and rows whose {@code rowSlot} is −1 skipped (id −1, generator
     * untouched). Without one: penalties ignored.
     */
    public void sample(Stream s, Args a, int vocab, int rows) {
        int stride = a.stride();
        check(stride, vocab, rows);
        a.checkRows(rows, true);
        TokenHistory h = a.history();
        if (h != null) checkHistory(vocab, a.params().address(), a.rowSlot().address(), h);
        if (h == null) {
            launchSample(s, a.logits().address(), stride, vocab, rows, a.params().address(), a.rng().address(), 0, 0, 0, 0, 0,
                    a.outIds().address());
        } else {
            launchSample(s, a.logits().address(), stride, vocab, rows, a.params().address(), a.rng().address(), a.rowSlot().address(),
                    h.seen(), h.generated(), h.words(), h.slots(), a.outIds().address());
        }
    }

    private void launchSample(Stream s, long logits, int stride, int vocab, int rows, long params, long rng, long rowSlot, long seen,
                              long generated, int words, int slots, long outIds) {
        sample.args().ptr(logits).i32(stride).i32(vocab).ptr(params).ptr(rng).ptr(rowSlot).ptr(seen).ptr(generated).i32(words)
                .i32(slots).ptr(outIds);
        sample.launch(s, Dim3.of(rows), Dim3.of(1024), SAMPLE_SMEM_BYTES);
    }

    private void check(int stride, int vocab, int rows) {
        if (rows < 1 || rows > maxRows) throw new IllegalArgumentException("sampling: rows must be in [1, " + maxRows + "], got " + rows);
        if (vocab < 1 || vocab > stride) throw new IllegalArgumentException("sampling: vocab must be in [1, stride " + stride + "], got " + vocab);
        if (stride % 8 != 0) throw new IllegalArgumentException("sampling: the logits row stride must be a multiple of 8, got " + stride);
    }

    static void checkHistory(int vocab, long params, long rowSlot, TokenHistory history) {
        if (history == null) throw new IllegalArgumentException("sampling: a token history is required");
        if (params == 0 || rowSlot == 0) throw new IllegalArgumentException("sampling: params and rowSlot must be device arrays");
        if (vocab > history.vocab()) {
            throw new IllegalArgumentException("sampling: " + vocab + " candidate ids, the token history covers " + history.vocab());
        }
    }

    /** Encodes row {@code row}'s parameters into a host staging segment for {@code params}. */
    public static void writeParams(MemorySegment host, int row, RowParams p) {
        long o = (long) row * PARAMS_BYTES;
        host.set(ValueLayout.JAVA_FLOAT_UNALIGNED, o, p.temperature());
        host.set(ValueLayout.JAVA_FLOAT_UNALIGNED, o + 4, (float) p.topK());
        host.set(ValueLayout.JAVA_FLOAT_UNALIGNED, o + 8, p.topP());
        host.set(ValueLayout.JAVA_FLOAT_UNALIGNED, o + 12, p.minP());
        host.set(ValueLayout.JAVA_FLOAT_UNALIGNED, o + 16, p.repetitionPenalty());
        host.set(ValueLayout.JAVA_FLOAT_UNALIGNED, o + 20, p.presencePenalty());
        host.set(ValueLayout.JAVA_FLOAT_UNALIGNED, o + 24, 0f);
        host.set(ValueLayout.JAVA_FLOAT_UNALIGNED, o + 28, 0f);
    }

    /** Encodes row {@code row}'s generator state (a request's seed, and how many draws it has made). */
    public static void writeRng(MemorySegment host, int row, long seed, long offset) {
        host.set(ValueLayout.JAVA_LONG_UNALIGNED, (long) row * RNG_BYTES, seed);
        host.set(ValueLayout.JAVA_LONG_UNALIGNED, (long) row * RNG_BYTES + 8, offset);
    }

    @Override
    public void close() {
        partials.close();
        counters.close();
    }

    // ------------------------------------------------------------------------------------------ CPU references
    // The rules themselves are SamplingRules' (shared with the CPU Sampler); these adapt them to the kernels' formats.

    /**
     * The penalized logits as the kernels see them: each bf16 logit promoted to fp32, then {@link SamplingRules#penalize}
     * (the CPU Sampler's rules, in fp32, saturating at ±Float.MAX_VALUE). {@code seen}/{@code generated} may be null
     * (nothing seen). The greedy kernels compare these values; the stochastic path their bf16 roundings
     * ({@link #roundPenalized}).
     */
    public static float[] penalize(float[] logits, int vocab, RowParams p, java.util.BitSet seen, java.util.BitSet generated) {
        return SamplingRules.penalize(logits, vocab, seen, generated, p.repetitionPenalty(), p.presencePenalty());
    }

    /** {@link #penalize} with every penalized value rounded to bf16: the logits the stochastic kernel draws from. */
    public static float[] roundPenalized(float[] logits, int vocab, RowParams p, java.util.BitSet seen, java.util.BitSet generated) {
        float[] l = penalize(logits, vocab, p, seen, generated);
        for (int i = 0; i < vocab; i++) l[i] = dev.jnext.numeric.Bf16.round(l[i]);  // unpenalized bf16 logits stay as they are
        return l;
    }
    /** Philox4x32-10 (Random123): 10 rounds on a 128-bit counter with a 64-bit key. */
    public static int[] philox(int[] counter, int[] key) {
        int c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3], k0 = key[0], k1 = key[1];
        for (int r = 0; r < 10; r++) {
            long p0 = (0xD2511F53L) * (c0 & 0xffffffffL);
            long p1 = (0xCD9E8D57L) * (c2 & 0xffffffffL);
            int hi0 = (int) (p0 >>> 32), lo0 = (int) p0, hi1 = (int) (p1 >>> 32), lo1 = (int) p1;
            c0 = hi1 ^ c1 ^ k0;
            c1 = lo1;
            c2 = hi0 ^ c3 ^ k1;
            c3 = lo0;
            k0 += 0x9E3779B9;
            k1 += 0xBB67AE85;
        }
        return new int[]{c0, c1, c2, c3};
    }
}
