package dev.jnext.gpu;

import java.util.Locale;

/** Human-readable byte counts for messages. */
public final class Bytes {
    private Bytes() {}

    /** {@code bytes} in B, KiB, MiB, GiB or TiB, e.g. {@code "1.50 GiB"}. */
    public static String human(long bytes) {
        if (bytes < 1024) return bytes + " B";
        double v = bytes;
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, "%.2f %s", v, units[u]);
    }
}
