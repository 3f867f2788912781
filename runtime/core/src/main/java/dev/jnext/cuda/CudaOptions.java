package dev.jnext.cuda;

import dev.jnext.backend.KvBudget;
import dev.jnext.backend.PrefillMode;
import dev.jnext.backend.PrefixCacheOptions;
import dev.jnext.backend.Quantization;

import dev.jnext.JnextException;

/**
 * How the CUDA runner sizes itself and which executors it uses; one immutable record passed down from the CLI, the
 * engine options or JMH.
 *
 * @param maxSequences   concurrent sequence slots (GDN state, KV page tables, sampling history)
 * @param maxStepTokens  most new tokens one forward step carries (all sequences together); activations are sized for it
 * @param maxContext     most tokens one sequence may hold; 0 = the model's max_position_embeddings, capped at
 *                       {@value #DEFAULT_CONTEXT_CAP} (page tables are sized for it)
 * @param kvBudget       how much KV cache to allocate
 * @param prefill        how prefill/extend steps run
 * @param decodeGraphs   replay one captured graph per decode batch bucket (else decode steps run eagerly)
 * @param maxLogitRows   most logits rows one step produces (sampled sequences, or every token when scoring)
 * @param moeDecodeMaxTokens steps of at most this many rows take the MoE decode kernels, larger ones the grouped GEMMs
 * @param maxPrefillBucket the largest prefill token bucket captured (piecewise modes); 0 = min(8192, maxStepTokens).
 *                       A step above it runs eagerly at its exact size.
 * @param lazyCapture    capture a prefill bucket's pieces on its first use instead of all at load
 * @param fp32GdnPrefill run the gated delta rule of prefill steps token by token in fp32 (as decode steps do) instead of
 *                       the chunked tensor-core kernel: slower, but prefill and decode then agree more closely
 * @param gpu            the GPU to run on, by its index in the driver's order
 * @param quantize       quantization applied while the checkpoint loads ({@link Quantization}: FP8 experts from a bf16 one)
 * @param prefixCache    prefix caching ({@link PrefixCacheOptions}): its KV shares the KV pool's pages, its GDN state
 *                       snapshots get their own allocation in the memory plan
 */
