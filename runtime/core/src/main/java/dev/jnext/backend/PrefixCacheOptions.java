package dev.jnext.backend;

import dev.jnext.JnextException;

import java.util.Locale;
import java.util.Objects;

/**
 * Prefix caching for the hybrid model: a radix tree over token ids whose nodes hold the KV of the full-attention layers
 * for their tokens and, at chosen positions, snapshots of the conv and recurrent states of every Gated DeltaNet layer.
 * A new request resumes from the longest prefix of its prompt that ends at a snapshot and prefills only the rest.
 * The tree evicts least recently used nodes to stay within two budgets, both in bytes: {@code kvBytes} for the cached
 * tokens' KV and {@code snapshotBytes} for the state snapshots. Nodes a running request holds are never evicted.
 *
 * <p>Snapshots are taken every {@code snapshotInterval} tokens (rounded up to a multiple of the backend's {@link
 * ModelBackend#prefillAlignment()}), at the last aligned position of each prompt, and at the aligned position just
 * before the point where a prompt leaves a path the tree already holds (a branch point). Only prompt tokens are cached:
 * a generated token's state comes from decode steps, whose arithmetic differs from a prefill's.
 *
 * <p>The CPU backend implements it (bitwise exact: a request resumed from the cache gets the bits of a cold run). The
 * CUDA backend shares the KV pool's pages with the tree and keeps the snapshots in an arena of its own in the memory plan;
 * it snapshots only where a prompt chunk ends, so it ends chunks at the branch point and the prompt's last aligned
 * positions, and takes the interval snapshots where chunks happen to end (see {@code src/site/markdown/serving.md}).
 *
 * @param enabled          whether the backend caches prefixes at all
 * @param kvBytes          most bytes of cached KV (the full-attention layers' keys and values), at least 0
 * @param snapshotBytes    most bytes of GDN state snapshots, at least 0
 * @param snapshotInterval tokens between two snapshots along a prompt, at least 1
 */
public record PrefixCacheOptions(boolean enabled, long kvBytes, long snapshotBytes, int snapshotInterval) {

    /** KV budget of {@link #on()}: 1 GiB. */
    public static final long DEFAULT_KV_BYTES = 1L << 30;
    /** Snapshot budget of {@link #on()}: 1 GiB. */
    public static final long DEFAULT_SNAPSHOT_BYTES = 1L << 30;
    /** Snapshot interval of {@link #on()}: every 512 tokens. */
    public static final int DEFAULT_SNAPSHOT_INTERVAL = 512;

    /** @throws JnextException naming a budget or interval out of its range */
    public PrefixCacheOptions {
        if (kvBytes < 0) throw new JnextException("the prefix cache's KV budget must be >= 0 bytes, got " + kvBytes);
        if (snapshotBytes < 0) {
            throw new JnextException("the prefix cache's snapshot budget must be >= 0 bytes, got " + snapshotBytes);
        }
        if (snapshotInterval < 1) {
            throw new JnextException("the prefix cache's snapshot interval must be at least 1 token, got " + snapshotInterval);
        }
    }

    /** No prefix caching (the library's default). */
    public static PrefixCacheOptions off() {
        return new PrefixCacheOptions(false, DEFAULT_KV_BYTES, DEFAULT_SNAPSHOT_BYTES, DEFAULT_SNAPSHOT_INTERVAL);
    }

    /** Prefix caching with the default budgets (1 GiB of KV, 1 GiB of snapshots, a snapshot every 512 tokens). */
    public static PrefixCacheOptions on() {
        return new PrefixCacheOptions(true, DEFAULT_KV_BYTES, DEFAULT_SNAPSHOT_BYTES, DEFAULT_SNAPSHOT_INTERVAL);
    }

    /** These options switched on or off. */
    public PrefixCacheOptions withEnabled(boolean on) {
        return new PrefixCacheOptions(on, kvBytes, snapshotBytes, snapshotInterval);
    }

    /** These options with a KV budget of {@code bytes}. */
    public PrefixCacheOptions withKvBytes(long bytes) {
        return new PrefixCacheOptions(enabled, bytes, snapshotBytes, snapshotInterval);
    }

    /** These options with a snapshot budget of {@code bytes}. */
    public PrefixCacheOptions withSnapshotBytes(long bytes) {
        return new PrefixCacheOptions(enabled, kvBytes, bytes, snapshotInterval);
    }

    /** These options with a snapshot every {@code tokens} tokens. */
    public PrefixCacheOptions withSnapshotInterval(int tokens) {
        return new PrefixCacheOptions(enabled, kvBytes, snapshotBytes, tokens);
    }

    /**
     * Parses a byte count: a number with an optional binary suffix, {@code k}, {@code m}, {@code g} (also {@code kib},
     * {@code mb}, ...): {@code 1073741824}, {@code 512m}, {@code 2g}.
     *
     * @param what names the value in the error message
     * @throws JnextException naming {@code what} and the text when it is no byte count
     */
    public static long parseBytes(String s, String what) {
        Objects.requireNonNull(s, what);
        String t = s.trim().toLowerCase(Locale.ROOT).replace("ib", "").replace("b", "");
        long unit = 1;
        if (!t.isEmpty()) {
            switch (t.charAt(t.length() - 1)) {
                case 'k' -> unit = 1L << 10;
                case 'm' -> unit = 1L << 20;
                case 'g' -> unit = 1L << 30;
                case 't' -> unit = 1L << 40;
                default -> { }
            }
            if (unit > 1) t = t.substring(0, t.length() - 1);
        }
        try {
            long n = Long.parseLong(t.trim());
            if (n < 0) throw new NumberFormatException();
            return Math.multiplyExact(n, unit);
        } catch (NumberFormatException | ArithmeticException e) {
            throw new JnextException(what + " must be a byte count (1073741824, 512m, 2g), got \"" + s + "\"");
        }
    }

    @Override
    public String toString() {
        return enabled ? "on(kv=" + bytes(kvBytes) + ",snapshots=" + bytes(snapshotBytes) + ",interval=" + snapshotInterval + ")"
                : "off";
    }

    private static String bytes(long b) {
        if (b >= 1L << 30 && b % (1L << 30) == 0) return (b >> 30) + "g";
        if (b >= 1L << 20 && b % (1L << 20) == 0) return (b >> 20) + "m";
        if (b >= 1L << 10 && b % (1L << 10) == 0) return (b >> 10) + "k";
        return Long.toString(b);
    }
}
