package dev.jnext.bench;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.Stream;

import java.util.List;
import java.util.Locale;
import java.util.Map;

/** One {@code jnext bench} suite: runs its benchmarks, then reports rows (a table) and flat figures (JSON). */
public interface BenchSuite {
    /** One benchmark: shape, median µs, achieved rate, share of the ceiling measured in the same run, a note. */
    record Row(String name, String shape, double micros, String rate, String ofCeiling, String note) {}

    void runAll();

    List<Row> rows();

    /** Flat name → value map of every figure (for JSON output). */
    Map<String, Double> numbers();

    default String table() {
        return render(rows());
    }

    /**
     * Measures the device copy ceiling (1 GiB device-to-device, bytes read + written), adds its row and figure,
     * and returns it in TB/s: every suite measures it in its own run so that "% of copy" compares like with like.
     */
    static double measureCopyCeiling(Gpu gpu, Stream s, GpuTimer timer, List<Row> rows, Map<String, Double> numbers) {
        long bytes = 1L << 30;
        try (DeviceBuffer a = gpu.allocate(bytes, "copy.src"); DeviceBuffer b = gpu.allocate(bytes, "copy.dst")) {
            a.fill((byte) 1, s);
            double ms = timer.medianMillis(() -> b.copyFrom(a, 0, 0, bytes, s), 3, 20);
            double tbps = 2.0 * bytes / ms / 1e9;
            numbers.put("copy_TBps", tbps);
            rows.add(new Row("device copy (ceiling)", "1 GiB", ms * 1e3, fmt("%.2f TB/s", tbps), "100%", "read + write"));
            return tbps;
        }
    }

    static String pct(double fraction) {
        return fmt("%.0f%%", 100 * fraction);
    }

    static String fmt(String format, Object... args) {
        return String.format(Locale.ROOT, format, args);
    }

    /** A fixed-width text table, each column as wide as its widest cell. */
    static String render(List<Row> rows) {
        int[] w = {"benchmark".length(), "shape".length(), "rate".length(), "of ceil".length()};
        for (Row r : rows) {
            w[0] = Math.max(w[0], r.name().length());
            w[1] = Math.max(w[1], r.shape().length());
            w[2] = Math.max(w[2], r.rate().length());
            w[3] = Math.max(w[3], r.ofCeiling().length());
        }
        String head = "%-" + w[0] + "s  %-" + w[1] + "s  %10s  %-" + w[2] + "s  %-" + w[3] + "s  %s%n";
        String line = "%-" + w[0] + "s  %-" + w[1] + "s  %10.2f  %-" + w[2] + "s  %-" + w[3] + "s  %s%n";
        StringBuilder sb = new StringBuilder(fmt(head, "benchmark", "shape", "us", "rate", "of ceil", "note"));
        for (Row r : rows) sb.append(fmt(line, r.name(), r.shape(), r.micros(), r.rate(), r.ofCeiling(), r.note()));
        return sb.toString();
    }
}
