package dev.jnext.backend.prefix;

import dev.jnext.backend.PrefixCacheStats;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;

/**
 * The prefix cache's radix tree over token ids, for a hybrid model whose sequence state is partly a function of a prefix
 * of tokens (the attention layers' KV: each token's keys and values) and partly not (the recurrent and conv state of the
 * linear-attention layers, which summarize everything before a position). Each node owns an edge of tokens
 * {@code [start, end)} of the paths through it and the KV payload {@code K} of exactly those tokens; a node may also hold
 * a snapshot {@code S} of the recurrent state at its {@code end}. A lookup can only resume at a node that holds a
 * snapshot: the KV of the prefix alone does not give the recurrent state.
 *
 * <p><b>Budgets and eviction.</b> The tree holds at most {@code kvBudget} bytes of KV ({@code kvBytesPerToken} a token)
 * and {@code snapshotBudget} bytes of snapshots ({@code snapshotBytes} each). An insertion that does not fit evicts
 * the least recently used evictable entries first — under KV pressure whole leaves (their KV and snapshot), under
 * snapshot pressure a snapshot (and its node, when it is a leaf) — and is skipped when nothing more can be evicted. A node
 * with a non-zero {@link #hold hold} count is never evicted, nor is its snapshot dropped; its ancestors cannot be
 * removed while it exists (only leaves are removed), so a held node keeps its whole path. A leaf that is left without a
 * snapshot is useless (nothing can resume there) and is removed with the leaf below it.
 *
 * <p><b>Splits.</b> Inserting a path that leaves an edge in its middle splits that node in two: a new node for the head of
 * the edge (no snapshot: there is no state at the split point) and the old node object for the tail, which keeps its
 * snapshot, children and holds — so a holder's reference stays valid.
 *
 * <p>Not thread-safe: the backend's engine thread drives it; {@link #stats()} reads a published copy from any thread.
 *
 * @param <K> a node's KV payload (the CPU backend: float arrays of every attention layer)
 * @param <S> a snapshot (the CPU backend: every GDN layer's conv and recurrent state)
 */
public final class PrefixTree<K, S> {

    /** Cuts the KV payload of a node when the node is split. */
    @FunctionalInterface
    public interface KvSlicer<K> {
        /** Tokens {@code [from, to)} of {@code kv}, counted from the node's first token. */
        K slice(K kv, int from, int to);
    }

    /**
     * Told when the tree lets go of a payload: a node's KV when the node is removed or split (a split makes two new slices
     * and lets go of the old payload), a snapshot when it is evicted. A backend whose payloads own memory (the CUDA
     * backend's shared KV pages and snapshot entries) frees it here; each payload the tree took (from a {@link KvSource},
     * a {@link KvSlicer} or a snapshot supplier) is let go of exactly once, or is still in the tree.
     */
    public interface Disposer<K, S> {
        /** The tree no longer holds {@code kv}. */
        void kvDropped(K kv);

        /** The tree no longer holds {@code snapshot}. */
        void snapshotDropped(S snapshot);

        /** A disposer that does nothing (payloads the garbage collector frees). */
        static <K, S> Disposer<K, S> none() {
            return new Disposer<>() {
                @Override
                public void kvDropped(K kv) { }

                @Override
                public void snapshotDropped(S snapshot) { }
            };
        }
    }

    /** The KV of the tokens of an inserted path that the tree does not hold yet. */
    @FunctionalInterface
    public interface KvSource<K> {
        /** The KV of the path's tokens at positions {@code [from, to)}. */
        K kv(int from, int to);
    }

    /** One node: an edge of tokens, their KV, and maybe a snapshot of the state at its end. */
    public static final class Node<K, S> {
        private Node<K, S> parent;
        private final Map<Integer, Node<K, S>> children = new HashMap<>(4);
        private int[] tokens;
        private K kv;
        private S snapshot;
        private int start;
        private int holds;
        private long lastUsed;

        private Node(Node<K, S> parent, int start, int[] tokens, K kv) {
            this.parent = parent;
            this.start = start;
            this.tokens = tokens;
            this.kv = kv;
        }

        /** Position of the edge's first token (the root: 0). */
        public int start() {
            return start;
        }

        /** Position after the edge's last token: the length of the prefix this node ends. */
        public int end() {
            return start + tokens.length;
        }

        /** The KV of the edge's tokens (null for the root). */
        public K kv() {
            return kv;
        }

        /** The state at {@link #end()}, or null. */
        public S snapshot() {
            return snapshot;
        }

        /** How many holders keep the node from eviction. */
        public int holds() {
            return holds;
        }

