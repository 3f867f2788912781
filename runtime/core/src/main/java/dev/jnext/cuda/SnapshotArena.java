package dev.jnext.cuda;

import dev.jnext.cuda.kernels.TokenHistory;
import dev.jnext.cuda.state.GdnStatePools;
import dev.jnext.gpu.Stream;

/**
 * The device side of the prefix cache's snapshots: GDN state pools of their own, one entry per snapshot, and copies
 * between an entry and a sequence slot's state ({@link GdnStatePools#copySlot}, two device-to-device copies a GDN layer),
 * on the runner's stream so that they fall between the steps around them. The pools belong to the runner's resources
 * (freed after the stream is drained); closing this does nothing.
 */
final class SnapshotArena implements DevicePrefixCache.SnapshotStore {
    private final GdnStatePools slots;
    private final GdnStatePools entries;
    private final int capacity;
    private final TokenHistory history;
    private final Stream stream;

    /**
     * @param entries  the arena's pools ({@code capacity} slots), or pools of no layers for a model without GDN layers
     * @param capacity entries the arena holds
     */
    SnapshotArena(GdnStatePools slots, GdnStatePools entries, int capacity, TokenHistory history, Stream stream) {
        this.slots = slots;
        this.entries = entries;
        this.capacity = capacity;
        this.history = history;
        this.stream = stream;
    }

    @Override
    public int capacity() {
        return capacity;
    }

    @Override
    public void save(int slot, int entry) {
        if (slots.geometry().layers() > 0) entries.copySlot(slots, slot, entry, stream);
    }

    @Override
    public void load(int entry, int slot) {
        if (slots.geometry().layers() > 0) slots.copySlot(entries, entry, slot, stream);
    }

    @Override
    public void observe(int slot, int[] tokens) {
        history.markSeenFresh(stream, slot, tokens);
    }

    @Override
    public void close() {
        // the pools are the runner's (RunnerResources owns them and frees them after draining the stream)
    }
}
