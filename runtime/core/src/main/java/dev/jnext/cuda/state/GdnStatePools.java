package dev.jnext.cuda.state;


import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.Stream;

/**
 * The Gated DeltaNet state of every linear-attention layer on the GPU for a fixed number of sequence slots, in two
 * allocations: conv state {@code [layer][slot][convDim][K−1]} bf16 (column 0 the oldest raw input) and recurrent state
 * {@code [layer][slot][Hv][dk][dv]} fp32 (S_h[i][j], i over key dims — the orientation of {@code dev.jnext.cpu.SsmSlots} and of the
 * kernels). Layer {@code l}'s pools are what the conv and delta-rule kernels take as {@code state}/{@code statePool}, and
 * a batch entry names its slot in the step's device metadata (−1: padding, never written). A slot is reset — zeroed in
 * every layer — when a new sequence takes it.
 */
public final class GdnStatePools implements AutoCloseable {

    /** Shape of the pools. */
    public record Geometry(int layers, int slots, int convDim, int kernel, int valueHeads, int keyDim, int valueDim) {
        /** Checks that every extent is positive (layers may be 0). */
        public Geometry {
            if (layers < 0 || slots < 1 || convDim < 1 || kernel < 2 || valueHeads < 1 || keyDim < 1 || valueDim < 1) {
                throw new IllegalArgumentException("GDN state pools: bad geometry " + this);
            }
        }

        /** Bytes of one slot's conv state in one layer. */
        public long convSlotBytes() {
            return 2L * convDim * (kernel - 1);
        }

        /** Bytes of one slot's recurrent state in one layer. */
        public long recurrentSlotBytes() {
            return 4L * valueHeads * keyDim * valueDim;
        }

        /** Bytes of both pools. */
        public long totalBytes() {
            return Math.multiplyExact(Math.multiplyExact((long) layers, slots), convSlotBytes() + recurrentSlotBytes());
        }

        /** Bytes one more slot costs (all layers). */
        public long bytesPerSlot() {
            return (long) layers * (convSlotBytes() + recurrentSlotBytes());
        }
    }

    private final Geometry geometry;
    private final DeviceBuffer conv;
    private final DeviceBuffer recurrent;

    /** Allocates the pools (contents undefined until {@link #reset}); none for a model without linear-attention layers. */
    public GdnStatePools(Gpu gpu, Geometry geometry) {
        this.geometry = geometry;
        if (geometry.layers() == 0) {
            this.conv = null;
            this.recurrent = null;
            return;
        }
        this.conv = gpu.allocate((long) geometry.layers() * geometry.slots() * geometry.convSlotBytes(), "gdn-conv-state");
        try {
            this.recurrent = gpu.allocate((long) geometry.layers() * geometry.slots() * geometry.recurrentSlotBytes(),
                    "gdn-recurrent-state");
        } catch (RuntimeException e) {
            conv.close();
            throw e;
        }
    }

    /** The pools' shape. */
    public Geometry geometry() {
        return geometry;
    }

    /** Layer {@code gdnLayer}'s conv pool {@code [slots, convDim, K−1]} (the ordinal among linear-attention layers). */
    public long conv(int gdnLayer) {
        return conv.address(layerOffset(gdnLayer, geometry.convSlotBytes()));
    }

    /** Layer {@code gdnLayer}'s recurrent pool {@code [slots, Hv, dk, dv]}. */
    public long recurrent(int gdnLayer) {
        return recurrent.address(layerOffset(gdnLayer, geometry.recurrentSlotBytes()));
    }

    /** Zeroes {@code slot} in every layer (a fresh sequence), stream-ordered. */
    public void reset(int slot, Stream stream) {
        if (slot < 0 || slot >= geometry.slots()) throw new IndexOutOfBoundsException("GDN slot " + slot + " of " + geometry.slots());
        for (int l = 0; l < geometry.layers(); l++) {
            conv.fill8(layerOffset(l, geometry.convSlotBytes()) + slot * geometry.convSlotBytes(), geometry.convSlotBytes(), (byte) 0, stream);
            recurrent.fill8(layerOffset(l, geometry.recurrentSlotBytes()) + slot * geometry.recurrentSlotBytes(),
                    geometry.recurrentSlotBytes(), (byte) 0, stream);
        }
    }

    /**
     * Copies slot {@code from} of {@code src} into slot {@code to} of these pools, every layer (conv and recurrent),
     * stream-ordered: two device-to-device copies a layer. The pools may differ in slot count (the prefix cache's snapshot
     * arena is pools of its own size), not in anything else.
     */
    public void copySlot(GdnStatePools src, int from, int to, Stream stream) {
        Geometry g = src.geometry;
        if (g.layers() != geometry.layers() || g.convDim() != geometry.convDim() || g.kernel() != geometry.kernel()
                || g.valueHeads() != geometry.valueHeads() || g.keyDim() != geometry.keyDim() || g.valueDim() != geometry.valueDim()) {
            throw new IllegalArgumentException("GDN state pools differ: " + g + " vs " + geometry);
        }
        if (from < 0 || from >= g.slots()) throw new IndexOutOfBoundsException("GDN slot " + from + " of " + g.slots());
        if (to < 0 || to >= geometry.slots()) throw new IndexOutOfBoundsException("GDN slot " + to + " of " + geometry.slots());
        long c = geometry.convSlotBytes(), r = geometry.recurrentSlotBytes();
        for (int l = 0; l < geometry.layers(); l++) {
            conv.copyFrom(src.conv, src.layerOffset(l, c) + from * c, layerOffset(l, c) + to * c, c, stream);
            recurrent.copyFrom(src.recurrent, src.layerOffset(l, r) + from * r, layerOffset(l, r) + to * r, r, stream);
        }
    }

    /** Device buffers of the pools (tests read the state back). */
    public DeviceBuffer convBuffer() {
        return conv;
    }

    /** Device buffer of the recurrent pools (tests read the state back). */
    public DeviceBuffer recurrentBuffer() {
        return recurrent;
    }

    private long layerOffset(int gdnLayer, long slotBytes) {
        if (gdnLayer < 0 || gdnLayer >= geometry.layers()) {
            throw new IndexOutOfBoundsException("GDN layer " + gdnLayer + " of " + geometry.layers());
        }
        return (long) gdnLayer * geometry.slots() * slotBytes;
    }

    @Override
    public void close() {
        if (conv == null) return;
        try {
            conv.close();
        } finally {
            recurrent.close();
        }
    }
}