        private boolean isLeaf() {
            return children.isEmpty();
        }
    }

    /**
     * A lookup's answer.
     *
     * @param node     the deepest node on the prompt's path that holds a snapshot and ends within the limit (the root
     *                 when there is none: resume from nothing)
     * @param resumeAt its end: how many prompt tokens can be restored (0 for the root)
     * @param matched  how many leading prompt tokens the tree holds at all (≥ {@code resumeAt}; past it the prompt
     *                 leaves the tree, or ends)
     */
    public record Match<K, S>(Node<K, S> node, int resumeAt, int matched) {
        /** Whether anything can be restored. */
        public boolean hit() {
            return resumeAt > 0;
        }
    }

    private final Node<K, S> root = new Node<>(null, 0, new int[0], null);
    private final Set<Node<K, S>> nodes = new LinkedHashSet<>(); // every node but the root
    private final KvSlicer<K> slicer;
    private final Disposer<K, S> disposer;
    private final long kvBytesPerToken;
    private final long snapshotBytes;
    private final long kvBudget;
    private final long snapshotBudget;
    private long clock;
    private long storedTokens;
    private long snapshots;
    private long hits;
    private long misses;
    private long evictions;
    private long cachedTokens;
    private volatile PrefixCacheStats published;

    /**
     * An empty tree.
     *
     * @param kvBytesPerToken bytes of KV one token takes (all attention layers), at least 0
     * @param snapshotBytes   bytes one snapshot takes, at least 0
     * @param kvBudget        most bytes of KV held
     * @param snapshotBudget  most bytes of snapshots held
     */
    public PrefixTree(KvSlicer<K> slicer, long kvBytesPerToken, long snapshotBytes, long kvBudget, long snapshotBudget) {
        this(slicer, Disposer.none(), kvBytesPerToken, snapshotBytes, kvBudget, snapshotBudget);
    }

    /**
     * An empty tree whose payloads are let go of through {@code disposer}.
     *
     * @param kvBytesPerToken bytes of KV one token takes (all attention layers), at least 0
     * @param snapshotBytes   bytes one snapshot takes, at least 0
     * @param kvBudget        most bytes of KV held
     * @param snapshotBudget  most bytes of snapshots held
     */
    public PrefixTree(KvSlicer<K> slicer, Disposer<K, S> disposer, long kvBytesPerToken, long snapshotBytes, long kvBudget,
                      long snapshotBudget) {
        if (kvBytesPerToken < 0 || snapshotBytes < 0 || kvBudget < 0 || snapshotBudget < 0) {
            throw new IllegalArgumentException("sizes and budgets must be >= 0");
        }
        this.slicer = slicer;
        this.disposer = java.util.Objects.requireNonNull(disposer, "disposer");
        this.kvBytesPerToken = kvBytesPerToken;
        this.snapshotBytes = snapshotBytes;
        this.kvBudget = kvBudget;
        this.snapshotBudget = snapshotBudget;
        publish();
    }

    /** The root: the empty prefix (resume from nothing). It is never evicted and holds no snapshot. */
    public Node<K, S> root() {
        return root;
    }

    /**
     * Finds the longest prefix of {@code tokens} that ends at a snapshot, at most {@code limit} tokens long, and marks
     * the nodes it passes as just used. Counts nothing: see {@link #recordLookup}.
     */
    public Match<K, S> match(int[] tokens, int limit) {
        long now = ++clock;
        Node<K, S> node = root;
        Node<K, S> best = root;
        int pos = 0;
        while (pos < tokens.length) {
            Node<K, S> child = node.children.get(tokens[pos]);
            if (child == null) break;
            int k = common(child.tokens, tokens, pos, tokens.length);
            pos += k;
            if (k < child.tokens.length) break;
            child.lastUsed = now;
            node = child;
            if (child.snapshot != null && child.end() <= limit) best = child;
        }
        return new Match<>(best, best.end(), pos);
    }

    /** The KV payloads on the path from the root to {@code node}, in order (empty for the root). */
    public List<K> kvPath(Node<K, S> node) {
        List<K> out = new ArrayList<>();
        for (Node<K, S> n = node; n != root; n = n.parent) out.add(n.kv);
        Collections.reverse(out);
        return out;
    }

    /** Counts a lookup: a hit when {@code restoredTokens} > 0 (they add to the cached tokens), else a miss. */
    public void recordLookup(int restoredTokens) {
        if (restoredTokens > 0) {
            hits++;
            cachedTokens += restoredTokens;
        } else {
            misses++;
        }
        publish();
    }

