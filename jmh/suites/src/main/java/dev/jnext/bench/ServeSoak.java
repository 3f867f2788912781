package dev.jnext.bench;

import dev.jnext.JnextException;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A soak run: rounds of {@link ServeBench} load until a duration has passed, sampling the server's heap after GC,
 * live threads and device memory (its /metrics) after every round, then a verdict on growth. The first quarter of the
 * samples is warm-up; then the last third of the samples is compared with the first third.
 */
public final class ServeSoak {
    static final long HEAP_SLACK_BYTES = 16L << 20;
    static final double HEAP_SLACK_RATIO = 0.25;
    static final int THREAD_SLACK = 4;
    static final long DEVICE_SLACK_BYTES = 1L << 20;

    /** One sample of the server. */
    public record Sample(double seconds, long requests, long heapAfterGc, long threads, long deviceMemory) {}

    /** Whether nothing grew, and what did. */
    public record Verdict(boolean ok, List<String> problems) {}

    public record Result(List<Sample> samples, Verdict verdict, List<ServeBench.Report> rounds) {
        public Map<String, Object> toMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("ok", verdict.ok());
            m.put("problems", verdict.problems());
            m.put("samples", samples);
            m.put("rounds", rounds.size());
            m.put("requests", rounds.stream().mapToInt(ServeBench.Report::requests).sum());
            m.put("failed", rounds.stream().mapToInt(ServeBench.Report::failed).sum());
            return m;
        }
    }

    private ServeSoak() {}

    /**
     * Runs rounds until {@code duration} has passed.
     *
     * @param collectGarbage collect garbage before each sample (the server runs in this JVM)
     */
    public static Result run(ServeBench bench, Duration duration, boolean collectGarbage, Consumer<String> progress) {
        long start = System.nanoTime();
        long end = start + duration.toNanos();
        List<Sample> samples = new ArrayList<>();
        List<ServeBench.Report> rounds = new ArrayList<>();
        long requests = 0;
        while (System.nanoTime() < end || samples.size() < 4) {
            ServeBench.Report r = bench.run();
            rounds.add(r);
            requests += r.requests();
            if (collectGarbage) {
                System.gc();
                System.gc();
            }
            Sample s = sample(bench.getText("/metrics"), (System.nanoTime() - start) / 1e9, requests);
            samples.add(s);
            progress.accept(String.format(Locale.ROOT, "soak %.0f s: %d requests (%d failed this round), %.1f tok/s, heap after GC %.1f MiB, %d threads%s",
                    s.seconds(), requests, r.failed(), r.outputTokensPerSecond(), s.heapAfterGc() / 1048576.0, s.threads(),
                    s.deviceMemory() >= 0 ? String.format(Locale.ROOT, ", device %.1f MiB", s.deviceMemory() / 1048576.0) : ""));
        }
        return new Result(samples, judge(samples), rounds);
    }

    static Sample sample(String metrics, double seconds, long requests) {
        return new Sample(seconds, requests, (long) gauge(metrics, "jnext_jvm_heap_used_after_gc_bytes"),
                (long) gauge(metrics, "jnext_jvm_threads"), (long) gauge(metrics, "jnext_device_memory_used_bytes"));
    }

    static double gauge(String metrics, String name) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + " (\\S+)$").matcher(metrics);
        if (!m.find()) throw new JnextException("the server's /metrics has no " + name + " (is it a jnext server?)");
        return Double.parseDouble(m.group(1));
    }

    /** Growth of heap (beyond 25% + 16 MiB), threads (beyond 4) or device memory (beyond 1 MiB) fails. */
    static Verdict judge(List<Sample> all) {
        List<Sample> s = all.subList(Math.max(1, all.size() / 4), all.size());
        if (s.size() < 3) throw new JnextException("the soak took " + all.size() + " samples: too few to judge; run it longer");
        int third = Math.max(1, s.size() / 3);
        List<Sample> first = s.subList(0, third), last = s.subList(s.size() - third, s.size());
        List<String> problems = new ArrayList<>();
        long heapBefore = median(first.stream().mapToLong(Sample::heapAfterGc).toArray());
        long heapAfter = median(last.stream().mapToLong(Sample::heapAfterGc).toArray());
        if (heapAfter > heapBefore * (1 + HEAP_SLACK_RATIO) + HEAP_SLACK_BYTES) {
            problems.add(String.format(Locale.ROOT, "heap after GC grew from %.1f MiB to %.1f MiB", heapBefore / 1048576.0, heapAfter / 1048576.0));
        }
        long threadsBefore = first.stream().mapToLong(Sample::threads).max().orElse(0);
        long threadsAfter = last.stream().mapToLong(Sample::threads).min().orElse(0);
        if (threadsAfter > threadsBefore + THREAD_SLACK) {
            problems.add("live threads grew from " + threadsBefore + " to " + threadsAfter);
        }
        long deviceBefore = first.stream().mapToLong(Sample::deviceMemory).max().orElse(-1);
        long deviceAfter = last.stream().mapToLong(Sample::deviceMemory).min().orElse(-1);
        if (deviceBefore >= 0 && deviceAfter > deviceBefore + DEVICE_SLACK_BYTES) {
            problems.add(String.format(Locale.ROOT, "device memory grew from %.1f MiB to %.1f MiB", deviceBefore / 1048576.0, deviceAfter / 1048576.0));
        }
        return new Verdict(problems.isEmpty(), problems);
    }

    private static long median(long[] v) {
        long[] s = v.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }
}
