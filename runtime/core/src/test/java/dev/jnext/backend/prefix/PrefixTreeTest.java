package dev.jnext.backend.prefix;

import dev.jnext.backend.PrefixCacheStats;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The prefix tree on its own, with the token ids themselves as the KV payload (so that a path's KV can be checked
 * against its tokens after splits) and a position string as the snapshot.
 */
class PrefixTreeTest {
    private static final long KV = 10;      // bytes a token
    private static final long SNAP = 1000;  // bytes a snapshot

    private static PrefixTree<int[], String> tree(long kvTokens, long snapshots) {
        return new PrefixTree<>((kv, from, to) -> Arrays.copyOfRange(kv, from, to), KV, SNAP, kvTokens * KV, snapshots * SNAP);
    }

    private static int[] seq(int n, int seed) {
        return IntStream.range(0, n).map(i -> seed * 100_000 + i).toArray();
    }

    private static int[] concat(int[] a, int[] b) {
        int[] c = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    private static PrefixTree.Node<int[], String> insert(PrefixTree<int[], String> t, int[] tokens, int end) {
        return t.insert(tokens, end, (from, to) -> Arrays.copyOfRange(tokens, from, to), () -> "state@" + end);
    }

    /** The KV along the path to a node, concatenated: must be the path's tokens. */
    private static int[] pathKv(PrefixTree<int[], String> t, PrefixTree.Node<int[], String> n) {
        return t.kvPath(n).stream().flatMapToInt(Arrays::stream).toArray();
    }

    @Test
    void aLookupResumesOnlyAtASnapshotWithinTheLimit() {
        var t = tree(10_000, 100);
        int[] a = seq(300, 1);
        var n128 = insert(t, a, 128);
        var n256 = insert(t, a, 256);
        assertEquals(256, n256.end());
        assertEquals("state@128", n128.snapshot());
        // the tree holds 256 tokens of a; a prompt of 300 matches 256 of them and resumes at 256
        var m = t.match(a, a.length - 1);
        assertSame(n256, m.node());
        assertEquals(256, m.resumeAt());
        assertEquals(256, m.matched());
        assertArrayEquals(Arrays.copyOf(a, 256), pathKv(t, m.node()));
        // the limit: a prompt of exactly 256 tokens must compute its last token itself, so it resumes at 128
        assertEquals(128, t.match(Arrays.copyOf(a, 256), 255).resumeAt());
        // a prompt leaving the path at 200 (between the snapshots) resumes from the snapshot before the branch
        int[] b = concat(Arrays.copyOf(a, 200), seq(50, 2));
        m = t.match(b, b.length - 1);
        assertEquals(128, m.resumeAt());
        assertEquals(200, m.matched(), "the branch point");
        // nothing in common: the root, a miss
        m = t.match(seq(10, 3), 9);
        assertSame(t.root(), m.node());
        assertFalse(m.hit());
    }

    @Test
    void aBranchInTheMiddleOfAnEdgeSplitsItAndKeepsTheSnapshotsWhereTheyWere() {
        var t = tree(10_000, 100);
        int[] a = seq(256, 1);
        var tail = insert(t, a, 256);
        t.hold(tail);
        int[] b = concat(Arrays.copyOf(a, 192), seq(100, 2));
        var branch = insert(t, b, 192);        // a snapshot at the branch point, on a's path
        assertEquals(192, branch.end());
        assertSame(tail, t.match(a, 255 + 1).node(), "the held node object is still the one ending at 256");
        assertEquals(192, tail.start(), "it now holds only the tail of its old edge");
        assertEquals(1, tail.holds());
        var bEnd = insert(t, b, 256);
        assertArrayEquals(Arrays.copyOf(b, 256), pathKv(t, bEnd));
        assertArrayEquals(a, pathKv(t, tail));
        assertEquals(256, t.match(b, b.length - 1).resumeAt(), "b resumes at its own snapshot");
        assertEquals(3, t.size());
        assertEquals(256 + 64, t.stats().storedTokens(), "a shared head of 192 tokens is stored once");
        // a third prompt sharing 250 tokens with a resumes from the branch snapshot at 192, not from 256
        int[] c = concat(Arrays.copyOf(a, 250), seq(30, 3));
        assertEquals(192, t.match(c, c.length - 1).resumeAt());
        // inserting a snapshot that is already there changes nothing
        assertSame(tail, insert(t, a, 256));
        assertEquals(3, t.stats().snapshots());
    }

    @Test
    void lruEvictionStaysWithinTheKvBudget() {
        var t = tree(300, 100);
        var first = insert(t, seq(128, 1), 128);
        var second = insert(t, seq(128, 2), 128);
        t.match(seq(128, 1), 200); // the first is now the most recently used
        var third = insert(t, seq(128, 3), 128);
        assertNotNull(third);
        assertTrue(t.contains(first));
        assertFalse(t.contains(second), "the least recently used leaf went");
        assertEquals(256 * KV, t.stats().kvBytes());
        assertEquals(1, t.stats().evictions());
        assertNull(insert(t, seq(301, 4), 301), "a path over the whole budget is not cached");
    }

    @Test
    void snapshotPressureDropsInnerSnapshotsAndKeepsThePath() {
        var t = tree(10_000, 2);
        int[] a = seq(512, 1);
        var n128 = insert(t, a, 128);
        var n256 = insert(t, a, 256);
        var n384 = insert(t, a, 384); // a third snapshot: the least recently used one (128, inner) goes, its KV stays
        assertNotNull(n384);
        assertTrue(t.contains(n128), "an inner node keeps its KV for the nodes below it");
        assertNull(n128.snapshot());
        assertEquals(2, t.stats().snapshots());
        assertEquals(384, t.stats().storedTokens());
        assertEquals(256, t.match(Arrays.copyOf(a, 300), 299).resumeAt());
        assertEquals(0, t.match(Arrays.copyOf(a, 200), 199).resumeAt(), "no snapshot left below 200");
        assertNotNull(n256);
    }

    @Test
    void heldNodesAreNeverEvictedAndTheirPathsStay() {
        var t = tree(550, 3);
        int[] a = seq(256, 1);
        var held = insert(t, a, 256);
        t.hold(held);
        // pressure from other prompts: the held path survives all of it
        for (int i = 2; i < 40; i++) {
            int n = 64 * (1 + i % 5);
            long evictionsBefore = t.stats().evictions();
            var node = insert(t, seq(n, i), n);
            PrefixCacheStats s = t.stats();
            assertTrue(s.kvBytes() <= s.kvBudgetBytes() && s.snapshotBytes() <= s.snapshotBudgetBytes(), "within the budgets");
            assertTrue(t.contains(held));
            assertEquals("state@256", held.snapshot());
            assertEquals(256, t.match(concat(a, seq(5, 99)), 260).resumeAt());
            if (n > 550 - 256) {
                assertNull(node, "only what fits beside the held path is cached");
                assertEquals(evictionsBefore, s.evictions(), "and what cannot fit evicts nothing");
            } else {
                assertNotNull(node);
            }
        }
        // with the budget full of held nodes, a new path is simply not cached
        var second = insert(t, seq(280, 100), 280);
        t.hold(second);
        assertNull(insert(t, seq(100, 101), 100));
        assertTrue(t.contains(held) && t.contains(second));
        // released, it can go
        t.release(held);
        assertNotNull(insert(t, seq(200, 102), 200));
        assertFalse(t.contains(held));
        assertTrue(t.contains(second));
    }

    @Test
    void anInsertNeverEvictsItsOwnPath() {
        var t = tree(300, 2);
        int[] a = seq(256, 1);
        insert(t, a, 128); // the only leaf, least recently used
        // extending a's path by 128 tokens needs 128 more tokens of KV than the 300-token budget has beside the
        // other leaf; the leaf to go is the other prompt's, never the node being extended
        var other = insert(t, seq(100, 2), 100);
        t.match(seq(100, 2), 100); // a's node is now the older one
        var n256 = insert(t, a, 256);
        assertNotNull(n256);
        assertFalse(t.contains(other));
        assertArrayEquals(a, pathKv(t, n256));
    }

    @Test
    void randomWorkloadsKeepTheInvariants() {
        SplittableRandom random = new SplittableRandom(7);
        var t = tree(2_000, 12);
        List<int[]> prompts = new ArrayList<>();
        List<PrefixTree.Node<int[], String>> held = new ArrayList<>();
        for (int round = 0; round < 600; round++) {
            int[] p;
            if (!prompts.isEmpty() && random.nextInt(3) > 0) {
                int[] base = prompts.get(random.nextInt(prompts.size()));
                int keep = random.nextInt(base.length + 1);
                p = concat(Arrays.copyOf(base, keep), IntStream.range(0, 1 + random.nextInt(300)).map(i -> random.nextInt(50)).toArray());
            } else {
                p = IntStream.range(0, 1 + random.nextInt(400)).map(i -> random.nextInt(50)).toArray();
            }
            prompts.add(p);
            var m = t.match(p, p.length - 1);
            assertTrue(m.resumeAt() <= p.length - 1 && m.resumeAt() <= m.matched());
            if (m.hit()) {
                assertArrayEquals(Arrays.copyOf(p, m.resumeAt()), pathKv(t, m.node()), "the KV of the resumed prefix");
                assertEquals("state@" + m.resumeAt(), m.node().snapshot());
            }
            for (int end = 64; end <= p.length; end += 64) {
                var n = insert(t, p, end);
                if (n != null) {
                    assertArrayEquals(Arrays.copyOf(p, end), pathKv(t, n));
                    if (random.nextInt(8) == 0) {
                        t.hold(n);
                        held.add(n);
                    }
                }
            }
            if (held.size() > 3) t.release(held.remove(random.nextInt(held.size())));
            for (var h : held) {
                assertTrue(t.contains(h), "a held node is never evicted");
                assertNotNull(h.snapshot());
            }
            PrefixCacheStats s = t.stats();
            assertTrue(s.kvBytes() <= s.kvBudgetBytes(), "KV " + s.kvBytes());
            assertTrue(s.snapshotBytes() <= s.snapshotBudgetBytes(), "snapshots " + s.snapshotBytes());
            assertEquals(s.snapshots(), t.snapshotPositions().size());
        }
        assertTrue(t.stats().evictions() > 0);
    }

    /** A payload with an identity, so that what the tree takes and lets go of can be counted. */
    private record Kv(int[] tokens) { }

    @Test
    void everyPayloadIsLetGoOfExactlyOnceWhenDroppedAndClearLetsGoOfTheRest() {
        java.util.Map<Object, Integer> live = new java.util.IdentityHashMap<>();
        java.util.function.Consumer<Object> take = o -> assertNull(live.put(o, 0), "a payload handed over twice");
        java.util.function.Consumer<Object> drop = o -> assertNotNull(live.remove(o), "a payload let go of twice, or never taken");
        PrefixTree.Disposer<Kv, String> disposer = new PrefixTree.Disposer<>() {
            @Override public void kvDropped(Kv kv) { drop.accept(kv); }
            @Override public void snapshotDropped(String snapshot) { drop.accept(snapshot); }
        };
        PrefixTree.KvSlicer<Kv> slicer = (kv, from, to) -> {
            Kv k = new Kv(Arrays.copyOfRange(kv.tokens(), from, to));
            take.accept(k);
            return k;
        };
        var t = new PrefixTree<>(slicer, disposer, KV, SNAP, 700 * KV, 6 * SNAP);
        SplittableRandom random = new SplittableRandom(7);
        List<int[]> prompts = new ArrayList<>();
        List<PrefixTree.Node<Kv, String>> held = new ArrayList<>();
        for (int round = 0; round < 300; round++) {
            int[] p;
            if (!prompts.isEmpty() && random.nextInt(3) > 0) {
                int[] base = prompts.get(random.nextInt(prompts.size()));
                p = concat(Arrays.copyOf(base, random.nextInt(base.length + 1)),
                        IntStream.range(0, 1 + random.nextInt(200)).map(i -> random.nextInt(20)).toArray());
            } else {
                p = IntStream.range(0, 1 + random.nextInt(300)).map(i -> random.nextInt(20)).toArray();
            }
            prompts.add(p);
            for (int end = 64; end <= p.length; end += 64) {
                int e = end;
                var n = t.insert(p, end, (from, to) -> {
                    Kv k = new Kv(Arrays.copyOfRange(p, from, to));
                    take.accept(k);
                    return k;
                }, () -> {
                    String s = new String("state@" + e); // a new object each time
                    take.accept(s);
                    return s;
                });
                if (n != null && random.nextInt(6) == 0) {
                    t.hold(n);
                    held.add(n);
                }
            }
            if (held.size() > 2) t.release(held.remove(random.nextInt(held.size())));
            if (random.nextInt(10) == 0) t.evictLeastRecentlyUsed();
            // what is live is exactly what the tree holds
            int payloads = t.size() + t.snapshotPositions().size();
            assertEquals(payloads, live.size(), "round " + round);
        }
        assertTrue(t.stats().evictions() > 0);
        t.clear();
        assertEquals(0, live.size(), "clear lets go of everything");
        assertEquals(0, t.size());
        assertEquals(0, t.stats().kvBytes());
        assertFalse(t.match(prompts.get(0), prompts.get(0).length - 1).hit());
    }

    @Test
    void snapshotPlansAreAlignedAndPastTheResumePoint() {
        assertEquals(List.of(128, 192), List.copyOf(SnapshotPlan.required(200, 130, 64, 64)));
        assertEquals(List.of(64, 192), List.copyOf(SnapshotPlan.required(200, 100, 0, 64)));
        // a prompt of exactly 256: its end (256) and the position before it (192)
        assertEquals(List.of(192, 256), List.copyOf(SnapshotPlan.required(256, 0, 0, 64)));
        assertEquals(List.of(128, 192, 256), List.copyOf(SnapshotPlan.all(256, 64, 64, 64, 128)));
        assertEquals(List.of(), List.copyOf(SnapshotPlan.required(40, 40, 0, 64)));
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> SnapshotPlan.all(256, 0, 0, 64, 100));
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> SnapshotPlan.required(10, 11, 0, 64));
    }

    @Test
    void aFailingSupplierLeavesTheTreeAsItWasAndLetsGoOfWhatItTook() {
        List<Object> dropped = new ArrayList<>();
        PrefixTree.Disposer<int[], String> disposer = new PrefixTree.Disposer<>() {
            @Override public void kvDropped(int[] kv) { dropped.add(kv); }
            @Override public void snapshotDropped(String snapshot) { dropped.add(snapshot); }
        };
        var t = new PrefixTree<int[], String>((kv, from, to) -> Arrays.copyOfRange(kv, from, to), disposer, KV, SNAP, 10_000 * KV, 10 * SNAP);
        int[] a = seq(300, 1);
        insert(t, a, 128);
        int size = t.size();
        long stored = t.stats().storedTokens();
        org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, () -> t.insert(a, 256,
                (from, to) -> Arrays.copyOfRange(a, from, to), () -> { throw new IllegalStateException("no room"); }));
        String snapshot = "taken";
        org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, () -> t.insert(a, 256,
                (from, to) -> { throw new IllegalStateException("no pages"); }, () -> snapshot));
        assertEquals(size, t.size());
        assertEquals(stored, t.stats().storedTokens());
        assertEquals(1, t.stats().snapshots());
        assertEquals(List.of(snapshot), dropped, "the snapshot taken before the KV failed is let go of");
        assertEquals(128, t.match(a, 299).resumeAt());
    }
}