public record CudaOptions(int maxSequences, int maxStepTokens, int maxContext, KvBudget kvBudget, PrefillMode prefill,
                          boolean decodeGraphs, int maxLogitRows, int moeDecodeMaxTokens, int maxPrefillBucket,
                          boolean lazyCapture, boolean fp32GdnPrefill, int gpu, Quantization quantize,
                          PrefixCacheOptions prefixCache) {

    /** Logits rows of {@link #defaults()}: enough for scoring a 512-token chunk. */
    public static final int DEFAULT_MAX_LOGIT_ROWS = 512;

    /** The context a sequence gets when {@code maxContext} is 0 and the model's is longer. */
    public static final int DEFAULT_CONTEXT_CAP = 32768;

    /** Checks every field; a bad value is a {@link JnextException} naming it. */
    public CudaOptions {
        if (maxSequences < 1 || maxSequences > 4096) throw new JnextException("sequence slots must be in 1..4096, got " + maxSequences);
        if (maxStepTokens < 1) throw new JnextException("step token budget must be at least 1, got " + maxStepTokens);
        if (maxContext < 0) throw new JnextException("max context must be >= 0 (0 = the model's), got " + maxContext);
        if (maxLogitRows < 1) throw new JnextException("max logits rows must be at least 1, got " + maxLogitRows);
        if (moeDecodeMaxTokens < 0) throw new JnextException("MoE decode rows must be >= 0, got " + moeDecodeMaxTokens);
        if (kvBudget == null || prefill == null) throw new JnextException("KV budget and prefill mode are required");
        if (gpu < 0) throw new JnextException("the GPU index must be >= 0, got " + gpu);
        if (quantize == null) throw new JnextException("the quantization is required (Quantization.NONE: as stored)");
        if (prefixCache == null) throw new JnextException("the prefix cache options are required (PrefixCacheOptions.off(): none)");
        if (maxPrefillBucket < 0) throw new JnextException("largest prefill bucket must be >= 0 (0 = default), got " + maxPrefillBucket);
    }

    /** 16 sequences, 8,192-token steps, 90% of the free memory for KV, eager prefill, decode graphs on. */
    public static CudaOptions defaults() {
        return new CudaOptions(16, 8192, 0, new KvBudget.MemoryFraction(0.9), PrefillMode.EAGER, true, DEFAULT_MAX_LOGIT_ROWS, 8, 0, false, false, 0,
                Quantization.NONE, PrefixCacheOptions.off());
    }

    /** These options with {@code maxSequences} set to {@code n}. */
    public CudaOptions withMaxSequences(int n) {
        return new CudaOptions(n, maxStepTokens, maxContext, kvBudget, prefill, decodeGraphs, maxLogitRows, moeDecodeMaxTokens, maxPrefillBucket, lazyCapture, fp32GdnPrefill, gpu, quantize, prefixCache);
    }

    /** These options with {@code maxStepTokens} set to {@code n}. */
    public CudaOptions withMaxStepTokens(int n) {
        return new CudaOptions(maxSequences, n, maxContext, kvBudget, prefill, decodeGraphs, maxLogitRows, moeDecodeMaxTokens, maxPrefillBucket, lazyCapture, fp32GdnPrefill, gpu, quantize, prefixCache);
    }

    /** These options with {@code maxContext} set to {@code n}. */
    public CudaOptions withMaxContext(int n) {
        return new CudaOptions(maxSequences, maxStepTokens, n, kvBudget, prefill, decodeGraphs, maxLogitRows, moeDecodeMaxTokens, maxPrefillBucket, lazyCapture, fp32GdnPrefill, gpu, quantize, prefixCache);
    }

    /** These options with {@code kvBudget} set to {@code b}. */
    public CudaOptions withKvBudget(KvBudget b) {
        return new CudaOptions(maxSequences, maxStepTokens, maxContext, b, prefill, decodeGraphs, maxLogitRows, moeDecodeMaxTokens, maxPrefillBucket, lazyCapture, fp32GdnPrefill, gpu, quantize, prefixCache);
    }

    /** These options with {@code prefill} set to {@code m}. */
    public CudaOptions withPrefill(PrefillMode m) {
        return new CudaOptions(maxSequences, maxStepTokens, maxContext, kvBudget, m, decodeGraphs, maxLogitRows, moeDecodeMaxTokens, maxPrefillBucket, lazyCapture, fp32GdnPrefill, gpu, quantize, prefixCache);
    }

    /** These options with {@code decodeGraphs} set to {@code on}. */
    public CudaOptions withDecodeGraphs(boolean on) {
        return new CudaOptions(maxSequences, maxStepTokens, maxContext, kvBudget, prefill, on, maxLogitRows, moeDecodeMaxTokens, maxPrefillBucket, lazyCapture, fp32GdnPrefill, gpu, quantize, prefixCache);
    }

    /** These options with {@code maxLogitRows} set to {@code n}. */
    public CudaOptions withMaxLogitRows(int n) {
        return new CudaOptions(maxSequences, maxStepTokens, maxContext, kvBudget, prefill, decodeGraphs, n, moeDecodeMaxTokens, maxPrefillBucket, lazyCapture, fp32GdnPrefill, gpu, quantize, prefixCache);
    }

    /** These options with {@code maxPrefillBucket} set to {@code n}. */
    public CudaOptions withMaxPrefillBucket(int n) {
        return new CudaOptions(maxSequences, maxStepTokens, maxContext, kvBudget, prefill, decodeGraphs, maxLogitRows, moeDecodeMaxTokens, n, lazyCapture, fp32GdnPrefill, gpu, quantize, prefixCache);
    }

    /** These options with {@code lazyCapture} set to {@code lazy}. */
    public CudaOptions withLazyCapture(boolean lazy) {
        return new CudaOptions(maxSequences, maxStepTokens, maxContext, kvBudget, prefill, decodeGraphs, maxLogitRows, moeDecodeMaxTokens, maxPrefillBucket, lazy, fp32GdnPrefill, gpu, quantize, prefixCache);
    }

    /** These options with {@code fp32GdnPrefill} set to {@code on}. */
    public CudaOptions withFp32GdnPrefill(boolean on) {
        return new CudaOptions(maxSequences, maxStepTokens, maxContext, kvBudget, prefill, decodeGraphs, maxLogitRows, moeDecodeMaxTokens, maxPrefillBucket, lazyCapture, on, gpu, quantize, prefixCache);
    }

    /** These options on GPU {@code index}. */
    public CudaOptions withGpu(int index) {
        return new CudaOptions(maxSequences, maxStepTokens, maxContext, kvBudget, prefill, decodeGraphs, maxLogitRows, moeDecodeMaxTokens, maxPrefillBucket, lazyCapture, fp32GdnPrefill, index, quantize, prefixCache);
    }

    /** These options with {@code q} applied while the checkpoint loads ({@link Quantization}). */
    public CudaOptions withQuantize(Quantization q) {
        return new CudaOptions(maxSequences, maxStepTokens, maxContext, kvBudget, prefill, decodeGraphs, maxLogitRows, moeDecodeMaxTokens,
                maxPrefillBucket, lazyCapture, fp32GdnPrefill, gpu, q, prefixCache);
    }

    /** These options with prefix caching {@code p}. */
    public CudaOptions withPrefixCache(PrefixCacheOptions p) {
        return new CudaOptions(maxSequences, maxStepTokens, maxContext, kvBudget, prefill, decodeGraphs, maxLogitRows, moeDecodeMaxTokens,
                maxPrefillBucket, lazyCapture, fp32GdnPrefill, gpu, quantize, p);
    }
}
