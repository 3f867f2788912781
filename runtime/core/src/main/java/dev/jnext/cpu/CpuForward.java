package dev.jnext.cpu;

import dev.jnext.JnextException;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.weights.Tensor;
import dev.jnext.cpu.ops.Linear;

import java.util.ArrayList;
import java.util.List;

/**
 * The CPU reference forward pass (fp32 throughout, weights converted from their stored dtype). One call runs the
 * new tokens of several independent sequences — each a prefill, a single decode token or a multi-token
 * continuation of what its slot already holds — flattened into one [tokens, H] activation, with the
 * sequence-mixing cores run per sequence.
 */
public final class CpuForward {

    /**
     * The new tokens of one sequence (its slot in the {@link CpuState}).
     *
     * @param prompt    the tokens are a prompt chunk: the delta rule runs chunked even for one token
     * @param captureAt token offsets in (0, tokens.length], ascending, after which to copy the sequence's GDN state
     *                  into {@code captured} ({@link SequenceSpan#captureAt()})
     * @param captured  one empty {@link StateSnapshot} per offset, filled by the call
     */
    public record SequenceInput(int slot, int[] tokens, boolean prompt, int[] captureAt, StateSnapshot[] captured) {
        /** Checks that the offsets are ascending, within the tokens, and have a snapshot each. */
        public SequenceInput {
            if (captureAt.length != captured.length) throw new IllegalArgumentException("one snapshot per capture offset");
            for (int i = 0; i < captureAt.length; i++) {
                if (captureAt[i] < 1 || captureAt[i] > tokens.length || (i > 0 && captureAt[i] <= captureAt[i - 1])) {
                    throw new IllegalArgumentException("capture offsets must ascend within 1.." + tokens.length);
                }
            }
        }

        /** Tokens run as a single call would run them, nothing captured. */
        public SequenceInput(int slot, int[] tokens) {
            this(slot, tokens, false, new int[0], new StateSnapshot[0]);
        }
    }

    private final Qwen3NextModel model;
    private final CpuModel weights;
    private final ModelConfig config;

    /** A forward pass over {@code model} (one loaded by {@link Qwen3NextModel#load}); it holds no state of its own. */
    public CpuForward(Qwen3NextModel model) {
        this.model = model;
        this.weights = CpuModel.of(model);
        this.config = model.config();
    }

    /** The model this forward pass runs. */
    public Qwen3NextModel model() {
        return model;
    }

    /** A state for {@code slots} concurrent sequences of this model. */
    public CpuState newState(int slots) {
        return new CpuState(config, slots);
    }

    /**
     * Runs the inputs and advances their slots. Returns, per input, the logits of every new token
     * ([tokens·vocab], row-major) when {@code allLogits}, else those of its last token ([vocab]).
     */
    public List<float[]> forward(CpuState state, List<SequenceInput> inputs, boolean allLogits) {
        int h = config.hiddenSize();
        int vocab = config.vocabSize();
        List<SequenceSpan> spans = new ArrayList<>();
        int rows = 0;
        for (SequenceInput in : inputs) {
            state.checkSlot(in.slot());
            if (in.tokens().length == 0) throw new JnextException("sequence in slot " + in.slot() + " has no tokens");
            for (SequenceSpan s : spans) {
                if (s.slot() == in.slot()) throw new JnextException("slot " + in.slot() + " appears twice in one call");
            }
            spans.add(new SequenceSpan(in.slot(), rows, in.tokens().length, state.position(in.slot()), in.prompt(),
                    in.captureAt(), in.captured()));
            rows += in.tokens().length;
        }
        float[] x = new float[rows * h];
        Tensor embed = weights.embedTokens();
        for (int i = 0; i < inputs.size(); i++) {
            int[] tokens = inputs.get(i).tokens();
            for (int t = 0; t < tokens.length; t++) {
                int id = tokens[t];
                if (id < 0 || id >= vocab) {
                    throw new JnextException("token id " + id + " at position " + t + " is outside the vocabulary 0.."
                            + (vocab - 1));
                }
                Tensor.copyToFloats(embed.data(), embed.dtype(), (long) id * h, x, (spans.get(i).firstRow() + t) * h, h);
            }
        }
        for (DecoderLayer layer : weights.layers()) layer.forward(x, rows, spans, state);
        for (SequenceSpan s : spans) state.advance(s.slot(), s.rows());

        int outRows = allLogits ? rows : spans.size();
        float[] normed = new float[outRows * h];
        if (allLogits) {
            weights.finalNorm().forward(x, 0, rows, normed, 0);
        } else {
            for (int i = 0; i < spans.size(); i++) {
                SequenceSpan s = spans.get(i);
                weights.finalNorm().forward(x, (s.firstRow() + s.rows() - 1) * h, 1, normed, i * h);
            }
        }
        float[] logits = new float[Math.multiplyExact(outRows, vocab)];
        Linear.forward(weights.lmHead(), normed, 0, outRows, logits, 0);
        List<float[]> out = new ArrayList<>(spans.size());
        for (int i = 0; i < spans.size(); i++) {
            SequenceSpan s = spans.get(i);
            int from = allLogits ? s.firstRow() : i;
            int n = allLogits ? s.rows() : 1;
            float[] part = new float[n * vocab];
            System.arraycopy(logits, from * vocab, part, 0, n * vocab);
            out.add(part);
        }
        return out;
    }
}
