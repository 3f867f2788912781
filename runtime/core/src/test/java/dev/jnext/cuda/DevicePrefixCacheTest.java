package dev.jnext.cuda;

import dev.jnext.backend.PrefixCacheOptions;
import dev.jnext.cuda.state.PageAllocator;
import dev.jnext.cuda.state.PageTable;
import org.junit.jupiter.api.Test;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CUDA prefix cache's host bookkeeping on the CPU, against a simulated device: KV pages whose contents are the token
 * ids written into them, a GDN "state" that is a hash of every token a slot was fed, and a snapshot store that copies it.
 * What it checks: a restored prefix's pages hold exactly the prompt's tokens and its state is the prefix's; a shared page
 * is never written; chunks end at the cache's stops; every page and snapshot entry comes back when the slots and the
 * cache close.
 */
class DevicePrefixCacheTest {
    private static final int PAGE = 64;

    /** The simulated device: page contents, slot states and snapshot entries. */
    private static final class Device implements DevicePrefixCache.SnapshotStore {
        final int[][] pages;
        final long[] slotState;
        final long[] entries;
        final PageAllocator allocator;

        Device(int pages, int slots, int capacity) {
            this.pages = new int[pages][PAGE];
            this.slotState = new long[slots];
            this.entries = new long[capacity];
            this.allocator = new PageAllocator(pages, PAGE);
        }

        @Override public int capacity() { return entries.length; }
        @Override public void save(int slot, int entry) { entries[entry] = slotState[slot]; }
        @Override public void load(int entry, int slot) { slotState[slot] = entries[entry]; }
        @Override public void observe(int slot, int[] tokens) { }
        @Override public void close() { }

        /** A step's KV writes and state update for tokens [before, before + n) of a slot. */
        void feed(int slot, PageTable table, int before, int[] tokens) {
            for (int i = 0; i < tokens.length; i++) {
                int pos = before + i;
                int page = table.page(pos / PAGE);
                assertEquals(1, allocator.holders(page), "a page shared with the prefix cache is written (position " + pos + ")");
                pages[page][pos % PAGE] = tokens[i];
                slotState[slot] = slotState[slot] * 1_000_003 + tokens[i];
            }
        }
    }

    private static long hash(int[] tokens, int n) {
        long h = 0;
        for (int i = 0; i < n; i++) h = h * 1_000_003 + tokens[i];
        return h;
    }

    /** One request's life in a slot: open, reserve, restore, prompt chunks within the cache's stops, a few generated tokens. */
    private static final class Run {
        final int slot;
        final int[] prompt;
        final PageTable table;
        int position;

        Run(int slot, int[] prompt, PageTable table) {
            this.slot = slot;
            this.prompt = prompt;
            this.table = table;
        }
    }

    private static Run admit(Device d, DevicePrefixCache cache, int slot, int[] prompt, int generate, List<Integer> restored) {
        PageTable table = d.allocator.newSequence();
        d.slotState[slot] = 0;
        int at = cache.admit(slot, prompt, table, prompt.length + generate);
        if (at < 0) {
            table.release();
            return null;
        }
        assertEquals(d.allocator.pagesFor(prompt.length + generate), table.pageCount(), "the whole sequence has pages");
        restored.add(at);
        assertEquals(0, at % PAGE);
        assertTrue(at < prompt.length);
        assertEquals(hash(prompt, at), d.slotState[slot], "the restored state is the prefix's");
        for (int pos = 0; pos < at; pos++) {
            assertEquals(prompt[pos], d.pages[table.page(pos / PAGE)][pos % PAGE], "restored KV at " + pos);
        }
        Run r = new Run(slot, prompt, table);
        r.position = at;
        return r;
    }

    private static void prefill(Device d, DevicePrefixCache cache, Run r, int chunkCap) {
        while (r.position < r.prompt.length) {
            int left = r.prompt.length - r.position;
            int n = Math.min(left, chunkCap);
            if (n < left) n -= n % PAGE;
            int stop = cache.stop(r.slot, r.position);
            if (stop > r.position && stop < r.prompt.length && r.position + n > stop) n = stop - r.position;
            assertTrue(stop == Integer.MAX_VALUE || stop % PAGE == 0, "stop " + stop);
            int[] chunk = Arrays.copyOfRange(r.prompt, r.position, r.position + n);
            d.feed(r.slot, r.table, r.position, chunk);
            cache.afterStep(r.slot, r.position, chunk, true, r.table);
            r.position += n;
        }
    }

    private static void decode(Device d, DevicePrefixCache cache, Run r, int tokens, int seed) {
        for (int i = 0; i < tokens; i++) {
            int[] t = {seed + i};
            d.feed(r.slot, r.table, r.position, t);
            cache.afterStep(r.slot, r.position, t, false, r.table);
            r.position++;
        }
    }

    private static void close(DevicePrefixCache cache, Run r) {
        cache.release(r.slot);
        r.table.release();
    }

