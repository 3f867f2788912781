package dev.jnext.structured;

import dev.jnext.backend.TokenMask;
import dev.jnext.tokenizer.QwenTokenizer;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Token masks of {@link JsonAutomaton} states over one tokenizer's vocabulary: which ids' whole byte strings keep a
 * state alive. Built once per engine (about a second for Qwen's 151k ids): a trie of every id's bytes (special tokens
 * left out: they are never JSON text) and a second trie of only the ids that are not plain string text.
 *
 * <p>A mask is a depth-first walk of the trie that advances a copy of the state by each byte and prunes a subtree at
 * the first byte that kills it, so its cost is the number of trie nodes that stay alive. Inside a string most of the
 * vocabulary stays alive; there the walk is skipped for the ids whose bytes are plain string text (no quote, no
 * backslash, no control character, whole UTF-8 characters), which keep any string alive: the mask starts from their
 * precomputed set and walks only the second trie. Masks are cached by grammar and state (an LRU of {@value
 * #DEFAULT_CACHE_MIB} MiB by default, system property {@value #CACHE_PROPERTY}), so a document's recurring states —
 * inside a string, after a comma, before a key — cost a lookup. Thread-safe.
 */
public final class TokenMasks {
    /** System property: the mask cache's size in MiB. */
    public static final String CACHE_PROPERTY = "jnext.structured.maskCacheMiB";
    static final int DEFAULT_CACHE_MIB = 32;

    private final int vocab;
    private final byte[][] bytes;
    private final Trie full;
    private final Trie nonPlain;
    private final long[] plain;
    private final int maxTokenBytes;
    private final Map<StateKey, TokenMask> cache;
    private final int cacheEntries;
    private final ThreadLocal<Walker> walkers;
    private long hits, misses; // guarded by cache

    /**
     * Indexes the ids below {@code vocabLimit} (the ids the model may sample) of {@code tokenizer}.
     *
     * @param vocabLimit masks cover ids {@code [0, vocabLimit)}; ids the tokenizer lacks are never allowed
     */
    public TokenMasks(QwenTokenizer tokenizer, int vocabLimit) {
        this(tokenizer, vocabLimit, -1);
    }

    /**
     * As {@link #TokenMasks(QwenTokenizer, int)} with a cache of {@code cacheEntries} masks (0: none, every mask is
     * computed — the benchmarks' worst case; −1: the default size in MiB, {@value #CACHE_PROPERTY}).
     */
    public TokenMasks(QwenTokenizer tokenizer, int vocabLimit, int cacheEntries) {
        this.vocab = vocabLimit;
        this.bytes = new byte[vocabLimit][];
        this.plain = new long[(vocabLimit + 63) >>> 6];
        int ids = Math.min(vocabLimit, tokenizer.vocabSize());
        int longest = 0;
        boolean[] inNonPlain = new boolean[vocabLimit];
        for (int id = 0; id < ids; id++) {
            byte[] b;
            try {
                if (tokenizer.isSpecial(id)) continue;
                b = tokenizer.tokenBytes(id);
            } catch (dev.jnext.JnextException e) { // a hole in the vocabulary
                continue;
            }
            if (b.length == 0) continue;
            bytes[id] = b;
            longest = Math.max(longest, b.length);
            if (isPlain(b)) {
                plain[id >>> 6] |= 1L << id;
            } else {
                inNonPlain[id] = true;
            }
        }
        this.maxTokenBytes = longest;
        boolean[] all = new boolean[vocabLimit];
        for (int id = 0; id < vocabLimit; id++) all[id] = bytes[id] != null;
        this.full = new Trie(bytes, all);
        this.nonPlain = new Trie(bytes, inNonPlain);
        long mib = Long.getLong(CACHE_PROPERTY, DEFAULT_CACHE_MIB);
        this.cacheEntries = cacheEntries >= 0 ? cacheEntries
                : (int) Math.max(16, Math.min(1 << 20, (mib << 20) / Math.max(1, 8L * plain.length)));
        this.cache = new LinkedHashMap<>(256, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<StateKey, TokenMask> eldest) {
                return size() > TokenMasks.this.cacheEntries;
            }
        };
        this.walkers = ThreadLocal.withInitial(() -> new Walker(maxTokenBytes));
    }

    /** Ids the masks cover. */
    public int vocabSize() {
        return vocab;
    }

    /** The bytes of an id as JSON text, or null for an id that can never be part of it (special, absent). */
    byte[] bytes(int id) {
        return id >= 0 && id < vocab ? bytes[id] : null;
    }

    /** Masks served from the cache and computed, since the start. */
    public long[] cacheCounts() {
        synchronized (cache) {
            return new long[]{hits, misses};
        }
    }

    /** The mask of state {@code st[0, 2·size)} of {@code g}, without the end-of-sequence ids; cached. */
    TokenMask mask(JsonGrammar g, long[] st, int size) {
        if (cacheEntries == 0) return compute(g, st, size);
        StateKey key = new StateKey(g, Arrays.copyOf(st, 2 * size));
        synchronized (cache) {
            TokenMask m = cache.get(key);
            if (m != null) {
                hits++;
                return m;
            }
            misses++;
        }
        TokenMask m = compute(g, st, size);
        synchronized (cache) {
            cache.put(key, m);
        }
        return m;
    }

    /** The mask of a state, computed (no cache). */
    TokenMask compute(JsonGrammar g, long[] st, int size) {
        long[] words = new long[plain.length];
        Walker w = walkers.get();
        if (JsonAutomaton.inFreeString(g, st, size)) {
            System.arraycopy(plain, 0, words, 0, plain.length);
            w.run(g, nonPlain, st, size, words);
        } else {
            w.run(g, full, st, size, words);
        }
        return TokenMask.ofWords(words, vocab);
    }

    /** Plain string text: printable ASCII but quote and backslash, and whole well-formed UTF-8 characters. */
    static boolean isPlain(byte[] b) {
        int s = JsonAutomaton.S_NORMAL;
        for (byte x : b) {
            int v = x & 0xFF;
            if (v == '"' || v == '\\') return false;
            s = JsonAutomaton.string(s, v, false);
            if (s < 0) return false;
        }
        return s == JsonAutomaton.S_NORMAL;
    }

    /** A grammar and a state: the cache key (the grammar by identity). */
    private record StateKey(JsonGrammar grammar, long[] state) {
        @Override
        public boolean equals(Object o) {
            return o instanceof StateKey k && k.grammar == grammar && Arrays.equals(k.state, state);
        }

        @Override
        public int hashCode() {
            return 31 * System.identityHashCode(grammar) + Arrays.hashCode(state);
        }
    }

    /**
     * A byte trie of some ids' byte strings, as first-child / next-sibling arrays (children in byte order); {@code
     * token[n]} is an id whose bytes end at node {@code n} (−1: none), further ids with the same bytes chained in
     * {@code same}.
     */
    static final class Trie {
        final int[] firstChild;
        final int[] nextSibling;
        final byte[] label;
        final int[] token;
        final int[] same;
        final int nodes;

        Trie(byte[][] bytes, boolean[] include) {
            Integer[] order = java.util.stream.IntStream.range(0, bytes.length).filter(i -> include[i]).boxed().toArray(Integer[]::new);
            Arrays.sort(order, (a, b) -> Arrays.compareUnsigned(bytes[a], bytes[b]));
            long total = 1;
            int longest = 0;
            for (int id : order) {
                total += bytes[id].length;
                longest = Math.max(longest, bytes[id].length);
            }
            int cap = (int) Math.min(total, Integer.MAX_VALUE - 8);
            int[] first = new int[cap], next = new int[cap], tok = new int[cap];
            byte[] lab = new byte[cap];
            Arrays.fill(first, -1);
            Arrays.fill(next, -1);
            Arrays.fill(tok, -1);
            int[] sameBytes = new int[bytes.length];
            Arrays.fill(sameBytes, -1);
            int[] path = new int[longest + 1];
            int[] last = new int[longest + 1];
            Arrays.fill(last, -1);
            int n = 1;
            byte[] prev = new byte[0];
            for (int id : order) {
                byte[] b = bytes[id];
                int lcp = 0;
                while (lcp < b.length && lcp < prev.length && b[lcp] == prev[lcp]) lcp++;
                for (int j = lcp; j < b.length; j++) {
                    int node = n++;
                    lab[node] = b[j];
                    if (last[j] < 0) first[path[j]] = node;
                    else next[last[j]] = node;
                    last[j] = node;
                    path[j + 1] = node;
                    last[j + 1] = -1;
                }
                int end = path[b.length];
                if (tok[end] < 0) {
                    tok[end] = id;
                } else {
                    int t = tok[end];
                    while (sameBytes[t] >= 0) t = sameBytes[t];
                    sameBytes[t] = id;
                }
                prev = b;
            }
            this.nodes = n;
            this.firstChild = Arrays.copyOf(first, n);
            this.nextSibling = Arrays.copyOf(next, n);
            this.label = Arrays.copyOf(lab, n);
            this.token = Arrays.copyOf(tok, n);
            this.same = sameBytes;
        }
    }

    /** The depth-first walk, with one state array per trie depth (reused: one walker per thread). */
    private static final class Walker {
        private final long[][] stacks;
        private final int[] sizes;
        private JsonGrammar g;
        private Trie trie;
        private long[] words;

        Walker(int maxDepth) {
            stacks = new long[maxDepth + 1][];
            for (int i = 0; i <= maxDepth; i++) stacks[i] = JsonAutomaton.newStack();
            sizes = new int[maxDepth + 1];
        }

        void run(JsonGrammar g, Trie trie, long[] st, int size, long[] words) {
            this.g = g;
            this.trie = trie;
            this.words = words;
            System.arraycopy(st, 0, stacks[0], 0, 2 * size);
            sizes[0] = size;
            walk(0, 0);
            this.g = null;
            this.trie = null;
            this.words = null;
        }

        private void walk(int node, int depth) {
            long[] cur = stacks[depth];
            long[] next = stacks[depth + 1];
            int size = sizes[depth];
            int len = 2 * size;
            for (int c = trie.firstChild[node]; c >= 0; c = trie.nextSibling[c]) {
                System.arraycopy(cur, 0, next, 0, len);
                int s = JsonAutomaton.feed(g, next, size, trie.label[c] & 0xFF);
                if (s < 0) continue;
                for (int id = trie.token[c]; id >= 0; id = trie.same[id]) words[id >>> 6] |= 1L << id;
                if (trie.firstChild[c] >= 0) {
                    sizes[depth + 1] = s;
                    walk(c, depth + 1);
                }
            }
        }
    }
}
