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
     * A layer's argument records for the core of {@code geometry}: prep's and both attention launches', which read the q
     * that prep writes. Built with the tensor constructor below, once per layer.
     */
    public record Args(AttentionGeometry geometry, AttentionPrepKernel.Args prep, PrefillAttentionKernel.Args prefill,
                       DecodeAttentionKernel.Args decode) {
        static final String OP = "gated attention core";

        public Args {
            if (prep == null || prefill == null || decode == null) throw TensorContract.fail(OP, "launches", "are missing");
            PrefillAttentionKernel.checkGeometry(prep.geometry(), geometry, OP);
            PrefillAttentionKernel.checkGeometry(prefill.geometry(), geometry, OP);
            PrefillAttentionKernel.checkGeometry(decode.geometry(), geometry, OP);
            if (!prefill.q().equals(prep.qOut()) || !decode.q().equals(prep.qOut())) {
                throw TensorContract.fail(OP, "qScratch", "the attention must read the q that prep writes, " + prep.qOut());
            }
        }

        /**
         * A layer's tensors (row counts are capacities, checked per step): {@code qg [≥T, H·2·hd]} bf16, the q_proj output
         * (per head: query then gate; the attention reads the gate from it); {@code kv [≥T, 2·KV·hd]} bf16, the fused k|v
         * projection's output (k then v in each row); the norm weights {@code qNorm}, {@code kNorm [hd]} bf16;
         * {@code qScratch [≥T, H, hd]} bf16 for the normed, rotated q; {@code out [≥T, H·hd]} bf16, o · sigmoid(gate),
         * ready for o_proj.
         */
        public Args(AttentionGeometry geometry, DeviceTensor qg, DeviceTensor kv, DeviceTensor qNorm, DeviceTensor kNorm,
                    DeviceTensor qScratch, DeviceTensor out) {
            this(check(geometry, qg, kv, qNorm, kNorm, qScratch, out), new AttentionPrepKernel.Args(geometry, qg, kv, qNorm, kNorm, qScratch),
                    new PrefillAttentionKernel.Args(geometry, qScratch, out, gate(geometry, qg), geometry.headDim()),
                    new DecodeAttentionKernel.Args(geometry, qScratch, out, gate(geometry, qg), geometry.headDim()));
        }

        private static AttentionGeometry check(AttentionGeometry geometry, DeviceTensor qg, DeviceTensor kv, DeviceTensor qNorm,
                                               DeviceTensor kNorm, DeviceTensor qScratch, DeviceTensor out) {
            int any = TensorContract.ANY, h = geometry.heads(), hd = geometry.headDim();
            TensorContract.require(OP, "qg", qg, DType.BF16, any, h * 2 * hd);
            TensorContract.require(OP, "kv", kv, DType.BF16, any, 2 * geometry.kvHeads() * hd);
            TensorContract.require(OP, "qNorm", qNorm, DType.BF16, hd);
            TensorContract.require(OP, "kNorm", kNorm, DType.BF16, hd);
            TensorContract.require(OP, "qScratch", qScratch, DType.BF16, any, h, hd);
            TensorContract.require(OP, "out", out, DType.BF16, any, h * hd);
            return geometry;
        }

        /** q_proj's output as {@code [T, H, 2·hd]}: each head's gate is the second half of its row (column hd). */
        private static DeviceTensor gate(AttentionGeometry g, DeviceTensor qg) {
            return qg.reshape(qg.dim(0), g.heads(), 2 * g.headDim());
        }

        void checkRows(int tokens) {
            prep.checkRows(tokens);
            prefill.checkRows(tokens);
        }
    }

    /**
     * One layer's core for a step of fixed {@code shape} (graph-safe: nothing staged per step is read on the host): prep over
     * {@code shape.tokens()} rows and {@code shape.seqs()} entries, then decode attention when {@code shape.decode()} (splits
     * from {@link DecodeAttentionKernel#splitsFor(int) splitsFor(shape.seqs())}), else prefill attention with a grid for any
     * split of the rows into entries. Output rows of padded entries (past −1) and rows past the last entry are zero.
     * {@code a} must be built for this core's geometry.
     */
    public void forward(Stream s, StepShape shape, Args a, AttentionBatch batch, KvPages pages, int layer) {
        PrefillAttentionKernel.checkGeometry(a.geometry(), geometry, Args.OP);
        a.checkRows(shape.tokens());
        prep.launch(s, shape, a.prep(), batch, pages, layer);
        if (shape.decode()) {
            decode.launch(s, shape, a.decode(), batch, pages, layer);
        } else {
            prefill.launch(s, shape, a.prefill(), batch, pages, layer);
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