    /** Keeps {@code node} (and so its path) from eviction until a matching {@link #release}. The root needs none. */
    public void hold(Node<K, S> node) {
        if (node == root) return;
        if (!nodes.contains(node)) throw new IllegalStateException("the node is not in the tree");
        node.holds++;
    }

    /** Undoes one {@link #hold}. */
    public void release(Node<K, S> node) {
        if (node == root) return;
        if (node.holds <= 0) throw new IllegalStateException("the node is not held");
        node.holds--;
    }

    /**
     * Makes the tree hold the path {@code tokens[0, end)} with a snapshot at {@code end}: the tokens it lacks get nodes
     * (their KV from {@code source}), an edge the path leaves in its middle is split, and the node ending at {@code end}
     * gets {@code snapshot.get()} unless it has one already. Evicts least recently used entries to make room (never a held
     * node, never a node on this path).
     *
     * @return the node ending at {@code end}, or null when the path and snapshot cannot be made to fit the budgets
     */
    public Node<K, S> insert(int[] tokens, int end, KvSource<K> source, Supplier<S> snapshot) {
        if (end < 1 || end > tokens.length) throw new IllegalArgumentException("end " + end + " outside 1.." + tokens.length);
        // what is there already: the deepest node wholly on the path, and the child whose edge the path leaves (or ends in)
        Node<K, S> deepest = root;
        Node<K, S> partial = null;
        int pos = 0;
        while (pos < end) {
            Node<K, S> child = deepest.children.get(tokens[pos]);
            if (child == null) break;
            int k = common(child.tokens, tokens, pos, end);
            if (k < child.tokens.length) {
                partial = child;
                pos += k;
                break;
            }
            pos += k;
            deepest = child;
        }
        int matched = pos;
        long kvNeed = (end - matched) * kvBytesPerToken;
        boolean endsAtNode = matched == end && partial == null;
        boolean needsSnapshot = !(endsAtNode && deepest.snapshot != null);
        long snapNeed = needsSnapshot ? snapshotBytes : 0;
        if (kvNeed > kvBudget || snapNeed > snapshotBudget) return null;
        // room, never at the expense of this path
        hold(deepest);
        if (partial != null) hold(partial);
        try {
            // what eviction cannot free: held nodes' snapshots, and the KV of held nodes and of everything above them
            if (kvUsed() + kvNeed > kvBudget || snapshotsUsed() + snapNeed > snapshotBudget) {
                Set<Node<K, S>> pinned = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
                long pinnedSnapshots = 0;
                for (Node<K, S> n : nodes) {
                    if (n.holds == 0) continue;
                    if (n.snapshot != null) pinnedSnapshots++;
                    for (Node<K, S> up = n; up != root && pinned.add(up); up = up.parent) { }
                }
                long pinnedTokens = pinned.stream().mapToLong(n -> n.tokens.length).sum();
                if (pinnedTokens * kvBytesPerToken + kvNeed > kvBudget
                        || pinnedSnapshots * snapshotBytes + snapNeed > snapshotBudget) {
                    return null; // it cannot fit: evict nothing for it
                }
            }
            while (kvUsed() + kvNeed > kvBudget) {
                if (!evictLeaf()) return null;
            }
            while (snapshotsUsed() + snapNeed > snapshotBudget) {
                if (!evictSnapshot()) return null;
            }
        } finally {
            release(deepest);
            if (partial != null) release(partial);
            publish();
        }
        // the new payloads before any change, so that a supplier that fails leaves the tree as it was
        S snap = needsSnapshot ? snapshot.get() : null;
        K kv;
        try {
            kv = matched < end ? source.kv(matched, end) : null;
        } catch (RuntimeException | Error e) {
            if (snap != null) disposer.snapshotDropped(snap);
            throw e;
        }
        long now = ++clock;
        Node<K, S> at = deepest;
        if (partial != null) at = split(partial, matched - partial.start);
        if (matched < end) {
            int[] edge = java.util.Arrays.copyOfRange(tokens, matched, end);
            Node<K, S> leaf = new Node<>(at, matched, edge, kv);
            at.children.put(edge[0], leaf);
            nodes.add(leaf);
            storedTokens += edge.length;
            at = leaf;
        }
        if (at.snapshot == null) {
            at.snapshot = snap;
            snapshots++;
        } else if (snap != null) {
            disposer.snapshotDropped(snap);
        }
        for (Node<K, S> n = at; n != root; n = n.parent) n.lastUsed = now;
        publish();
        return at;
    }

