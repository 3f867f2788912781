package dev.jnext.cuda;

import dev.jnext.JnextException;
import dev.jnext.backend.PrefixCacheOptions;
import dev.jnext.backend.PrefixCacheStats;
import dev.jnext.backend.prefix.PrefixTree;
import dev.jnext.backend.prefix.SnapshotPlan;
import dev.jnext.cuda.state.PageAllocator;
import dev.jnext.cuda.state.PageTable;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.TreeSet;

/**
 * The CUDA backend's prefix cache (issue 18): a {@link PrefixTree} whose nodes hold <b>shared KV pages</b> of the pool
 * the sequences use and, at chosen positions, an entry of a <b>snapshot arena</b> holding every GDN layer's conv and
 * recurrent state. The host bookkeeping lives here; the device work is three kinds of stream-ordered copies behind
 * {@link SnapshotStore} (a slot's GDN state into an arena entry and back) and the token history of a restored prefix.
 *
 * <p><b>KV without copies.</b> Snapshot positions are multiples of the delta rule's chunk, which is the KV page size, so
 * a cached prefix is whole pages. A node's payload is the pages its tokens lie in ({@link PagedKv}); a node that starts
 * inside a page holds its own page for it (that page also holds the parent's last tokens, identical bits: the same prefix
 * computed the same way). Pages are shared by holder count ({@link PageAllocator#share}): the tree holds each page its
 * nodes name, a resumed sequence's page table holds the prefix's pages ({@link PageTable#replacePrefix}), and a sequence
 * only writes tokens past the prefix it resumed from or handed to the tree, into pages of its own — so a shared page is
 * never written. When the pool runs short, {@link #evictForPages} drops least recently used nodes that no running
 * sequence holds.
 *
 * <p><b>Snapshots between steps.</b> The device has a sequence's GDN state only between steps, so snapshots are taken
 * where a prompt chunk ends: the backend makes the scheduler end chunks at the required positions of the
 * {@link SnapshotPlan} ({@link #stop}) and also snapshots any aligned chunk end at least {@code snapshotInterval} past the
 * previous snapshot. A sequence leaves snapshots only while its whole history was prefilled canonically: prompt chunks
 * of more than one token that start at aligned positions, from the prompt's start or from a restored snapshot.
 *
 * <p>Not thread-safe (the engine thread); {@link #stats()} from any thread.
 */
final class DevicePrefixCache implements AutoCloseable {

    /** Where the GDN state snapshots live: {@code capacity} entries of one sequence's state each. */
    interface SnapshotStore extends AutoCloseable {
        /** Entries the store holds. */
        int capacity();

        /** Copies sequence slot {@code slot}'s GDN state into entry {@code entry} (stream-ordered). */
        void save(int slot, int entry);

        /** Copies entry {@code entry} into sequence slot {@code slot}'s GDN state (stream-ordered). */
        void load(int entry, int slot);

        /** Marks {@code tokens} as seen by the fresh slot {@code slot} (the sampling penalties' history). */
        void observe(int slot, int[] tokens);

        @Override
        void close();
    }

    /**
     * A node's KV: tokens {@code [start, end)} of its path, in the pool pages {@code pages}, which cover page indices
     * {@code start / pageTokens} up to the page of {@code end − 1}.
     */
    record PagedKv(int start, int end, int[] pages) {
    }

    private final PrefixTree<PagedKv, Integer> tree;
    private final PageAllocator allocator;
    private final SnapshotStore store;
    private final int align;
    private final int interval;
    private final ArrayDeque<Integer> freeEntries = new ArrayDeque<>();
    /** Per pool page: how many of its holders are the tree's nodes. */
    private final int[] treeRefs;
    private final Slot[] slots;

    /** What the cache knows of a sequence slot. */
    private static final class Slot {
        int[] prompt;                      // null: the slot leaves no snapshots (anymore)
        TreeSet<Integer> required;         // positions its chunks end at
        int lastSnapshot;                  // position of its last snapshot (or where it resumed)
        PrefixTree.Node<PagedKv, Integer> held;
    }

