package dev.jnext.bench;

import dev.jnext.JnextException;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The soak verdict: flat or noisy resources pass, steady growth of heap, threads or device memory fails. */
class ServeSoakTest {
    private static List<ServeSoak.Sample> samples(int n, long heap0, long heapStep, long threads0, int threadStep, long dev0, long devStep) {
        List<ServeSoak.Sample> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            long noise = (i % 3 - 1) * (3L << 20);
            out.add(sample(i, heap0 + i * heapStep + noise, threads0 + (long) i * threadStep, dev0 < 0 ? -1 : dev0 + i * devStep, 3, 900));
        }
        return out;
    }

    private static ServeSoak.Sample sample(int i, long heap, long threads, long device, long running, long kv) {
        return new ServeSoak.Sample(i, 100L * i, heap, threads, device, running, kv, 1000, 2000, 2, 200, 400);
    }

    private static final ServeSoak.Sample DRAINED = sample(99, 80L << 20, 40, -1, 0, 0);

    private static ServeSoak.Verdict judge(List<ServeSoak.Sample> s) {
        return ServeSoak.judge(s, DRAINED);
    }

    @Test
    void flatOrNoisyResourcesPass() {
        assertTrue(judge(samples(12, 80L << 20, 0, 40, 0, -1, 0)).ok());
        assertTrue(judge(samples(12, 80L << 20, 0, 40, 0, 10L << 30, 0)).ok());
    }

    @Test
    void growthFails() {
        var v = judge(samples(12, 80L << 20, 8L << 20, 40, 0, -1, 0));
        assertFalse(v.ok());
        assertTrue(v.problems().getFirst().contains("heap after GC grew"), v.problems().toString());
        v = judge(samples(12, 80L << 20, 0, 40, 2, -1, 0));
        assertTrue(v.problems().getFirst().contains("threads grew"), v.problems().toString());
        v = judge(samples(12, 80L << 20, 0, 40, 0, 10L << 30, 4L << 20));
        assertTrue(v.problems().getFirst().contains("device memory grew"), v.problems().toString());
    }

    @Test
    void aDrainedServerMustHoldNoRequestNoKvAndACacheWithinItsBudgets() {
        var flat = samples(12, 80L << 20, 0, 40, 0, -1, 0);
        assertTrue(ServeSoak.judge(flat, DRAINED).ok());
        var v = ServeSoak.judge(flat, sample(99, 80L << 20, 40, -1, 1, 0));
        assertTrue(v.problems().getFirst().contains("still running"), v.problems().toString());
        v = ServeSoak.judge(flat, sample(99, 80L << 20, 40, -1, 0, 64));
        assertTrue(v.problems().getFirst().contains("64 KV tokens still reserved"), v.problems().toString());
        assertTrue(ServeSoak.judge(flat, sample(99, 80L << 20, 40, -1, 0, -1)).ok(), "-1: the backend does not count");
        var over = new ServeSoak.Sample(99, 0, 80L << 20, 40, -1, 0, 0, 3000, 2000, 2, 200, 400);
        v = ServeSoak.judge(flat, over);
        assertTrue(v.problems().getFirst().contains("prefix cache held 3000 KV bytes (budget 2000)"), v.problems().toString());
    }

    @Test
    void onACpuServerThePrefixCacheFillingTheHeapIsNotGrowth() {
        List<ServeSoak.Sample> filling = new ArrayList<>(), gpu = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            long cache = i * (40L << 20); // the cache fills its budget: 40 MiB a sample, on the heap of a CPU server
            filling.add(new ServeSoak.Sample(i, i, (80L << 20) + cache, 40, -1, 2, 500, cache / 2, 1L << 30, i, cache / 2, 1L << 30));
            gpu.add(new ServeSoak.Sample(i, i, (80L << 20) + cache, 40, 10L << 30, 2, 500, cache / 2, 1L << 30, i, cache / 2, 1L << 30));
        }
        assertTrue(ServeSoak.judge(filling, DRAINED).ok());
        assertFalse(ServeSoak.judge(gpu, DRAINED).ok(), "on a GPU server the cache is in device memory: heap growth is growth");
    }

    @Test
    void theMixParsesAndDrawsEachKindInProportion() {
        assertEquals(ServeMix.NONE, ServeMix.parse("none"));
        ServeMix m = ServeMix.parse("tools=0.2, cancel=0.1,disconnect=0.1");
        assertEquals(new ServeMix(0.2, 0.1, 0.1), m);
        assertEquals(ServeMix.Kind.TOOLS, m.kind(0.1));
        assertEquals(ServeMix.Kind.CANCEL, m.kind(0.25));
        assertEquals(ServeMix.Kind.DISCONNECT, m.kind(0.35));
        assertEquals(ServeMix.Kind.PLAIN, m.kind(0.5));
        assertThrows(JnextException.class, () -> ServeMix.parse("tools=0.7,cancel=0.5"));
        assertThrows(JnextException.class, () -> ServeMix.parse("toolz=0.1"));
        assertThrows(JnextException.class, () -> ServeMix.parse("tools=x"));
        assertThrows(JnextException.class, () -> ServeMix.parse("cancel=-0.1"));
        assertEquals(java.time.Duration.ofSeconds(10), ServeSoak.defaultEvery(java.time.Duration.ofMinutes(10)));
        assertEquals(java.time.Duration.ofMillis(250), ServeSoak.defaultEvery(java.time.Duration.ofSeconds(2)));
    }

    @Test
    void tooFewSamplesCannotBeJudged() {
        assertThrows(JnextException.class, () -> judge(samples(3, 1, 0, 1, 0, -1, 0)));
    }

    @Test
    void gaugesAreReadFromPrometheusText() {
        String text = "# HELP jnext_jvm_threads live JVM threads\n# TYPE jnext_jvm_threads gauge\njnext_jvm_threads 42.0\n"
                + "jnext_jvm_heap_used_after_gc_bytes 1.2345E7\njnext_device_memory_used_bytes -1.0\njnext_requests_running 2.0\n"
                + "jnext_kv_tokens_reserved 640.0\njnext_prefix_cache_bytes{kind=\"kv\"} 4096.0\njnext_prefix_cache_bytes{kind=\"snapshot\"} 77.0\n"
                + "jnext_prefix_cache_budget_bytes{kind=\"kv\"} 8192.0\njnext_prefix_cache_budget_bytes{kind=\"snapshot\"} 100.0\n"
                + "jnext_prefix_cache_snapshots 1.0\n";
        ServeSoak.Sample s = ServeSoak.sample(text, 1.5, 7);
        assertEquals(new ServeSoak.Sample(1.5, 7, 12_345_000, 42, -1, 2, 640, 4096, 8192, 1, 77, 100), s);
        assertEquals(42, s.threads());
        assertEquals(12_345_000, s.heapAfterGc());
        assertEquals(-1, s.deviceMemory());
        assertThrows(JnextException.class, () -> ServeSoak.gauge("nothing", "jnext_jvm_threads"));
    }

    @Test
    void theSharedSystemPromptIsDeterministicAndAboutTheAskedLength() {
        String p = ServeBench.systemPrompt(2000, 1);
        assertEquals(p, ServeBench.systemPrompt(2000, 1));
        int words = p.split("\\s+").length;
        assertTrue(words > 1300 && words < 1800, words + " words");
        assertEquals("user: a\n\nassistant: b\n\nuser: c\n\nassistant:", ServeBench.completionPrompt(java.util.List.of(
                new ServeBench.Message("user", "a"), new ServeBench.Message("assistant", "b"), new ServeBench.Message("user", "c"))));
    }

    @Test
    void syntheticPromptsAreDeterministic() {
        assertEquals(ServeBench.syntheticPrompts(5, 3), ServeBench.syntheticPrompts(5, 3));
        assertEquals(5, ServeBench.syntheticPrompts(5, 3).stream().distinct().count());
    }
}
