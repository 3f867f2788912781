package dev.jnext.cuda;

import dev.jnext.cuda.kernels.DType;
import dev.jnext.cuda.kernels.DeviceTensor;
import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Gpu;
import dev.jnext.model.LayerType;
import dev.jnext.model.ModelConfig;

/**
 * Every activation buffer a forward step uses, at fixed device addresses sized for the largest step ({@code maxTokens}
 * rows, {@code maxLogitRows} logits rows), in one allocation made once: graphs of every bucket share them and capture
 * never allocates. The layout is planned without a GPU ({@link #bytes()} feeds the memory plan), then
 * {@link #allocate} binds it. bf16 unless noted.
 */
final class Activations implements AutoCloseable {
    static final long ALIGN = 256;

    /** Residual stream, normed input of the next block, and the block's output (mixer, then feed-forward). */
    final long x, h, delta;
    /** Gated DeltaNet: projections, conv input/output, z, β and g (fp32), the core's output and the gated norm's. */
    final long qkvz, ba, mixed, z, beta, g, convOut, core, normed;
    /** Full attention: q_proj output (query|gate per head), k|v, the normed/rotated q, the gated attention output. */
    final long qg, kv, q, attnOut;
    /** Dense MLP: gate|up and the SiLU·mul activation. */
    final long denseGateUp, denseAct;
    /** Final rows gathered for the lm_head, the logits [maxLogitRows, vocabStride], sampled ids (int32). */
    final long gathered, logits, sampled;

    private final int maxTokens;
    private final int maxLogitRows;
    private final long bytes;
    private long cursor;
    private DeviceBuffer buffer;

    public Activations(ModelConfig c, int maxTokens, int maxLogitRows, int vocabStride) {
        this.maxTokens = maxTokens;
        this.maxLogitRows = maxLogitRows;
        long t = maxTokens;
        int hs = c.hiddenSize();
        x = take(2 * t * hs);
        h = take(2 * t * hs);
        delta = take(2 * t * hs);
        boolean gdn = c.countLayers(LayerType.LINEAR_ATTENTION) > 0;
        boolean attn = c.countLayers(LayerType.FULL_ATTENTION) > 0;
        int hv = c.linearNumValueHeads();
        int vw = c.linearValueDim();
        qkvz = gdn ? take(2 * t * (2L * c.linearKeyDim() + 2L * vw)) : 0;
        ba = gdn ? take(2 * t * 2 * hv) : 0;
        mixed = gdn ? take(2 * t * c.convDim()) : 0;
        z = gdn ? take(2 * t * vw) : 0;
        beta = gdn ? take(4 * t * hv) : 0;
        g = gdn ? take(4 * t * hv) : 0;
        convOut = gdn ? take(2 * t * c.convDim()) : 0;
        core = gdn ? take(2 * t * vw) : 0;
        normed = gdn ? take(2 * t * vw) : 0;
        int nh = c.numAttentionHeads(), nkv = c.numKeyValueHeads(), hd = c.headDim();
        qg = attn ? take(2 * t * nh * 2L * hd) : 0;
        kv = attn ? take(2 * t * 2L * nkv * hd) : 0;
        q = attn ? take(2 * t * (long) nh * hd) : 0;
        attnOut = attn ? take(2 * t * (long) nh * hd) : 0;
        boolean dense = false;
        for (int i = 0; i < c.numHiddenLayers(); i++) dense |= !c.isMoeLayer(i);
        denseGateUp = dense ? take(2 * t * 2L * c.intermediateSize()) : 0;
        denseAct = dense ? take(2 * t * c.intermediateSize()) : 0;
        gathered = take(2L * maxLogitRows * hs);
        logits = take(2L * maxLogitRows * vocabStride);
        sampled = take(4L * maxLogitRows);
        bytes = (cursor + ALIGN - 1) / ALIGN * ALIGN;
    }

    private long take(long n) {
        long off = (cursor + ALIGN - 1) / ALIGN * ALIGN;
        cursor = off + n;
        return off;
    }

    public long bytes() {
        return bytes;
    }

    public int maxTokens() {
        return maxTokens;
    }

    public int maxLogitRows() {
        return maxLogitRows;
    }

    /** Allocates the buffers (contents undefined; every step writes before it reads). */
    public void allocate(Gpu gpu) {
        if (buffer != null) throw new IllegalStateException("activations already allocated");
        buffer = gpu.allocate(bytes, "activations");
    }

    /** Device address of a planned offset. */
    long at(long offset) {
        return buffer.address(offset);
    }

    /** The planned region at {@code offset} as a typed tensor (it must lie inside the allocation). */
    DeviceTensor tensor(String name, long offset, DType dtype, int... shape) {
        return DeviceTensor.of(buffer, offset, name, dtype, shape);
    }

    DeviceBuffer buffer() {
        return buffer;
    }

    @Override
    public void close() {
        if (buffer != null) buffer.close();
        buffer = null;
    }
}
