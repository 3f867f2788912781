package dev.jnext.jmh;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

class PrefillModesPlotTest {
    @Test
    void oneSeriesPerModeAndSequenceCount(@TempDir Path tmp) throws Exception {
        System.setProperty("java.awt.headless", "true");
        var json = new ObjectMapper().readTree("""
                {"card": "test", "eager_prefill_16_tok_per_s": 1000, "eager_prefill_512_tok_per_s": 90000,
                 "piecewise_prefill_16_tok_per_s": 3000, "piecewise_prefill_512_tok_per_s": 95000,
                 "piecewise_prefill_512x4_tok_per_s": 80000, "eager_prefill_512_ms": 5}""");
        Path png = tmp.resolve("p.png");
        assertEquals(3, PrefillModesPlot.write(json, png, "t"));
        BufferedImage img = ImageIO.read(png.toFile());
        assertEquals(1000, img.getWidth());
        assertEquals(600, img.getHeight());
    }

    @Test
    void aSoakPlotHasOnePanelPerResourceTheServerReports(@TempDir Path tmp) throws Exception {
        System.setProperty("java.awt.headless", "true");
        var json = new ObjectMapper().readTree("""
                {"report": {"model": "m", "device": "cpu"}, "soak": {"samples": [
                 {"seconds": 10, "heapAfterGc": 83886080, "threads": 40, "deviceMemory": -1, "kvTokensReserved": 640,
                  "cacheKvBytes": 1048576, "cacheSnapshots": 3},
                 {"seconds": 20, "heapAfterGc": 85000000, "threads": 41, "deviceMemory": -1, "kvTokensReserved": 0,
                  "cacheKvBytes": 2097152, "cacheSnapshots": 4}]}}""");
        Path png = tmp.resolve("soak.png");
        assertEquals(5, SoakPlot.write(json, png, "t"), "device memory (-1 on the CPU) is left out");
        BufferedImage img = ImageIO.read(png.toFile());
        assertEquals(1000, img.getWidth());
        assertEquals(180 * 5 + 120, img.getHeight());
    }
}
