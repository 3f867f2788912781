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
 * A soak run: rounds of {@link ServeBench} load (with whatever {@link ServeMix} it mixes in) until a duration has passed,
 * while a sampler reads the server's /metrics every {@code every} — heap after GC, live threads, device memory, the KV
 * tokens the running requests hold, and what the prefix cache holds — then, once the load has drained, one last sample;
 * then a verdict on growth. The first quarter of the periodic samples is warm-up; then the last third is compared with
 * the first third. The drained sample must show no running request and no KV reserved, and the prefix cache within its
 * budgets.
 */
public final class ServeSoak {
    static final long HEAP_SLACK_BYTES = 16L << 20;
    static final double HEAP_SLACK_RATIO = 0.25;
    static final int THREAD_SLACK = 4;
    static final long DEVICE_SLACK_BYTES = 1L << 20;
    static final Duration DRAIN_WAIT = Duration.ofSeconds(60);

    /**
     * One sample of the server.
     *
     * @param running          requests running
     * @param kvTokensReserved KV tokens the running requests hold (−1: the server does not count them)
     * @param cacheKvBytes     bytes of KV the prefix cache holds (0 without one), and its budget
     * @param cacheSnapshots   snapshots the prefix cache holds, and their bytes and budget
     */
    public record Sample(double seconds, long requests, long heapAfterGc, long threads, long deviceMemory, long running,
                         long kvTokensReserved, long cacheKvBytes, long cacheKvBudget, long cacheSnapshots, long cacheSnapshotBytes,
                         long cacheSnapshotBudget) {}

    /** Whether nothing grew, and what did. */
    public record Verdict(boolean ok, List<String> problems) {}

