package dev.jnext.cuda;

import dev.jnext.JnextException;
import dev.jnext.cuda.CudaModel.StepPath;
import dev.jnext.cuda.kernels.StepShape;

/**
 * Which executor path runs a step and at what padded shape: a pure function of the {@link CapturePolicy} and the step's
 * size (no GPU), so the choice and its refusals are tested on the CPU.
 *
 * @param path          the executor path
 * @param shape         the shape every launch of the step uses; {@code null} only for a bucketed decode path whose batch
 *                      is above the largest bucket, which {@link #checkDecodeBucket} refuses
 * @param prefillBucket the step's prefill token bucket (−1: above the largest, or not looked up for a decode step)
 * @param decodeBucket  the step's decode batch bucket on a bucketed decode path (−1: none)
 * @param eagerFallback prefill graphs are on but the step is above their largest bucket, so it runs eagerly (logged)
 * @param seqs          the step's sequences
 */
record StepRoute(StepPath path, StepShape shape, int prefillBucket, int decodeBucket, boolean eagerFallback, int seqs) {

    /**
     * The route of a step of {@code seqs} sequences carrying {@code total} new tokens ({@code decode}: one each);
     * {@code force} picks the path ({@code null}: the policy decides). Refuses a path the step or the options cannot
     * take, except the decode-bucket refusals ({@link #checkDecodeBucket}).
     */
    static StepRoute choose(CapturePolicy policy, StepPath force, int seqs, int total, boolean decode) {
        int prefillBucket = -1;
        if (!decode || (force != null && !force.decode())) prefillBucket = policy.prefill().bucketFor(total);
        StepPath path = force != null ? force
                : decode ? (policy.decodeGraphs() ? StepPath.DECODE_GRAPH : StepPath.EAGER_DECODE)
                : policy.prefillGraphs() && prefillBucket > 0 ? StepPath.PIECEWISE_PREFILL : StepPath.EAGER_PREFILL;
        boolean eagerFallback = force == null && !decode && policy.prefillGraphs() && prefillBucket < 0;
        if (path.decode() && !decode) throw new JnextException("a decode path needs one token per sequence");
        if ((path == StepPath.PIECEWISE_PREFILL || path == StepPath.EAGER_PREFILL_BUCKET) && prefillBucket < 0) {
            throw new JnextException("a step of " + total + " tokens is above the largest prefill bucket");
        }
        if (path == StepPath.PIECEWISE_PREFILL && !policy.prefillGraphs()) {
            throw new JnextException("prefill graphs are off (CudaOptions.prefill is EAGER)");
        }
        if (prefillBucket > policy.maxTokens() && path != StepPath.EAGER_PREFILL) {
            throw new JnextException("prefill bucket " + prefillBucket + " exceeds the " + policy.maxTokens() + " activation rows");
        }
        boolean bucketed = bucketed(path);
        int decodeBucket = bucketed ? policy.decode().bucketFor(seqs) : -1;
        StepShape shape;
        if (bucketed) shape = decodeBucket < 0 ? null : StepShape.decode(decodeBucket);
        else if (path == StepPath.EAGER_DECODE) shape = StepShape.decode(seqs);
        else if (path == StepPath.EAGER_PREFILL) shape = StepShape.prefill(total, seqs);
        else shape = StepShape.prefill(prefillBucket, policy.maxEntries());  // rows [total, bucket): one padding entry
        return new StepRoute(path, shape, prefillBucket, decodeBucket, eagerFallback, seqs);
    }

    /**
     * Refuses a bucketed decode path whose batch no bucket holds, and the decode-graph path when decode graphs are off.
     * The runner checks these after reserving the step's KV pages, where it always has.
     */
    void checkDecodeBucket(CapturePolicy policy) {
        if (bucketed(path) && decodeBucket < 0) {
            throw new JnextException("a decode batch of " + seqs + " exceeds the largest bucket " + policy.decode().largest());
        }
        // the runner captures every decode bucket at load or fails to load: a graph exists iff decode graphs are on
        if (path == StepPath.DECODE_GRAPH && !policy.decodeGraphs()) {
            throw new JnextException("decode graphs are off (CudaOptions.decodeGraphs)");
        }
    }

    /** The decode paths that pad the batch to its bucket. */
    private static boolean bucketed(StepPath path) {
        return path == StepPath.DECODE_GRAPH || path == StepPath.EAGER_DECODE_BUCKET;
    }
}