    private static DevicePrefixCache cache(Device d, int slots, long kvTokens, int interval) {
        return new DevicePrefixCache(PrefixCacheOptions.on().withKvBytes(kvTokens * 10).withSnapshotInterval(interval), slots,
                d.allocator, 10, d, 1000, PAGE);
    }

    private static int[] concat(int[] a, int[] b) {
        int[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    @Test
    void aSharedSystemPromptResumesFromTheBranchPointAndARepeatedPromptFromItsEnd() {
        Device d = new Device(64, 4, 8);
        DevicePrefixCache cache = cache(d, 4, 1 << 20, 512);
        int[] system = IntStream.range(0, 700).map(i -> 10 + i % 97).toArray();
        List<Integer> restored = new ArrayList<>();
        List<Integer> chunks = new ArrayList<>();
        for (int q = 0; q < 3; q++) {
            int base = 5000 + q * 100;
            int[] prompt = concat(system, IntStream.range(0, 50).map(i -> base + i).toArray());
            Run r = admit(d, cache, 0, prompt, 8, restored);
            int before = r.position;
            prefill(d, cache, r, 4096);
            chunks.add(r.position - before);
            decode(d, cache, r, 8, 90_000);
            close(cache, r);
        }
        // the first: a miss, snapshots at its last aligned positions (704 of 750); the second leaves the tree at 700: it
        // resumes from nothing (no snapshot at or before 700) and leaves one at the branch point 640; the third resumes there
        assertEquals(List.of(0, 0, 640), restored);
        assertEquals(2, cache.stats().hits() + cache.stats().misses() - 1);
        assertEquals(1, cache.stats().hits());
        // the same prompt again resumes at its last aligned position before the end
        int[] again = concat(system, IntStream.range(0, 50).map(i -> 5000 + i).toArray());
        Run r = admit(d, cache, 1, again, 4, restored);
        assertEquals(704, r.position);
        close(cache, r);
        cache.close();
        assertEquals(d.allocator.pages(), d.allocator.freePages(), "every page back");
        assertEquals(8, cache.freeEntries());
    }

    @Test
    void randomSharedPrefixesUnderPressureRestoreExactlyAndLeakNothing() {
        SplittableRandom random = new SplittableRandom(11);
        int slots = 4;
        Device d = new Device(160, slots, 12);
        DevicePrefixCache cache = cache(d, slots, 5000, 256);
        List<int[]> prompts = new ArrayList<>();
        ArrayDeque<Run> open = new ArrayDeque<>();
        List<Integer> restored = new ArrayList<>();
        boolean[] busy = new boolean[slots];
        for (int round = 0; round < 400; round++) {
            int[] p;
            if (!prompts.isEmpty() && random.nextInt(4) > 0) {
                int[] base = prompts.get(prompts.size() - 1 - random.nextInt(Math.min(prompts.size(), 12)));
                p = concat(Arrays.copyOf(base, random.nextInt(base.length + 1)),
                        IntStream.range(0, 1 + random.nextInt(400)).map(i -> random.nextInt(30)).toArray());
            } else {
                p = IntStream.range(0, 1 + random.nextInt(700)).map(i -> random.nextInt(30)).toArray();
            }
            if (p.length > 1500) p = Arrays.copyOf(p, 1500);
            prompts.add(p);
            if (open.size() == slots) {
                Run old = open.pollFirst();
                close(cache, old);
                busy[old.slot] = false;
            }
            int slot = 0;
            while (busy[slot]) slot++;
            Run r = admit(d, cache, slot, p, 16, restored);
            if (r == null) continue; // the pool cannot hold it beside the open slots
            busy[slot] = true;
            open.addLast(r);
            prefill(d, cache, r, 64 * (1 + random.nextInt(12)));
            decode(d, cache, r, 1 + random.nextInt(16), 100_000 + round);
            assertTrue(cache.stats().kvBytes() <= cache.stats().kvBudgetBytes());
        }
        assertTrue(cache.stats().hits() > 50, "hits " + cache.stats().hits());
        assertTrue(cache.stats().evictions() > 0, "evictions " + cache.stats().evictions());
        for (Run r : open) close(cache, r);
        cache.close();
        assertEquals(d.allocator.pages(), d.allocator.freePages(), "every page back");
        assertEquals(12, cache.freeEntries(), "every snapshot entry back");
    }

    /** The scenario of {@code CudaPrefixCacheGpuTest} (512-token chunks, interval 512): the positions it expects. */
    @Test
    void theGpuTestsScenarioResumesWhereItExpects() {
        java.util.Random rnd = new java.util.Random(18);
        java.util.function.IntFunction<int[]> ids = n -> IntStream.range(0, n).map(i -> rnd.nextInt(8192)).toArray();
        int[] system = ids.apply(700);
        int[] turn1 = concat(system, ids.apply(90));
        List<int[]> prompts = List.of(turn1, concat(system, ids.apply(40)), concat(system, ids.apply(55)),
                concat(concat(turn1, ids.apply(12)), ids.apply(60)), turn1.clone(),
                concat(Arrays.copyOf(system, 300), ids.apply(100)), Arrays.copyOf(turn1, 768), ids.apply(333));
        Device d = new Device(256, 4, 16);
        DevicePrefixCache cache = cache(d, 4, 1 << 20, 512);
        List<Integer> restored = new ArrayList<>();
        for (int[] p : prompts) {
            Run r = admit(d, cache, 0, p, 8, restored);
            prefill(d, cache, r, 512);
            decode(d, cache, r, 4, 77);
            close(cache, r);
        }
        assertEquals(List.of(0, 512, 640, 768, 768, 0, 640, 0), restored);
        cache.close();
        assertEquals(d.allocator.pages(), d.allocator.freePages());
    }

    @Test
    void emptySnapshotsNeverOutnumberTheArenasEntries() {
        // a model without GDN layers: snapshots of 0 bytes, an arena of 4 entries
        Device d = new Device(200, 2, 4);
        DevicePrefixCache cache = new DevicePrefixCache(PrefixCacheOptions.on().withSnapshotInterval(64), 2, d.allocator, 10, d, 0, PAGE);
        SplittableRandom rnd = new SplittableRandom(5);
        List<Integer> restored = new ArrayList<>();
        for (int round = 0; round < 40; round++) {
            int[] p = IntStream.range(0, 65 + rnd.nextInt(400)).map(i -> rnd.nextInt(5)).toArray();
            Run r = admit(d, cache, 0, p, 4, restored);
            prefill(d, cache, r, 128);
            close(cache, r);
            assertTrue(cache.tree().snapshotPositions().size() <= 4);
        }
        cache.close();
        assertEquals(4, cache.freeEntries());
        assertEquals(d.allocator.pages(), d.allocator.freePages());
    }

    @Test
    void evictionThatCannotFreeEnoughPagesEvictsNothing() {
        Device d = new Device(40, 2, 8);
        DevicePrefixCache cache = cache(d, 2, 1 << 20, 256);
        int[] a = IntStream.range(0, 700).map(i -> 3 + i % 11).toArray();
        List<Integer> restored = new ArrayList<>();
        Run r = admit(d, cache, 0, a, 4, restored);
        prefill(d, cache, r, 512);
        close(cache, r);
        int cached = cache.tree().size();
        assertTrue(cached > 0 && d.allocator.freePages() < 40);
        // a running request holds most of the pool: what the tree alone holds cannot make room for 40 pages
        Run b = admit(d, cache, 1, IntStream.range(0, 300).map(i -> 1000 + i).toArray(), 4, restored);
        assertTrue(!cache.evictForPages(40));
        assertEquals(cached, cache.tree().size(), "nothing evicted in vain");
        // what can be freed is: every page the tree alone holds comes back
        int before = d.allocator.freePages();
        assertTrue(cache.evictForPages(before + 1));
        close(cache, b);
        cache.close();
        assertEquals(d.allocator.pages(), d.allocator.freePages());
    }

    @Test
    void aSharedPrefixNeedsNoRoomOfItsOwnAndAFailedAdmissionLeavesNothingBehind() {
        Device d = new Device(40, 3, 8);
        DevicePrefixCache cache = cache(d, 3, 1 << 20, 512);
        int[] a = IntStream.range(0, 700).map(i -> 3 + i % 11).toArray();
        List<Integer> restored = new ArrayList<>();
        Run r = admit(d, cache, 0, a, 4, restored);
        prefill(d, cache, r, 1024);              // leaves snapshots at 640 (the prompt's last aligned position)
        close(cache, r);
        int cachedPages = d.allocator.pages() - d.allocator.freePages();
        assertEquals(10, cachedPages, "the tree holds 640 tokens");
        // a running request takes 24 of the 30 free pages
        Run busy = admit(d, cache, 1, IntStream.range(0, 1530).map(i -> 5000 + i).toArray(), 2, restored);
        assertEquals(6, d.allocator.freePages());
        // the next turn (700 + 60 tokens, 20 to generate: 13 pages) shares the 10 cached ones and needs 3 of its own
        int[] next = concat(a, IntStream.range(0, 60).map(i -> 9000 + i).toArray());
        Run b = admit(d, cache, 2, next, 20, restored);
        assertEquals(640, b.position, "restored without evicting its own prefix");
        assertEquals(3, d.allocator.freePages());
        close(cache, b);
        // a request that cannot fit: nothing held, nothing taken, nothing counted
        long lookups = cache.stats().hits() + cache.stats().misses();
        PageTable t = d.allocator.newSequence();
        assertEquals(-1, cache.admit(2, next, t, 1000 * 64));
        assertEquals(0, t.pageCount());
        t.release();
        assertEquals(lookups, cache.stats().hits() + cache.stats().misses());
        assertTrue(cache.tree().size() > 0);
        close(cache, busy);
        cache.close();
        assertEquals(d.allocator.pages(), d.allocator.freePages());
    }
}