    /** Splits {@code node} after {@code head} tokens; returns the new node of the head (the old object keeps the tail). */
    private Node<K, S> split(Node<K, S> node, int head) {
        Node<K, S> parent = node.parent;
        int[] all = node.tokens;
        K old = node.kv;
        Node<K, S> h = new Node<>(parent, node.start, java.util.Arrays.copyOf(all, head), slicer.slice(old, 0, head));
        h.lastUsed = node.lastUsed;
        node.kv = slicer.slice(old, head, all.length);
        disposer.kvDropped(old);
        node.tokens = java.util.Arrays.copyOfRange(all, head, all.length);
        node.start += head;
        node.parent = h;
        parent.children.put(all[0], h);
        h.children.put(node.tokens[0], node);
        nodes.add(h);
        return h;
    }

    /**
     * Removes the least recently used leaf that nobody holds (with its KV and snapshot, and any ancestor it leaves a bare
     * leaf), for a backend that needs the memory back — e.g. KV pages for a running request; false when nothing can go.
     */
    public boolean evictLeastRecentlyUsed() {
        boolean evicted = evictLeaf();
        if (evicted) publish();
        return evicted;
    }

    /** Removes the least recently used leaf that nobody holds; false when there is none. */
    private boolean evictLeaf() {
        Node<K, S> victim = null;
        for (Node<K, S> n : nodes) {
            if (n.isLeaf() && n.holds == 0 && (victim == null || n.lastUsed < victim.lastUsed)) victim = n;
        }
        if (victim == null) return false;
        remove(victim);
        return true;
    }

    /** Drops the least recently used snapshot that nobody holds (with its node, when a leaf); false when there is none. */
    private boolean evictSnapshot() {
        Node<K, S> victim = null;
        for (Node<K, S> n : nodes) {
            if (n.snapshot != null && n.holds == 0 && (victim == null || n.lastUsed < victim.lastUsed)) victim = n;
        }
        if (victim == null) return false;
        if (victim.isLeaf()) {
            remove(victim);
        } else {
            S dropped = victim.snapshot;
            victim.snapshot = null;
            snapshots--;
            evictions++;
            disposer.snapshotDropped(dropped);
        }
        return true;
    }

    /** Removes a leaf, then every ancestor that is left a leaf without snapshot and holder. */
    private void remove(Node<K, S> leaf) {
        Node<K, S> n = leaf;
        while (n != root && n.isLeaf() && n.holds == 0 && (n == leaf || n.snapshot == null)) {
            Node<K, S> parent = n.parent;
            parent.children.remove(n.tokens[0]);
            nodes.remove(n);
            storedTokens -= n.tokens.length;
            K kv = n.kv;
            S snapshot = n.snapshot;
            if (snapshot != null) {
                snapshots--;
                evictions++;
            }
            n.parent = null;
            n.kv = null;
            n.snapshot = null;
            disposer.kvDropped(kv);
            if (snapshot != null) disposer.snapshotDropped(snapshot);
            n = parent;
        }
    }

    private static int common(int[] edge, int[] tokens, int from, int to) {
        int n = Math.min(edge.length, to - from);
        int k = 0;
        while (k < n && edge[k] == tokens[from + k]) k++;
        return k;
    }

    private long kvUsed() {
        return storedTokens * kvBytesPerToken;
    }

    private long snapshotsUsed() {
        return snapshots * snapshotBytes;
    }

    /** Whether {@code node} is (still) in the tree. */
    public boolean contains(Node<K, S> node) {
        return node == root || nodes.contains(node);
    }

    /** Nodes in the tree, the root not counted. */
    public int size() {
        return nodes.size();
    }

    /** Positions ({@link Node#end()}) of every snapshot the tree holds, in no particular order. */
    public List<Integer> snapshotPositions() {
        List<Integer> out = new ArrayList<>();
        for (Node<K, S> n : nodes) if (n.snapshot != null) out.add(n.end());
        return out;
    }

    /**
     * Lets go of every node (the backend closes): each KV payload and snapshot goes to the disposer once. Held nodes are
     * let go of too; the tree is empty afterwards.
     */
    public void clear() {
        for (Node<K, S> n : nodes) {
            disposer.kvDropped(n.kv);
            if (n.snapshot != null) disposer.snapshotDropped(n.snapshot);
            n.kv = null;
            n.snapshot = null;
            n.parent = null;
        }
        nodes.clear();
        root.children.clear();
        storedTokens = 0;
        snapshots = 0;
        publish();
    }

    /** The counters and sizes, as last published (any thread). */
    public PrefixCacheStats stats() {
        return published;
    }

    private void publish() {
        published = new PrefixCacheStats(true, hits, misses, evictions, cachedTokens, storedTokens, snapshots, kvUsed(),
                snapshotsUsed(), kvBudget, snapshotBudget);
    }
}
