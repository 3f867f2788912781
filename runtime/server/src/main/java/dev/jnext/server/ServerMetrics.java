package dev.jnext.server;

import dev.jnext.engine.Engine;
import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.CounterWithCallback;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import io.prometheus.metrics.model.registry.PrometheusRegistry;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.lang.management.MemoryUsage;

/**
 * The server's Prometheus metrics, in a registry of its own: the engine's load (queue depth, running requests, free
 * slots, tokens/s and token counters), per-request latencies (time to first token, inter-token latency, duration),
 * request outcomes, the prefix cache (hits, misses, evictions, cached tokens, what it holds), and what a soak run watches
 * (heap after the last GC, live threads, device memory).
 */
public final class ServerMetrics {
    /** Latency buckets from 1 ms to ~2 min. */
    private static final double[] LATENCY_BUCKETS = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
            10, 25, 60, 120};

    private final PrometheusRegistry registry = new PrometheusRegistry();
    private final Histogram timeToFirstToken;
    private final Histogram interTokenLatency;
    private final Histogram requestDuration;
    private final Counter requests;

    public ServerMetrics(Engine engine) {
        GaugeWithCallback.builder().name("jnext_requests_queued").help("requests waiting for a sequence slot")
                .callback(cb -> cb.call(engine.stats().queued())).register(registry);
        GaugeWithCallback.builder().name("jnext_requests_running").help("requests holding a sequence slot")
                .callback(cb -> cb.call(engine.stats().running())).register(registry);
        GaugeWithCallback.builder().name("jnext_sequence_slots_free").help("sequence slots not in use")
                .callback(cb -> cb.call(engine.stats().freeSlots())).register(registry);
        GaugeWithCallback.builder().name("jnext_generation_tokens_per_second").help("generated tokens per second over the last 5 s")
                .callback(cb -> cb.call(engine.stats().tokensPerSecond())).register(registry);
        CounterWithCallback.builder().name("jnext_prompt_tokens").help("prompt tokens run through the model")
                .callback(cb -> cb.call(engine.stats().promptTokens())).register(registry);
        CounterWithCallback.builder().name("jnext_generation_tokens").help("tokens generated")
                .callback(cb -> cb.call(engine.stats().generatedTokens())).register(registry);
        CounterWithCallback.builder().name("jnext_engine_steps").help("forward steps run")
                .callback(cb -> cb.call(engine.stats().steps())).register(registry);
        // prefix caching (all zero where the backend has none)
        CounterWithCallback.builder().name("jnext_prefix_cache_hits").help("prompts that resumed from a cached prefix")
                .callback(cb -> cb.call(engine.stats().prefixCache().hits())).register(registry);
        CounterWithCallback.builder().name("jnext_prefix_cache_misses").help("prompts that found no cached prefix to resume from")
                .callback(cb -> cb.call(engine.stats().prefixCache().misses())).register(registry);
        CounterWithCallback.builder().name("jnext_prefix_cache_evictions").help("state snapshots evicted from the prefix cache")
                .callback(cb -> cb.call(engine.stats().prefixCache().evictions())).register(registry);
        CounterWithCallback.builder().name("jnext_prefix_cache_cached_tokens")
                .help("prompt tokens restored from the prefix cache instead of being computed")
                .callback(cb -> cb.call(engine.stats().prefixCache().cachedTokens())).register(registry);
        GaugeWithCallback.builder().name("jnext_prefix_cache_stored_tokens").help("tokens whose KV the prefix cache holds")
                .callback(cb -> cb.call(engine.stats().prefixCache().storedTokens())).register(registry);
        GaugeWithCallback.builder().name("jnext_prefix_cache_snapshots").help("GDN state snapshots the prefix cache holds")
                .callback(cb -> cb.call(engine.stats().prefixCache().snapshots())).register(registry);
        GaugeWithCallback.builder().name("jnext_prefix_cache_bytes").help("bytes the prefix cache holds, by kind (kv, snapshot)")
                .labelNames("kind").callback(cb -> {
                    var p = engine.stats().prefixCache();
                    cb.call(p.kvBytes(), "kv");
                    cb.call(p.snapshotBytes(), "snapshot");
                }).register(registry);
        GaugeWithCallback.builder().name("jnext_prefix_cache_budget_bytes").help("the prefix cache's budgets, by kind (kv, snapshot)")
                .labelNames("kind").callback(cb -> {
                    var p = engine.stats().prefixCache();
                    cb.call(p.kvBudgetBytes(), "kv");
                    cb.call(p.snapshotBudgetBytes(), "snapshot");
                }).register(registry);
        GaugeWithCallback.builder().name("jnext_kv_tokens_reserved").help("KV tokens the running requests hold reserved (-1: not counted)")
                .callback(cb -> cb.call(engine.stats().kvTokensReserved())).register(registry);
        GaugeWithCallback.builder().name("jnext_device_memory_used_bytes").help("device memory held by the backend (-1: none, the CPU)")
                .callback(cb -> cb.call(engine.stats().deviceMemoryUsed())).register(registry);
        GaugeWithCallback.builder().name("jnext_jvm_heap_used_after_gc_bytes").help("heap in use right after the last garbage collection")
                .callback(cb -> cb.call(heapUsedAfterGc())).register(registry);
        GaugeWithCallback.builder().name("jnext_jvm_threads").help("live JVM threads")
                .callback(cb -> cb.call(ManagementFactory.getThreadMXBean().getThreadCount())).register(registry);
        timeToFirstToken = Histogram.builder().name("jnext_time_to_first_token_seconds")
                .help("from the request's arrival to its first generated token").classicOnly()
                .classicUpperBounds(LATENCY_BUCKETS).register(registry);
        interTokenLatency = Histogram.builder().name("jnext_inter_token_latency_seconds")
                .help("between consecutive generated tokens of one request").classicOnly()
                .classicUpperBounds(LATENCY_BUCKETS).register(registry);
        requestDuration = Histogram.builder().name("jnext_request_duration_seconds")
                .help("from the request's arrival to its last byte").classicOnly()
                .classicUpperBounds(LATENCY_BUCKETS).register(registry);
        requests = Counter.builder().name("jnext_requests").help("completion requests by endpoint and outcome "
                        + "(stop, length, cancelled, or the HTTP status of an error)")
                .labelNames("endpoint", "outcome").register(registry);
    }

    public void timeToFirstToken(long nanos) {
        timeToFirstToken.observe(nanos / 1e9);
    }

    public void interTokenLatency(long nanos) {
        interTokenLatency.observe(nanos / 1e9);
    }

    public void requestEnded(String endpoint, String outcome, long nanos) {
        requests.labelValues(endpoint, outcome).inc();
        requestDuration.observe(nanos / 1e9);
    }

    public void requestRefused(String endpoint, int status) {
        requests.labelValues(endpoint, Integer.toString(status)).inc();
    }

    /** The Prometheus text format. */
    public byte[] scrape() {
        ByteArrayOutputStream out = new ByteArrayOutputStream(8192);
        try {
            PrometheusTextFormatWriter.create().write(out, registry.scrape());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    public static String contentType() {
        return PrometheusTextFormatWriter.CONTENT_TYPE;
    }

    /** Heap bytes in use after the last collection of each heap pool (before any collection: in use now). */
    public static long heapUsedAfterGc() {
        long total = 0;
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            if (pool.getType() != MemoryType.HEAP) continue;
            MemoryUsage after = pool.getCollectionUsage();
            total += after != null && after.getCommitted() > 0 ? after.getUsed() : pool.getUsage().getUsed();
        }
        return total;
    }
}
