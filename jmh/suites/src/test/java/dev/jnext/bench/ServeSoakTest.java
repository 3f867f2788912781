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
            out.add(new ServeSoak.Sample(i, 100L * i, heap0 + i * heapStep + noise, threads0 + (long) i * threadStep, dev0 < 0 ? -1 : dev0 + i * devStep));
        }
        return out;
    }

    @Test
    void flatOrNoisyResourcesPass() {
        assertTrue(ServeSoak.judge(samples(12, 80L << 20, 0, 40, 0, -1, 0)).ok());
        assertTrue(ServeSoak.judge(samples(12, 80L << 20, 0, 40, 0, 10L << 30, 0)).ok());
    }

    @Test
    void growthFails() {
        var v = ServeSoak.judge(samples(12, 80L << 20, 8L << 20, 40, 0, -1, 0));
        assertFalse(v.ok());
        assertTrue(v.problems().getFirst().contains("heap after GC grew"), v.problems().toString());
        v = ServeSoak.judge(samples(12, 80L << 20, 0, 40, 2, -1, 0));
        assertTrue(v.problems().getFirst().contains("threads grew"), v.problems().toString());
        v = ServeSoak.judge(samples(12, 80L << 20, 0, 40, 0, 10L << 30, 4L << 20));
        assertTrue(v.problems().getFirst().contains("device memory grew"), v.problems().toString());
    }

    @Test
    void tooFewSamplesCannotBeJudged() {
        assertThrows(JnextException.class, () -> ServeSoak.judge(samples(3, 1, 0, 1, 0, -1, 0)));
    }

    @Test
    void gaugesAreReadFromPrometheusText() {
        String text = "# HELP jnext_jvm_threads live JVM threads\n# TYPE jnext_jvm_threads gauge\njnext_jvm_threads 42.0\n"
                + "jnext_jvm_heap_used_after_gc_bytes 1.2345E7\njnext_device_memory_used_bytes -1.0\n";
        ServeSoak.Sample s = ServeSoak.sample(text, 1.5, 7);
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
