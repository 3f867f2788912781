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
     * @param shape    the step's fixed shape: T = {@code shape.tokens()} rows, {@code shape.seqs()} batch entries
     * @param qg       q_proj output [T, heads · 2 · headDim] (per head: query then gate)
     * @param k        k_proj output rows of {@code kvStride} elements, [T, kvHeads · headDim] used
     * @param v        v_proj output, same row stride as k
     * @param qNormW   q_norm weight [headDim] (stored centred on 0)
     * @param kNormW   k_norm weight [headDim]
     * @param qOut     [T, heads, headDim]; rows of padded entries and past the last entry get zero q (and write no K/V)
     */
    public void launch(Stream s, StepShape shape, long qg, long k, long v, int kvStride, long qNormW, long kNormW,
                       AttentionBatch batch, KvPages pages, int layer, long qOut) {
        checkShapes(geometry, pages.geometry(), kvStride);
        PrefillAttentionKernel.checkEntries(shape, batch, "attention prep");
        AttentionGeometry g = geometry;
        kernel.args().ptr(qg).i32(2 * g.heads() * g.headDim()).ptr(k).ptr(v).i32(kvStride)
                .ptr(qNormW).ptr(kNormW).ptr(invFreq.address()).i32(g.rotaryDim())
                .ptr(batch.cuSeqlens()).ptr(batch.pastLengths()).ptr(batch.pageTable()).i32(batch.pageTableStride())
                .i32(shape.seqs()).i32(shape.tokens()).i32(g.heads()).i32(g.kvHeads()).i32(g.headDim()).f32(eps)
                .ptr(qOut).ptr(pages.keys(layer)).ptr(pages.values(layer));
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