    /**
     * @param kvBytesPerToken KV bytes a token takes in the pool (all attention layers; a page's bytes over its tokens)
     * @param snapshotBytes   bytes of one snapshot entry (all GDN layers)
     * @param align           the delta rule's chunk; must be a multiple of the page size
     */
    DevicePrefixCache(PrefixCacheOptions options, int slots, PageAllocator allocator, long kvBytesPerToken, SnapshotStore store,
                      long snapshotBytes, int align) {
        if (align % allocator.pageTokens() != 0) {
            throw new IllegalArgumentException("the alignment " + align + " is not a multiple of the KV page (" + allocator.pageTokens() + ")");
        }
        this.allocator = allocator;
        this.store = store;
        this.align = align;
        this.interval = Math.ceilDiv(options.snapshotInterval(), align) * align;
        for (int e = 0; e < store.capacity(); e++) freeEntries.add(e);
        long kvBudget = Math.min(options.kvBytes(), (long) allocator.pages() * allocator.pageTokens() * kvBytesPerToken);
        this.treeRefs = new int[allocator.pages()];
        // the tree counts a snapshot as at least one unit, so that it never holds more than the arena's entries (a
        // model without GDN layers has empty snapshots)
        long unit = Math.max(1, snapshotBytes);
        this.tree = new PrefixTree<>(this::slice, new PrefixTree.Disposer<>() {
            @Override
            public void kvDropped(PagedKv kv) {
                for (int p : kv.pages()) {
                    treeRefs[p]--;
                    allocator.give(p);
                }
            }

            @Override
            public void snapshotDropped(Integer entry) {
                freeEntries.add(entry);
            }
        }, kvBytesPerToken, unit, kvBudget, (long) store.capacity() * unit);
        this.slots = new Slot[slots];
        for (int i = 0; i < slots; i++) this.slots[i] = new Slot();
    }

    private int pageTokens() {
        return allocator.pageTokens();
    }

    /** The pages of {@code kv} for tokens {@code [from, to)} relative to its start, each with one more holder. */
    private PagedKv slice(PagedKv kv, int from, int to) {
        int start = kv.start() + from, end = kv.start() + to;
        int first = kv.start() / pageTokens();
        int[] pages = Arrays.copyOfRange(kv.pages(), start / pageTokens() - first, Math.ceilDiv(end, pageTokens()) - first);
        for (int p : pages) {
            allocator.share(p);
            treeRefs[p]++;
        }
        return new PagedKv(start, end, pages);
    }

    /**
     * A freshly opened (and reserved) slot's lookup: restores the longest cached prefix of {@code prompt} that ends at a
     * snapshot (KV pages into {@code table}, the GDN state, the token history), plans the slot's snapshots, and returns the
     * restored length (0: nothing).
     */
    int restore(int slot, int[] prompt, PageTable table) {
        PrefixTree.Match<PagedKv, Integer> m = lookup(slot, prompt);
        if (m.hit()) {
            tree.hold(m.node());
            restoreInto(slot, m, prompt, table);
        }
        return begin(slot, prompt, m);
    }

    /**
     * Admission of a freshly opened slot whose table holds no page yet ({@link dev.jnext.backend.ModelBackend#admit}):
     * finds the longest cached prefix of {@code prompt} and holds it, makes room for the pages the sequence does not
     * share (evicting other entries when the pool is short — never the held prefix), then restores the prefix and
     * reserves the rest up to {@code totalTokens}. Returns the restored length, or −1 — nothing held, restored, reserved
     * or counted — when the pool cannot hold the sequence now.
     */
    int admit(int slot, int[] prompt, PageTable table, int totalTokens) {
        if (table.pageCount() != 0) throw new IllegalStateException("slot " + slot + " is admitted with pages already reserved");
        PrefixTree.Match<PagedKv, Integer> m = lookup(slot, prompt);
        if (m.hit()) tree.hold(m.node());
        int need = allocator.pagesFor(totalTokens) - m.resumeAt() / pageTokens();
        if (need > allocator.freePages() && !evictForPages(need)) {
            if (m.hit()) tree.release(m.node());
            return -1;
        }
        if (m.hit()) restoreInto(slot, m, prompt, table);
        table.reserve(totalTokens);
        return begin(slot, prompt, m);
    }

    private PrefixTree.Match<PagedKv, Integer> lookup(int slot, int[] prompt) {
        Slot s = slots[slot];
        if (s.prompt != null || s.held != null) throw new JnextException("restorePrefix is called once, before the first step of slot " + slot);
        PrefixTree.Match<PagedKv, Integer> m = tree.match(prompt, prompt.length - 1);
        if (m.resumeAt() % align != 0) throw new IllegalStateException("a snapshot at " + m.resumeAt() + " is not on a multiple of " + align);
        return m;
    }

