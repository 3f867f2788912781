package dev.jnext.kernels;

import dev.jnext.gpu.Stream;
import dev.jnext.state.AttentionBatch;
import dev.jnext.state.KvPages;

/**
 * The full-attention layer's core on the GPU, between q/k/v_proj and o_proj (the eager "core" of a piecewise forward):
 * q/k norm + RoPE + KV write ({@link AttentionPrepKernel}), then attention over the pages with the sigmoid output gate —
 * {@link DecodeAttentionKernel} when every sequence brings one token, {@link PrefillAttentionKernel} otherwise.
 * Owns its launchers and their scratch (sized for {@code maxSeqs} decode sequences); nothing is allocated per call.
 */
public final class GatedAttentionCore implements AutoCloseable {
    private final AttentionGeometry geometry;
    private final AttentionPrepKernel prep;
    private final PrefillAttentionKernel prefill;
    private final DecodeAttentionKernel decode;

    public GatedAttentionCore(KernelLibrary lib, AttentionGeometry geometry, double ropeTheta, float eps, int maxSeqs) {
        this.geometry = geometry;
        this.prep = new AttentionPrepKernel(lib, geometry, ropeTheta, eps);
        try {
            this.prefill = new PrefillAttentionKernel(lib, geometry);
            this.decode = new DecodeAttentionKernel(lib, geometry, maxSeqs);
        } catch (RuntimeException e) {
            prep.close();
            throw e;
        }
    }

    public AttentionGeometry geometry() {
        return geometry;
    }

    /**
     * @param qg       q_proj output [tokens, heads · 2 · headDim] (per head: query then gate); the gate is read from it
     * @param k        k_proj output, rows of {@code kvStride} elements
     * @param v        v_proj output, same stride
     * @param qScratch [tokens, heads, headDim] for the normed, rotated q
     * @param out      [tokens, heads · headDim], o · sigmoid(gate), ready for o_proj
     * @param tokens   rows of the step's activations (≥ the batch's tokens; extra rows of q are zeroed)
     */
    public void forward(Stream s, long qg, long k, long v, int kvStride, long qNormW, long kNormW, AttentionBatch batch,
                        KvPages pages, int layer, long qScratch, long out, int tokens) {
        int hd = geometry.headDim();
        prep.launch(s, qg, k, v, kvStride, qNormW, kNormW, batch, pages, layer, qScratch, tokens);
        long gate = qg + 2L * hd;
        int tokenStride = 2 * geometry.heads() * hd, headStride = 2 * hd;
        if (batch.isDecode()) {
            decode.launch(s, qScratch, pages, layer, batch, out, gate, tokenStride, headStride);
        } else {
            prefill.launch(s, qScratch, pages, layer, batch, out, gate, tokenStride, headStride);
        }
    }

    @Override
    public void close() {
        try {
            decode.close();
        } finally {
            prep.close();
        }
    }
}