    /** The periodic samples, the sample after the load drained, the verdict and every round's report. */
    public record Result(List<Sample> samples, Sample drained, Verdict verdict, List<ServeBench.Report> rounds) {
        public Map<String, Object> toMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("ok", verdict.ok());
            m.put("problems", verdict.problems());
            m.put("samples", samples);
            m.put("drained", drained);
            m.put("rounds", rounds.size());
            m.put("requests", rounds.stream().mapToInt(ServeBench.Report::requests).sum());
            m.put("failed", rounds.stream().mapToInt(ServeBench.Report::failed).sum());
            m.put("tool_requests", rounds.stream().mapToInt(ServeBench.Report::toolRequests).sum());
            m.put("cancelled", rounds.stream().mapToInt(ServeBench.Report::cancelled).sum());
            m.put("abandoned", rounds.stream().mapToInt(ServeBench.Report::abandoned).sum());
            return m;
        }
    }

    private ServeSoak() {}

    /** The sampling period a soak of {@code duration} gets by default: 10 s, or an eighth of a shorter soak. */
    public static Duration defaultEvery(Duration duration) {
        Duration eighth = duration.dividedBy(8);
        return eighth.compareTo(Duration.ofSeconds(10)) < 0 ? (eighth.isZero() ? Duration.ofMillis(1) : eighth) : Duration.ofSeconds(10);
    }

    /**
     * Runs rounds until {@code duration} has passed and at least four samples were taken.
     *
     * @param every          the sampling period
     * @param collectGarbage collect garbage before each sample (the server runs in this JVM)
     */
    public static Result run(ServeBench bench, Duration duration, Duration every, boolean collectGarbage, Consumer<String> progress) {
        long start = System.nanoTime();
        long end = start + duration.toNanos();
        List<Sample> samples = java.util.Collections.synchronizedList(new ArrayList<>());
        List<ServeBench.Report> rounds = new ArrayList<>();
        java.util.concurrent.atomic.AtomicLong requests = new java.util.concurrent.atomic.AtomicLong();
        java.util.concurrent.atomic.AtomicReference<RuntimeException> samplerFailure = new java.util.concurrent.atomic.AtomicReference<>();
        java.util.concurrent.ScheduledExecutorService sampler = java.util.concurrent.Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "jnext-soak-sampler");
            t.setDaemon(true);
            return t;
        });
        sampler.scheduleAtFixedRate(() -> {
            try {
                if (collectGarbage) {
                    System.gc();
                    System.gc();
                }
                Sample s = sample(bench.getText("/metrics"), (System.nanoTime() - start) / 1e9, requests.get());
                samples.add(s);
                progress.accept(describe(s));
            } catch (RuntimeException e) {
                samplerFailure.compareAndSet(null, e);
            }
        }, every.toNanos(), every.toNanos(), java.util.concurrent.TimeUnit.NANOSECONDS);
        try {
            while (System.nanoTime() < end || samples.size() < 4) {
                if (samplerFailure.get() != null) throw samplerFailure.get();
                ServeBench.Report r = bench.run();
                rounds.add(r);
                requests.addAndGet(r.requests());
                progress.accept(String.format(Locale.ROOT, "soak round %d: %d requests (%d failed, %d tool, %d cancelled, %d abandoned), %.1f tok/s",
                        rounds.size(), r.requests(), r.failed(), r.toolRequests(), r.cancelled(), r.abandoned(), r.outputTokensPerSecond()));
            }
        } finally {
            sampler.shutdownNow();
        }
        Sample drained = drained(bench, start, requests.get(), collectGarbage);
        progress.accept("drained: " + describe(drained));
        List<Sample> taken;
        synchronized (samples) {
            taken = List.copyOf(samples);
        }
        return new Result(taken, drained, judge(taken, drained), rounds);
    }

    /** Waits (up to a minute) until no request runs, then samples. */
    private static Sample drained(ServeBench bench, long start, long requests, boolean collectGarbage) {
        long deadline = System.nanoTime() + DRAIN_WAIT.toNanos();
        while (true) {
            if (collectGarbage) {
                System.gc();
                System.gc();
            }
            Sample s = sample(bench.getText("/metrics"), (System.nanoTime() - start) / 1e9, requests);
            if ((s.running() == 0 && s.kvTokensReserved() <= 0) || System.nanoTime() > deadline) return s;
            try {
                Thread.sleep(200);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return s;
            }
        }
    }

    private static String describe(Sample s) {
        return String.format(Locale.ROOT, "soak %.0f s: %d requests, %d running, heap after GC %.1f MiB, %d threads%s, KV reserved %d tokens, "
                        + "prefix cache %.1f MiB KV + %d snapshots", s.seconds(), s.requests(), s.running(), s.heapAfterGc() / 1048576.0,
                s.threads(), s.deviceMemory() >= 0 ? String.format(Locale.ROOT, ", device %.1f MiB", s.deviceMemory() / 1048576.0) : "",
                s.kvTokensReserved(), s.cacheKvBytes() / 1048576.0, s.cacheSnapshots());
    }

    static Sample sample(String metrics, double seconds, long requests) {
        return new Sample(seconds, requests, (long) gauge(metrics, "jnext_jvm_heap_used_after_gc_bytes"),
                (long) gauge(metrics, "jnext_jvm_threads"), (long) gauge(metrics, "jnext_device_memory_used_bytes"),
                (long) gauge(metrics, "jnext_requests_running"), (long) gauge(metrics, "jnext_kv_tokens_reserved"),
                (long) gauge(metrics, "jnext_prefix_cache_bytes{kind=\"kv\"}"),
                (long) gauge(metrics, "jnext_prefix_cache_budget_bytes{kind=\"kv\"}"),
                (long) gauge(metrics, "jnext_prefix_cache_snapshots"),
                (long) gauge(metrics, "jnext_prefix_cache_bytes{kind=\"snapshot\"}"),
                (long) gauge(metrics, "jnext_prefix_cache_budget_bytes{kind=\"snapshot\"}"));
    }

    static double gauge(String metrics, String name) {
        Matcher m = Pattern.compile("(?m)^" + Pattern.quote(name) + " (\\S+)$").matcher(metrics);
        if (!m.find()) throw new JnextException("the server's /metrics has no " + name + " (is it a jnext server?)");
        return Double.parseDouble(m.group(1));
    }

    /**
     * Growth of heap (beyond 25% + 16 MiB; on a CPU server net of the prefix cache's bytes, {@link #heapOwnUse}), threads
     * (beyond 4) or device memory (beyond 1 MiB) over the periodic samples fails; so does a drained server with a request still running or KV still reserved, or a prefix cache past a budget
     * in any sample.
     */
    static Verdict judge(List<Sample> all, Sample drained) {
        List<Sample> s = all.subList(Math.max(1, all.size() / 4), all.size());
        if (s.size() < 3) throw new JnextException("the soak took " + all.size() + " samples: too few to judge; run it longer");
        int third = Math.max(1, s.size() / 3);
        List<Sample> first = s.subList(0, third), last = s.subList(s.size() - third, s.size());
        List<String> problems = new ArrayList<>();
        long heapBefore = median(first.stream().mapToLong(ServeSoak::heapOwnUse).toArray());
        long heapAfter = median(last.stream().mapToLong(ServeSoak::heapOwnUse).toArray());
        if (heapAfter > heapBefore * (1 + HEAP_SLACK_RATIO) + HEAP_SLACK_BYTES) {
            problems.add(String.format(Locale.ROOT, "heap after GC grew from %.1f MiB to %.1f MiB%s", heapBefore / 1048576.0,
                    heapAfter / 1048576.0, first.getFirst().deviceMemory() < 0 ? " (the prefix cache's bytes not counted)" : ""));
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
        if (drained.running() > 0) problems.add(drained.running() + " requests still running after the load drained");
        if (drained.kvTokensReserved() > 0) {
            problems.add(drained.kvTokensReserved() + " KV tokens still reserved after every request ended");
        }
        List<Sample> every = new ArrayList<>(all);
        every.add(drained);
        for (Sample x : every) {
            if (x.cacheKvBytes() > x.cacheKvBudget() || x.cacheSnapshotBytes() > x.cacheSnapshotBudget()) {
                problems.add(String.format(Locale.ROOT, "at %.0f s the prefix cache held %d KV bytes (budget %d) and %d snapshot bytes (budget %d)",
                        x.seconds(), x.cacheKvBytes(), x.cacheKvBudget(), x.cacheSnapshotBytes(), x.cacheSnapshotBudget()));
                break;
            }
        }
        return new Verdict(problems.isEmpty(), problems);
    }

    /**
     * The heap after GC that is not the prefix cache's: a CPU server (no device memory) keeps the cache's KV and snapshots
     * on its heap, which fills up to the cache's budgets by design; a GPU server keeps them in device memory.
     */
    static long heapOwnUse(Sample s) {
        return s.deviceMemory() < 0 ? s.heapAfterGc() - s.cacheKvBytes() - s.cacheSnapshotBytes() : s.heapAfterGc();
    }

    private static long median(long[] v) {
        long[] s = v.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }
}
