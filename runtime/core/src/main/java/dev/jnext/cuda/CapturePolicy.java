package dev.jnext.cuda;

import dev.jnext.backend.PrefillMode;

/**
 * The one owner of the capture sizes of a CUDA runner, derived from its {@link CudaOptions} without a GPU: the decode
 * batch buckets, the prefill token buckets, and the batch entries and activation rows they need.
 *
 * @param decode        decode batch buckets: sglang's up to the first one ≥ the slot count (captured when
 *                      {@code decodeGraphs}; {@link CudaModel.StepPath#EAGER_DECODE_BUCKET} pads to them either way)
 * @param prefill       prefill token buckets: with prefill graphs, the captured ones (up to
 *                      {@link CudaOptions#maxPrefillBucket()} capped at the activation rows, or to
 *                      min({@value #PREFILL_CAP}, the step budget)); in eager mode sglang's whole list up to
 *                      {@value #PREFILL_CAP}, which {@link CudaModel.StepPath#EAGER_PREFILL_BUCKET} pads to
 * @param decodeGraphs  one graph per decode bucket is captured at load
 * @param prefillGraphs prefill buckets are captured (the piecewise modes)
 * @param maxEntries    batch entries of every step: the slots plus the prefill padding entry, or the largest captured
 *                      decode bucket if that is more
 * @param maxTokens     activation rows: the step budget, or {@code maxEntries} if that is more
 */
record CapturePolicy(Buckets decode, Buckets prefill, boolean decodeGraphs, boolean prefillGraphs, int maxEntries,
                     int maxTokens) {

    /** sglang's largest prefill token bucket: the default cap of the captured prefill buckets. */
    static final int PREFILL_CAP = 8192;

    /** The policy of {@code o}. */
    static CapturePolicy of(CudaOptions o) {
        Buckets decode = Buckets.decode(o.maxSequences());
        int decodeMax = o.decodeGraphs() ? decode.largest() : o.maxSequences();
        int maxEntries = Math.max(o.maxSequences() + 1, decodeMax);
        int maxTokens = Math.max(o.maxStepTokens(), maxEntries);
        boolean prefillGraphs = o.prefill() != PrefillMode.EAGER;
        Buckets prefill = !prefillGraphs ? Buckets.prefill(PREFILL_CAP)
                : Buckets.prefill(o.maxPrefillBucket() > 0 ? Math.min(o.maxPrefillBucket(), maxTokens)
                        : Math.min(PREFILL_CAP, o.maxStepTokens()));
        return new CapturePolicy(decode, prefill, o.decodeGraphs(), prefillGraphs, maxEntries, maxTokens);
    }
}
