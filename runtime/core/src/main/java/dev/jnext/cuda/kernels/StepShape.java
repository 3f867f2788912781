package dev.jnext.cuda.kernels;

/**
 * The fixed shape of one forward step as every launcher sees it, chosen by the executor once per bucket: a CUDA graph
 * captured with one shape is valid for every batch that fits it. Grids, split counts and path choices come from this
 * record only, never from the live batch; whatever varies inside a bucket (sequence boundaries, positions, slots, page
 * tables, sampled ids) is device metadata.
 *
 * @param tokens activation rows of the step (the bucket; rows past the real tokens belong to a padding entry)
 * @param seqs   batch entries the metadata describes (real sequences, then padding or empty entries)
 * @param decode every entry brings exactly one token and row i is entry i ({@code tokens == seqs})
 */
public record StepShape(int tokens, int seqs, boolean decode) {
    public StepShape {
        if (tokens < 1) throw new IllegalArgumentException("step shape: tokens must be >= 1, got " + tokens);
        if (seqs < 1) throw new IllegalArgumentException("step shape: seqs must be >= 1, got " + seqs);
        if (decode && tokens != seqs) {
            throw new IllegalArgumentException("step shape: a decode step has one token per entry, got " + tokens + " tokens for "
                    + seqs + " entries");
        }
    }

    public static StepShape decode(int batch) {
        return new StepShape(batch, batch, true);
    }

    public static StepShape prefill(int tokens, int seqs) {
        return new StepShape(tokens, seqs, false);
    }
}
