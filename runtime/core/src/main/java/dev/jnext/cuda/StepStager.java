package dev.jnext.cuda;

import dev.jnext.JnextException;
import dev.jnext.cuda.CudaModel.Input;
import dev.jnext.cuda.CudaModel.Logits;
import dev.jnext.cuda.SequenceSlots.Sequence;
import dev.jnext.cuda.kernels.EmbeddingKernel;
import dev.jnext.cuda.kernels.SamplingKernel;
import dev.jnext.cuda.kernels.StepShape;
import dev.jnext.cuda.state.AttentionBatch;
import dev.jnext.cuda.state.StepMetadata;

import java.util.ArrayList;
import java.util.List;

/**
 * Turns a step's inputs into the step metadata every executor reads: checks the inputs against the slots, the
 * vocabulary, the context and the step budget, reserves their KV pages, and stages the batch entries (real sequences,
 * then padding), token ids, GDN slots, logits rows and sampling rows before one upload.
 */
final class StepStager {

    /**
     * What a step's inputs add up to.
     *
     * @param total         new tokens of every input
     * @param logitRows     logits rows a prefill-shaped step computes (every token of an {@link Logits#ALL} input, else
     *                      one per input that samples or asks for the last token's)
     * @param decode        every input brings one token
     * @param sampleVocab   ids sampled below it (the smallest vocabulary limit of the sampled inputs)
     */
    record Batch(int total, int logitRows, boolean decode, boolean anySample, boolean anyStochastic, boolean anyLogits,
                 int sampleVocab) {}

    private final RunnerResources r;
    private final SequenceSlots slots;

    StepStager(RunnerResources r, SequenceSlots slots) {
        this.r = r;
        this.slots = slots;
    }

    /** Refuses an empty step and one of more sequences than there are slots. */
    void checkCount(List<Input> inputs) {
        if (inputs.isEmpty()) throw new JnextException("a step needs at least one input");
        if (inputs.size() > r.options.maxSequences()) {
            throw new JnextException("a step of " + inputs.size() + " sequences exceeds the " + r.options.maxSequences() + " slots");
        }
    }

    /** Checks every input (open slot, once per step, ids in the vocabulary, room in the context) and the step budget. */
    Batch validate(List<Input> inputs) {
        int total = 0, logitRows = 0;
        boolean decode = true, anySample = false, anyStochastic = false, anyLogits = false;
        int sampleVocab = r.config.vocabSize();
        boolean[] seen = new boolean[slots.size()];
        for (Input in : inputs) {
            Sequence s = slots.get(in.slot());
            if (seen[in.slot()]) throw new JnextException("sequence slot " + in.slot() + " appears twice in one step");
            seen[in.slot()] = true;
            EmbeddingKernel.validateIds(in.tokens(), in.tokens().length, r.config.vocabSize());
            if ((long) s.position + in.tokens().length > r.maxContext) {
                throw new JnextException("sequence slot " + in.slot() + ": " + s.position + " + " + in.tokens().length
                        + " tokens exceed the context of " + r.maxContext + " tokens");
            }
            total += in.tokens().length;
            decode &= in.tokens().length == 1;
            anySample |= in.sample();
            if (in.sample()) sampleVocab = Math.min(sampleVocab, s.vocabLimit);
            anyStochastic |= in.sample() && s.params.temperature() > 0;
            anyLogits |= in.logits() != Logits.NONE;
            logitRows += in.logits() == Logits.ALL ? in.tokens().length : (in.sample() || in.logits() == Logits.LAST ? 1 : 0);
        }
        if (total > r.options.maxStepTokens()) {
            throw new JnextException("a step of " + total + " tokens exceeds the step budget of " + r.options.maxStepTokens() + " tokens");
        }
        return new Batch(total, logitRows, decode, anySample, anyStochastic, anyLogits, sampleVocab);
    }

    /** KV pages for the new tokens (all or nothing per sequence). */
    void reserve(List<Input> inputs) {
        for (Input in : inputs) {
            if (!slots.reserve(in.slot(), slots.get(in.slot()).position + in.tokens().length)) {
                throw new JnextException("KV cache full: sequence slot " + in.slot() + " cannot grow to "
                        + (slots.get(in.slot()).position + in.tokens().length) + " tokens");
            }
        }
    }

    /**
     * Stages and uploads the metadata of a step of {@code shape} that computes {@code rows} logits rows
     * ({@code decodePath}: one per batch entry, padding included); returns each input's first logits row.
     */
    int[] stage(List<Input> inputs, StepShape shape, boolean decodePath, int rows, int total) {
        StepMetadata meta = r.meta;
        if (rows > r.acts.maxLogitRows()) {
            throw new JnextException("a step asking for " + rows + " logits rows exceeds the " + r.acts.maxLogitRows() + " it was sized for");
        }
        int n = inputs.size();
        List<AttentionBatch.Sequence> entries = new ArrayList<>(shape.seqs());
        for (Input in : inputs) {
            Sequence s = slots.get(in.slot());
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
        int row = 0, lr = 0;
        int[] firstLogitRow = new int[n];
        for (int i = 0; i < n; i++) {
            Input in = inputs.get(i);
            Sequence s = slots.get(in.slot());
            meta.setGdnSlot(i, in.slot());
            for (int t = 0; t < in.tokens().length; t++) meta.setToken(row + t, in.tokens()[t], in.slot());
            int last = row + in.tokens().length - 1;
            firstLogitRow[i] = lr;
            if (decodePath) {
                setLogitRow(lr++, i, in.sample() ? in.slot() : -1, s);
            } else if (in.logits() == Logits.ALL) {
                for (int t = row; t <= last; t++) setLogitRow(lr++, t, t == last && in.sample() ? in.slot() : -1, s);
            } else if (in.sample() || in.logits() == Logits.LAST) {
                setLogitRow(lr++, last, in.sample() ? in.slot() : -1, s);
            }
            row += in.tokens().length;
        }
        meta.upload(r.stream);
        return firstLogitRow;
    }

    private void setLogitRow(int lr, int row, int sampleSlot, Sequence s) {
        r.meta.setLogitRow(lr, row, sampleSlot, s.seed, s.draws);
        SamplingKernel.writeParams(r.meta.paramsStaging(), lr, s.params);
    }
}
