package dev.jnext.cuda;

import dev.jnext.JnextException;
import dev.jnext.cuda.kernels.SamplingKernel;
import dev.jnext.cuda.kernels.ChunkedDeltaRuleKernel;
import dev.jnext.cuda.state.KvPages;
import dev.jnext.cuda.state.PageTable;

/**
 * The host side of a runner's sequence slots 0..{@code maxSequences}−1: each open slot's position, KV page table and
 * sampling state. Opening a slot zeroes its GDN state and sampling history on the device. With prefix caching on, the
 * slots' {@link DevicePrefixCache} (restores at admission, snapshots after steps, pages back under pressure).
 */
final class SequenceSlots {

    /** Host-side state of an open sequence slot. */
    static final class Sequence {
        int position;
        PageTable pages;
        SamplingKernel.RowParams params = SamplingKernel.RowParams.greedy();
        int vocabLimit;
        long seed;
        long draws;
    }

    private final RunnerResources r;
    private final Sequence[] slots;
    /** KV tokens the open slots hold reserved (their page tables' capacity), for metrics from any thread. */
    private volatile long reservedTokens;
    /** Null when prefix caching is off. */
    private final DevicePrefixCache cache;

    SequenceSlots(RunnerResources r) {
        this.r = r;
        this.slots = new Sequence[r.options.maxSequences()];
        if (r.snapshotEntries > 0 && r.kv != null) {
            var g = r.kv.geometry();
            long kvPerToken = 2 * g.pageBytes() * g.layers() / KvPages.PAGE_TOKENS;
            this.cache = new DevicePrefixCache(r.options.prefixCache(), slots.length, r.kv.allocator(), kvPerToken,
                    new SnapshotArena(r.gdn, r.snapshots, r.snapshotEntries, r.history, r.stream),
                    r.gdn.geometry().bytesPerSlot(), ChunkedDeltaRuleKernel.CHUNK);
        } else {
            this.cache = null;
        }
    }

    /** KV tokens the open slots hold reserved (any thread). */
    long reservedTokens() {
        return reservedTokens;
    }

    /** The prefix cache (null: off). */
    DevicePrefixCache cache() {
        return cache;
    }

    /** Slot count. */
    int size() {
        return slots.length;
    }

    /** Slots not open now. */
    int free() {
        int n = 0;
        for (Sequence s : slots) if (s == null) n++;
        return n;
    }

    /** Opens a sequence in a free slot (its GDN state and sampling history zeroed); returns the slot. */
    int open(SamplingKernel.RowParams params, int vocabLimit, long seed) {
        for (int i = 0; i < slots.length; i++) {
            if (slots[i] == null) {
                r.gpu.bindThread();
                Sequence s = new Sequence();
                s.pages = r.kv == null ? null : r.kv.newSequence();
                s.params = params;
                s.vocabLimit = Math.min(vocabLimit, r.config.vocabSize());
                s.seed = seed;
                r.gdn.reset(i, r.stream);
                r.history.reset(r.stream, i);
                slots[i] = s;
                return i;
            }
        }
        throw new JnextException("all " + slots.length + " sequence slots are in use");
    }

    /** Frees the slot and its KV pages (shared ones lose a holder). */
    void close(int slot) {
        Sequence s = get(slot);
        if (cache != null) cache.release(slot);
        if (s.pages != null) {
            reservedTokens -= s.pages.capacityTokens();
            s.pages.release();
        }
        slots[slot] = null;
    }

    /** Reserves KV pages so the slot can hold {@code totalTokens}; false (nothing reserved) when the pool cannot. */
    boolean reserve(int slot, int totalTokens) {
        Sequence s = get(slot);
        if (totalTokens > r.maxContext) return false;
        if (s.pages == null) return true;
        int need = r.kv.allocator().pagesFor(totalTokens) - s.pages.pageCount();
        if (need > r.kv.allocator().freePages() && (cache == null || !cache.evictForPages(need))) return false;
        int before = s.pages.capacityTokens();
        s.pages.reserve(totalTokens);
        reservedTokens += s.pages.capacityTokens() - before;
        return true;
    }

    /**
     * Prefix caching: restores the longest cached prefix of {@code prompt} into the fresh slot and returns its length (0
     * with the cache off); the slot is then at that position.
     */
    int restorePrefix(int slot, int[] prompt) {
        Sequence s = get(slot);
        if (cache == null) return 0;
        if (s.position != 0) throw new JnextException("restorePrefix is called once, before the first step of slot " + slot);
        r.gpu.bindThread();
        int at = cache.restore(slot, prompt, s.pages);
        s.position = at;
        return at;
    }

    /**
     * Admission of a fresh slot ({@link dev.jnext.backend.ModelBackend#admit}): with prefix caching, the cached prefix
     * first and pages only for the rest ({@link DevicePrefixCache#admit}); else a reservation. Returns the restored
     * length, or −1 when the pool cannot hold the sequence now.
     */
    int admit(int slot, int[] prompt, int totalTokens) {
        Sequence s = get(slot);
        if (cache == null || s.pages == null) return reserve(slot, totalTokens) ? 0 : -1;
        if (totalTokens > r.maxContext) return -1;
        if (s.position != 0) throw new JnextException("slot " + slot + " is admitted once, before its first step");
        r.gpu.bindThread();
        int before = s.pages.capacityTokens();
        int at = cache.admit(slot, prompt, s.pages, totalTokens);
        if (at < 0) return -1;
        reservedTokens += s.pages.capacityTokens() - before;
        s.position = at;
        return at;
    }

    /** Where the slot's next prompt chunk must end for a snapshot ({@link Integer#MAX_VALUE}: anywhere). */
    int prefillStop(int slot, int position) {
        get(slot);
        return cache == null ? Integer.MAX_VALUE : cache.stop(slot, position);
    }

    /** After a step fed {@code tokens} to the slot from {@code before} on: the cache may snapshot the state there. */
    void afterStep(int slot, int before, int[] tokens, boolean prompt) {
        if (cache != null) cache.afterStep(slot, before, tokens, prompt, get(slot).pages);
    }

    /** The open sequence in {@code slot}. */
    Sequence get(int slot) {
        if (slot < 0 || slot >= slots.length || slots[slot] == null) throw new JnextException("sequence slot " + slot + " is not open");
        return slots[slot];
    }
}
