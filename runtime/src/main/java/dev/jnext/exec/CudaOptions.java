package dev.jnext.exec;

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
 */
public record CudaOptions(int maxSequences, int maxStepTokens, int maxContext, KvBudget kvBudget, PrefillMode prefill,
                          boolean decodeGraphs, int maxLogitRows, int moeDecodeMaxTokens, int maxPrefillBucket,
                          boolean lazyCapture, boolean fp32GdnPrefill) {

    /** The context a sequence gets when {@code maxContext} is 0 and the model's is longer. */
    public static final int DEFAULT_CONTEXT_CAP = 32768;

    /** How prefill/extend steps run (decode steps are governed by {@code decodeGraphs}). */
    public enum PrefillMode {
        /** Every kernel launched one by one. */
        EAGER,
        /** One CUDA graph per token bucket for everything but the attention and linear-attention cores. */
        PIECEWISE,
        /** As {@link #PIECEWISE}, with the whole Gated DeltaNet layer eager. */
        GDN_LAYER_EAGER
    }

    /** The KV cache's size: a number of tokens, or a fraction of the device memory left after everything else. */
    public sealed interface KvBudget {
        /**
         * A budget in tokens.
         *
         * @param tokens KV for this many tokens, all sequences together
         */
        record Tokens(long tokens) implements KvBudget {
            /** Checks that it is at least one token. */
            public Tokens {
                if (tokens < 1) throw new JnextException("KV budget must be at least 1 token, got " + tokens);
            }
        }

        /**
         * A budget as a share of free memory.
         *
         * @param fraction this share, in (0, 1], of the memory left after weights, activations and state
         */
        record Fraction(double fraction) implements KvBudget {
            /** Checks the range. */
            public Fraction {
                if (!(fraction > 0 && fraction <= 1)) throw new JnextException("KV memory fraction must be in (0, 1], got " + fraction);
            }
        }
    }

    /** Checks every field; a bad value is a {@link JnextException} naming it. */
    public CudaOptions {
        if (maxSequences < 1 || maxSequences > 4096) throw new JnextException("sequence slots must be in 1..4096, got " + maxSequences);
        if (maxStepTokens < 1) throw new JnextException("step token budget must be at least 1, got " + maxStepTokens);
        if (maxContext < 0) throw new JnextException("max context must be >= 0 (0 = the model's), got " + maxContext);
        if (maxLogitRows < 1) throw new JnextException("max logits rows must be at least 1, got " + maxLogitRows);
        if (moeDecodeMaxTokens < 0) throw new JnextException("MoE decode rows must be >= 0, got " + moeDecodeMaxTokens);
        if (kvBudget == null || prefill == null) throw new JnextException("KV budget and prefill mode are required");
        if (maxPrefillBucket < 0) throw new JnextException("largest prefill bucket must be >= 0 (0 = default), got " + maxPrefillBucket);
    }

    /** 16 sequences, 8,192-token steps, 90% of the free memory for KV, eager prefill, decode graphs on. */
    public static CudaOptions defaults() {
        return new CudaOptions(16, 8192, 0, new KvBudget.Fraction(0.9), PrefillMode.EAGER, true, 512, 8, 0, false, false);
    }

    /** These options with {@code maxSequences} set to {@code n}. */
    public CudaOptions withMaxSequences(int n) {
        return new CudaOptions(n, maxStepTokens, maxContext, kvBudget, prefill, decodeGraphs, maxLogitRows, moeDecodeMaxTokens, maxPrefillBucket, lazyCapture, fp32GdnPrefill);
    }

    /** These options with {@code maxStepTokens} set to {@code n}. */
    public CudaOptions withMaxStepTokens(int n) {
        return new CudaOptions(maxSequences, n, maxContext, kvBudget, prefill, decodeGraphs, maxLogitRows, moeDecodeMaxTokens, maxPrefillBucket, lazyCapture, fp32GdnPrefill);
    }

    /** These options with {@code maxContext} set to {@code n}. */
    public CudaOptions withMaxContext(int n) {
        return new CudaOptions(maxSequences, maxStepTokens, n, kvBudget, prefill, decodeGraphs, maxLogitRows, moeDecodeMaxTokens, maxPrefillBucket, lazyCapture, fp32GdnPrefill);
    }

    /** These options with {@code kvBudget} set to {@code b}. */
    public CudaOptions withKvBudget(KvBudget b) {
        return new CudaOptions(maxSequences, maxStepTokens, maxContext, b, prefill, decodeGraphs, maxLogitRows, moeDecodeMaxTokens, maxPrefillBucket, lazyCapture, fp32GdnPrefill);
    }

    /** These options with {@code prefill} set to {@code m}. */
    public CudaOptions withPrefill(PrefillMode m) {
        return new CudaOptions(maxSequences, maxStepTokens, maxContext, kvBudget, m, decodeGraphs, maxLogitRows, moeDecodeMaxTokens, maxPrefillBucket, lazyCapture, fp32GdnPrefill);
    }

    /** These options with {@code decodeGraphs} set to {@code on}. */
    public CudaOptions withDecodeGraphs(boolean on) {
        return new CudaOptions(maxSequences, maxStepTokens, maxContext, kvBudget, prefill, on, maxLogitRows, moeDecodeMaxTokens, maxPrefillBucket, lazyCapture, fp32GdnPrefill);
    }

    /** These options with {@code maxLogitRows} set to {@code n}. */
    public CudaOptions withMaxLogitRows(int n) {
        return new CudaOptions(maxSequences, maxStepTokens, maxContext, kvBudget, prefill, decodeGraphs, n, moeDecodeMaxTokens, maxPrefillBucket, lazyCapture, fp32GdnPrefill);
    }

    /** These options with {@code maxPrefillBucket} set to {@code n}. */
    public CudaOptions withMaxPrefillBucket(int n) {
        return new CudaOptions(maxSequences, maxStepTokens, maxContext, kvBudget, prefill, decodeGraphs, maxLogitRows, moeDecodeMaxTokens, n, lazyCapture, fp32GdnPrefill);
    }

    /** These options with {@code lazyCapture} set to {@code lazy}. */
    public CudaOptions withLazyCapture(boolean lazy) {
        return new CudaOptions(maxSequences, maxStepTokens, maxContext, kvBudget, prefill, decodeGraphs, maxLogitRows, moeDecodeMaxTokens, maxPrefillBucket, lazy, fp32GdnPrefill);
    }

    /** These options with {@code fp32GdnPrefill} set to {@code on}. */
    public CudaOptions withFp32GdnPrefill(boolean on) {
        return new CudaOptions(maxSequences, maxStepTokens, maxContext, kvBudget, prefill, decodeGraphs, maxLogitRows, moeDecodeMaxTokens, maxPrefillBucket, lazyCapture, on);
    }
}
