package dev.jnext.cuda.kernels;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;
import dev.jnext.numeric.Bf16;
import dev.jnext.cpu.ops.RotaryEmbedding;
import dev.jnext.cuda.state.AttentionBatch;
import dev.jnext.cuda.state.KvPages;

import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;

/**
 * The full-attention layer's input preparation (kernels-ptx/attention_prep.cu), one launch per step: q_norm/k_norm
 * (zero-centred RMSNorm per head, fp32, one rounding), partial rotate-half RoPE at each token's absolute position, q to
 * {@code qOut [T, heads, headDim]}, the new tokens' k (after RoPE) and v into their KV pages.
 *
 * <p>Rounding follows transformers in bf16 mode: the cos/sin tables are computed in fp32 ({@code inv_freq} exactly as
 * {@link RotaryEmbedding}, angle = fp32(pos)·inv_freq) and cast to bf16; then {@code q·cos}, {@code rotate_half(q)·sin} and
 * their sum each round to bf16. The gate half of q_proj's output is not copied: the attention epilogue reads it in place.
 * One warp per (token, head row), so every row's loads are in flight at once.
 */
public final class AttentionPrepKernel implements AutoCloseable {
    static final int WARPS = 8;

    private final Kernel kernel;
    private final AttentionGeometry geometry;
    private final float eps;
    private final DeviceBuffer invFreq;

    public AttentionPrepKernel(KernelLibrary lib, AttentionGeometry geometry, double ropeTheta, float eps) {
        this.kernel = lib.kernel("attention_prep", "attention_prep_bf16");
        this.geometry = geometry;
        this.eps = eps;
        float[] inv = new RotaryEmbedding(geometry.headDim(), geometry.rotaryDim(), ropeTheta).invFreq();
        Gpu gpu = lib.gpu();
        this.invFreq = gpu.allocate(4L * Math.max(1, inv.length), "rope-inv-freq");
        if (inv.length > 0) {
            try (Arena a = Arena.ofConfined()) {
                invFreq.copyFromHost(a.allocateFrom(ValueLayout.JAVA_FLOAT, inv));
            }
        }
    }

    public AttentionGeometry geometry() {
        return geometry;
    }

    /**
     * The launch's tensors for {@code geometry} (H heads, KV heads, head dim hd; row counts are capacities, checked per
     * launch): {@code qg [≥T, H·2·hd]} bf16, q_proj's output (per head: query then gate); {@code kv [≥T, 2·KV·hd]} bf16,
     * the fused k|v projection's output (each row k then v, so the kernel's k/v row stride is 2·KV·hd and v starts KV·hd
     * elements into the row); the norm weights {@code qNorm}, {@code kNorm [hd]} bf16 (stored centred on 0);
     * {@code qOut [≥T, H, hd]} bf16.
     */
    public record Args(AttentionGeometry geometry, DeviceTensor qg, DeviceTensor kv, DeviceTensor qNorm, DeviceTensor kNorm,
                       DeviceTensor qOut) {
        static final String OP = "attention prep";

        public Args {
            int any = TensorContract.ANY, h = geometry.heads(), hd = geometry.headDim();
            TensorContract.require(OP, "qg", qg, DType.BF16, any, h * 2 * hd);
            TensorContract.require(OP, "kv", kv, DType.BF16, any, 2 * geometry.kvHeads() * hd);
            TensorContract.require(OP, "qNorm", qNorm, DType.BF16, hd);
            TensorContract.require(OP, "kNorm", kNorm, DType.BF16, hd);
            TensorContract.require(OP, "qOut", qOut, DType.BF16, any, h, hd);
        }

        /** Elements between two tokens' k (and v) rows. */
        public int kvStride() {
            return kv.dim(1);
        }

        void checkRows(int tokens) {
            TensorContract.rows(OP, "qg", qg, tokens);
            TensorContract.rows(OP, "kv", kv, tokens);
            TensorContract.rows(OP, "qOut", qOut, tokens);
        }
    }

    /**
     * Prepares a step of fixed {@code shape} ({@code shape.tokens()} rows, {@code shape.seqs()} batch entries): q to
     * {@code qOut}, the new tokens' k and v into {@code layer}'s pages. Rows of padded entries and past the last entry
     * get zero q (and write no K/V). {@code a} must be built for this launcher's geometry.
     */
    public void launch(Stream s, StepShape shape, Args a, AttentionBatch batch, KvPages pages, int layer) {
        AttentionGeometry g = geometry;
        PrefillAttentionKernel.checkGeometry(a.geometry(), g, Args.OP);
        int kvStride = a.kvStride();
        checkShapes(g, pages.geometry(), kvStride);
        PrefillAttentionKernel.checkEntries(shape, batch, "attention prep");
        a.checkRows(shape.tokens());
        long k = a.kv().address(), v = k + 2L * g.kvHeads() * g.headDim();
        kernel.args().ptr(a.qg().address()).i32(2 * g.heads() * g.headDim()).ptr(k).ptr(v).i32(kvStride)
                .ptr(a.qNorm().address()).ptr(a.kNorm().address()).ptr(invFreq.address()).i32(g.rotaryDim())
                .ptr(batch.cuSeqlens()).ptr(batch.pastLengths()).ptr(batch.pageTable()).i32(batch.pageTableStride())
                .i32(shape.seqs()).i32(shape.tokens()).i32(g.heads()).i32(g.kvHeads()).i32(g.headDim()).f32(eps)
                .ptr(a.qOut().address()).ptr(pages.keys(layer)).ptr(pages.values(layer));
        long warps = (long) shape.tokens() * (g.heads() + 2 * g.kvHeads());
        kernel.launch(s, Dim3.of((int) ((warps + WARPS - 1) / WARPS)), Dim3.of(32 * WARPS), 0);
    }

    static void checkShapes(AttentionGeometry g, KvPages.Geometry pool, int kvStride) {
        PrefillAttentionKernel.checkPool(g, pool, "attention prep");
        if (kvStride < g.kvHeads() * g.headDim() || kvStride % 8 != 0) {
            throw new IllegalArgumentException("attention prep: k/v row stride " + kvStride + " must be a multiple of 8 and >= "
                    + g.kvHeads() * g.headDim());
        }
    }
    @Override
    public void close() {
        invFreq.close();
    }
}
