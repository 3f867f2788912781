package dev.jnext.cuda;

import dev.jnext.JnextException;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * What the CUDA runner will allocate, item by item, computed before the first allocation so that a GPU that is too
 * small fails with the numbers instead of an out-of-memory error halfway through loading.
 */
final class MemoryPlan {
    /** Kept free for graph executables, cuBLASLt, module images and the driver. */
    static final long RESERVE_BYTES = 512L << 20;

    private final Map<String, Long> items = new LinkedHashMap<>();

    public MemoryPlan add(String item, long bytes) {
        if (bytes < 0) throw new IllegalArgumentException("memory plan: negative size for " + item);
        items.merge(item, bytes, Math::addExact);
        return this;
    }

    public Map<String, Long> items() {
        return Map.copyOf(items);
    }

    public long total() {
        long t = RESERVE_BYTES;
        for (long b : items.values()) t = Math.addExact(t, b);
        return t;
    }

    /** Throws when {@code free} device bytes cannot hold the plan, naming every item. */
    public void check(long free, String device) {
        if (total() > free) {
            throw new JnextException(device + " has " + gib(free) + " free but this model needs " + gib(total()) + " (" + describe()
                    + "); use a smaller KV budget, fewer sequence slots or a smaller step token budget, or a larger GPU");
        }
    }

    /** "weights 4.70 GiB, activations 1.20 GiB, ..., reserve 0.50 GiB". */
    public String describe() {
        StringBuilder sb = new StringBuilder();
        for (var e : items.entrySet()) sb.append(e.getKey()).append(' ').append(gib(e.getValue())).append(", ");
        return sb.append("reserve ").append(gib(RESERVE_BYTES)).toString();
    }

    static String gib(long bytes) {
        return String.format(Locale.ROOT, "%.2f GiB", bytes / (double) (1L << 30));
    }
}
