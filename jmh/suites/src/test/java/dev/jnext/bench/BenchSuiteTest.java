package dev.jnext.bench;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class BenchSuiteTest {
    @Test
    void tableAlignsColumnsToTheWidestCell() {
        String t = BenchSuite.render(List.of(
                new BenchSuite.Row("device copy (ceiling)", "1 GiB", 730.34, "2.94 TB/s", "100%", "read + write"),
                new BenchSuite.Row("gated RMSNorm", "131072 x 128", 42.9, "2.35 TB/s", BenchSuite.pct(0.8), "fla 41.4 us")));
        String[] lines = t.split("\n");
        assertEquals(3, lines.length, t);
        assertTrue(lines[0].startsWith("benchmark "), t);
        int shapeCol = lines[0].indexOf("shape");
        assertEquals(shapeCol, lines[1].indexOf("1 GiB"), t);
        assertEquals(shapeCol, lines[2].indexOf("131072 x 128"), t);
        assertTrue(lines[1].contains("730.34") && lines[2].contains("42.90") && lines[2].contains("80%"), t);
        assertEquals("1.50", BenchSuite.fmt("%.2f", 1.5));
    }
}
