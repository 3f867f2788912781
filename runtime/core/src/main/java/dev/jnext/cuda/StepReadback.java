package dev.jnext.cuda;

import dev.jnext.JnextException;
import dev.jnext.cuda.CudaModel.Input;
import dev.jnext.cuda.CudaModel.Logits;
import dev.jnext.cuda.CudaModel.Output;
import dev.jnext.cuda.SequenceSlots.Sequence;
import dev.jnext.cuda.kernels.DType;
import dev.jnext.cuda.kernels.DeviceTensor;
import dev.jnext.cuda.kernels.SamplingKernel;
import dev.jnext.cuda.kernels.StepShape;
import dev.jnext.cuda.kernels.TokenHistory;
import dev.jnext.cuda.kernels.TokenMaskKernel;
import dev.jnext.backend.TokenMask;
import dev.jnext.cuda.state.StepMetadata;
import dev.jnext.numeric.Bf16;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * The end of a step, after the executor's launches: sampling on the device (the penalties' token history first), the
 * sampled ids and the logits asked for copied to the host, then each sequence advanced by its tokens.
 */
final class StepReadback {
    private final RunnerResources r;
    private final SequenceSlots slots;
    /** The history's and the sampler's launches over the step metadata and the activations, built once. */
    private final TokenHistory.ObserveArgs observe;
    private final SamplingKernel.Args sample;
    private final TokenMaskKernel.Args mask;

    StepReadback(RunnerResources r, SequenceSlots slots) {
        this.r = r;
        this.slots = slots;
        StepMetadata meta = r.meta;
        Activations acts = r.acts;
        int tokens = meta.maxTokens(), rows = meta.maxLogitRows();
        this.observe = new TokenHistory.ObserveArgs(DeviceTensor.of("ids", meta.ids(), DType.I32, tokens),
                DeviceTensor.of("token_slots", meta.tokenSlots(), DType.I32, tokens));
        this.sample = new SamplingKernel.Args(acts.tensor("logits", acts.logits, DType.BF16, acts.maxLogitRows(), r.image.vocabStride()),
                DeviceTensor.of("params", meta.params(), DType.F32, rows, SamplingKernel.PARAMS_BYTES / 4),
                DeviceTensor.of("rng", meta.rng(), DType.U64, rows, SamplingKernel.RNG_BYTES / 8),
                DeviceTensor.of("sample_slots", meta.sampleSlots(), DType.I32, rows), r.history,
                acts.tensor("sampled", acts.sampled, DType.I32, acts.maxLogitRows()));
        this.mask = new TokenMaskKernel.Args(sample.logits());
    }

    /** Set by {@link CudaModel#profile} for the one step it runs: the sampler becomes the profile's last row. */
    StepProfile profiling;

    /** Samples and reads back a step of {@code shape} whose {@code rows} logits rows the executor computed. */
    List<Output> read(List<Input> inputs, StepStager.Batch batch, StepShape shape, int rows, int[] firstLogitRow) {
        Activations acts = r.acts;
        int[] sampled = null;
        StepProfile prof = profiling;
        if (prof != null && batch.anySample()) prof.mark(r.stream, "sampling", -1);
        if (prof != null && !batch.anySample()) prof.end(r.stream);
        float[] hostLogits = null;
        TokenMask[] masks = masks(inputs, rows, firstLogitRow);
        if (masks != null && batch.anyLogits()) hostLogits = copyLogits(rows); // raw logits, before the masks
        // every token a step feeds is seen (the repetition penalty's set), sampled or not: as the CPU Sampler's
        // observePrompt, so a prompt chunk of a step that samples nothing counts too
        r.history.observe(r.stream, observe, shape.tokens());
        if (batch.anySample()) {
            if (masks != null) r.masks.apply(r.stream, mask, masks, batch.sampleVocab(), rows);
            if (batch.anyStochastic()) {
                r.sampling.sample(r.stream, sample, batch.sampleVocab(), rows);
            } else {
                r.sampling.greedy(r.stream, sample, batch.sampleVocab(), rows);
            }
            if (prof != null) prof.end(r.stream);
            sampled = new int[rows];
            try (Arena a = Arena.ofConfined()) {
                MemorySegment host = a.allocate(4L * rows);
                acts.buffer().copyToHost(host, acts.sampled);
                MemorySegment.copy(host, ValueLayout.JAVA_INT, 0, sampled, 0, rows);
            }
        }
        if (batch.anyLogits() && hostLogits == null) hostLogits = copyLogits(rows);
        r.stream.synchronize();

        int n = inputs.size();
        List<Output> outputs = new ArrayList<>(n);
        int vocab = r.config.vocabSize();
        for (int i = 0; i < n; i++) {
            Input in = inputs.get(i);
            Sequence s = slots.get(in.slot());
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

    /** Each logits row's token mask (null: none), or null when no input has one. */
    private static TokenMask[] masks(List<Input> inputs, int rows, int[] firstLogitRow) {
        TokenMask[] out = null;
        for (int i = 0; i < inputs.size(); i++) {
            Input in = inputs.get(i);
            if (in.allowed() == null) continue;
            if (out == null) out = new TokenMask[rows];
            int lastRow = in.logits() == Logits.ALL ? firstLogitRow[i] + in.tokens().length - 1 : firstLogitRow[i];
            out[lastRow] = in.allowed();
        }
        return out;
    }

    /** The first {@code rows} logits rows as floats [rows · vocab] (bf16 on the device). */
    private float[] copyLogits(int rows) {
        int vocab = r.config.vocabSize(), stride = r.image.vocabStride();
        float[] out = new float[Math.multiplyExact(rows, vocab)];
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocate(2L * rows * stride);
            r.acts.buffer().copyToHost(host, r.acts.logits);
            for (int row = 0; row < rows; row++) {
                for (int v = 0; v < vocab; v++) {
                    out[row * vocab + v] = Bf16.toFloat(host.getAtIndex(ValueLayout.JAVA_SHORT, (long) row * stride + v));
                }
            }
        }
        return out;
    }
}
