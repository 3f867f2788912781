package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Stream;
import dev.jnext.cuda.state.AttentionBatch;
import dev.jnext.cuda.state.KvPages;

/**
 * The full-attention layer's core on the GPU, between q/k/v_proj and o_proj (the eager "core" of a piecewise forward):
 * q/k norm + RoPE + KV write ({@link AttentionPrepKernel}), then attention over the pages with the sigmoid output gate —
 * {@link DecodeAttentionKernel} for a decode {@link StepShape}, {@link PrefillAttentionKernel} otherwise.
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
     * One layer's core for a step of fixed {@code shape} (graph-safe: nothing staged per step is read on the host): prep over
     * {@code shape.tokens()} rows and {@code shape.seqs()} entries, then decode attention when {@code shape.decode()} (splits
     * from {@link DecodeAttentionKernel#splitsFor(int) splitsFor(shape.seqs())}), else prefill attention with a grid for any
     * split of the rows into entries. Output rows of padded entries (past −1) and rows past the last entry are zero.
     *
     * @param qg       q_proj output [tokens, heads · 2 · headDim] (per head: query then gate); the gate is read from it
     * @param k        k_proj output, rows of {@code kvStride} elements
     * @param v        v_proj output, same stride
     * @param qScratch [tokens, heads, headDim] for the normed, rotated q
     * @param out      [tokens, heads · headDim], o · sigmoid(gate), ready for o_proj
     */
    public void forward(Stream s, StepShape shape, long qg, long k, long v, int kvStride, long qNormW, long kNormW,
                        AttentionBatch batch, KvPages pages, int layer, long qScratch, long out) {
        int hd = geometry.headDim();
        prep.launch(s, shape, qg, k, v, kvStride, qNormW, kNormW, batch, pages, layer, qScratch);
        long gate = qg + 2L * hd;
        int tokenStride = 2 * geometry.heads() * hd, headStride = 2 * hd;
        if (shape.decode()) {
            decode.launch(s, shape, qScratch, pages, layer, batch, out, gate, tokenStride, headStride);
        } else {
            prefill.launch(s, shape, qScratch, pages, layer, batch, out, gate, tokenStride, headStride);
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