    /** Restores a hit (whose node the caller holds) into the slot: the GDN state, the token history, the shared pages. */
    private void restoreInto(int slot, PrefixTree.Match<PagedKv, Integer> m, int[] prompt, PageTable table) {
        int at = m.resumeAt();
        int[] pages = new int[at / pageTokens()];
        for (PagedKv kv : tree.kvPath(m.node())) {          // the deepest node that covers a page gives it
            int first = kv.start() / pageTokens();
            for (int i = 0; i < kv.pages().length && first + i < pages.length; i++) pages[first + i] = kv.pages()[i];
        }
        try {
            // the state first: if a copy fails, the slot holds no shared page (nothing of the tree can be written)
            store.load(m.node().snapshot(), slot);
            store.observe(slot, Arrays.copyOf(prompt, at));
            table.replacePrefix(pages);
        } catch (RuntimeException | Error e) {
            tree.release(m.node());
            throw e;
        }
        slots[slot].held = m.node();
    }

    /** Counts the lookup and plans the slot's snapshots; returns the restored length. */
    private int begin(int slot, int[] prompt, PrefixTree.Match<PagedKv, Integer> m) {
        Slot s = slots[slot];
        int at = m.resumeAt();
        tree.recordLookup(at);
        s.prompt = prompt.clone();
        s.required = SnapshotPlan.required(prompt.length, m.matched(), at, align);
        s.lastSnapshot = at;
        return at;
    }

    /** Where the slot's prompt chunk starting at {@code position} must end ({@link Integer#MAX_VALUE}: anywhere). */
    int stop(int slot, int position) {
        Slot s = slots[slot];
        if (s.prompt == null) return Integer.MAX_VALUE;
        Integer q = s.required.higher(position);
        return q == null || q >= s.prompt.length ? Integer.MAX_VALUE : q;
    }

    /**
     * After a step fed {@code tokens} to the slot from {@code before} on (the state is now at {@code before + tokens}):
     * snapshots the state there when the chunk is canonical and ends at a planned or interval position. The KV of the new
     * path comes from the slot's {@code table}; the arena copy is queued behind the step's launches.
     */
    void afterStep(int slot, int before, int[] tokens, boolean prompt, PageTable table) {
        Slot s = slots[slot];
        if (s.prompt == null) return;
        int end = before + tokens.length;
        boolean canonical = prompt && tokens.length > 1 && before % align == 0 && end <= s.prompt.length
                && Arrays.equals(tokens, 0, tokens.length, s.prompt, before, end);
        if (!canonical) {             // generated tokens, or a chunk a cold prefill would not have run: no more snapshots
            s.prompt = null;
            s.required = null;
            return;
        }
        if (end % align != 0 || !(s.required.contains(end) || end - s.lastSnapshot >= interval)) return;
        int[] path = s.prompt;
        PrefixTree.Node<PagedKv, Integer> node = tree.insert(path, end,
                (from, to) -> {
                    int[] shared = table.share(from / pageTokens(), Math.ceilDiv(to, pageTokens()));
                    for (int p : shared) treeRefs[p]++;
                    return new PagedKv(from, to, shared);
                },
                () -> {
                    Integer entry = freeEntries.poll();
                    if (entry == null) throw new IllegalStateException("the snapshot arena is full within the tree's budget");
                    store.save(slot, entry);
                    return entry;
                });
        s.lastSnapshot = end;
        if (node != null && node != s.held) {
            tree.hold(node);
            if (s.held != null) tree.release(s.held);
            s.held = node;
        }
    }

    /** The slot closes: it no longer holds its node. */
    void release(int slot) {
        Slot s = slots[slot];
        if (s.held != null) tree.release(s.held);
        s.held = null;
        s.prompt = null;
        s.required = null;
    }

    /**
     * Evicts least recently used nodes until the pool has {@code pages} free pages or nothing more can go. Evicts nothing
     * when even every page that only the tree holds would not be enough (a request waiting for running ones to end
     * does not empty the cache step after step).
     */
    boolean evictForPages(int pages) {
        if (allocator.freePages() >= pages) return true;
        int reclaimable = 0;
        for (int p = 0; p < treeRefs.length; p++) {
            if (treeRefs[p] > 0 && allocator.holders(p) == treeRefs[p]) reclaimable++;
        }
        if (allocator.freePages() + reclaimable < pages) return false;
        while (allocator.freePages() < pages) {
            if (!tree.evictLeastRecentlyUsed()) return false;
        }
        return true;
    }

    PrefixCacheStats stats() {
        return tree.stats();
    }

    /** For tests: the tree. */
    PrefixTree<PagedKv, Integer> tree() {
        return tree;
    }

    /** Snapshot entries not in use. */
    int freeEntries() {
        return freeEntries.size();
    }

    /** Gives every cached page back and closes the store. */
    @Override
    public void close() {
        for (int i = 0; i < slots.length; i++) release(i);
        tree.clear();
        store.close();
    }
}
