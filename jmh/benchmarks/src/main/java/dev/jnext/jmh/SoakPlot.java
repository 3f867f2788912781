package dev.jnext.jmh;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.CombinedDomainXYPlot;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Plots a {@code jnext bench serve --soak ... --json} file: the server's heap after GC, live threads, device memory, the
 * KV tokens the running requests hold and what the prefix cache holds, against time, one panel each (a panel whose
 * values are all −1, e.g. device memory on the CPU, is left out; for a CPU server, whose prefix cache lives on its heap,
 * the heap panel also shows the heap less the cache, which is what the soak's verdict judges):
 * <pre>java -Djava.awt.headless=true -cp jmh/benchmarks/target/benchmarks.jar dev.jnext.jmh.SoakPlot soak.json soak.png [title]</pre>
 */
public final class SoakPlot {
    private SoakPlot() {}

    public static void main(String[] args) throws IOException {
        if (args.length < 2) {
            System.err.println("usage: SoakPlot SOAK.json OUT.png [TITLE]");
            System.exit(2);
        }
        JsonNode root = new ObjectMapper().readTree(Path.of(args[0]).toFile());
        String title = args.length > 2 ? args[2] : "soak: " + root.at("/report/model").asText("?") + " on "
                + root.at("/report/device").asText("?");
        write(root, Path.of(args[1]), title);
    }

    /** Whether the samples come from a CPU server (no device memory anywhere). */
    private static boolean cpu(JsonNode samples) {
        for (JsonNode x : samples) if (x.path("deviceMemory").asDouble(-1) >= 0) return false;
        return true;
    }

    /** Writes the panels of {@code root}'s soak samples as a PNG; returns how many panels were drawn. */
    public static int write(JsonNode root, Path png, String title) throws IOException {
        JsonNode samples = root.at("/soak/samples");
        if (!samples.isArray() || samples.isEmpty()) throw new IllegalArgumentException("the file has no soak samples (/soak/samples)");
        String[][] panels = {
                {"heap after GC (MiB)", "heapAfterGc", "1048576"},
                {"live threads", "threads", "1"},
                {"device memory (MiB)", "deviceMemory", "1048576"},
                {"KV tokens reserved", "kvTokensReserved", "1"},
                {"prefix cache KV (MiB)", "cacheKvBytes", "1048576"},
                {"prefix cache snapshots", "cacheSnapshots", "1"}};
        CombinedDomainXYPlot plot = new CombinedDomainXYPlot(new NumberAxis("seconds"));
        plot.setGap(8);
        int drawn = 0;
        for (String[] p : panels) {
            XYSeries s = new XYSeries(p[0]);
            boolean any = false;
            double scale = Double.parseDouble(p[2]);
            for (JsonNode x : samples) {
                double v = x.path(p[1]).asDouble(-1);
                if (v >= 0) any = true;
                s.add(x.path("seconds").asDouble(), v < 0 ? v : v / scale);
            }
            if (!any) continue;
            XYSeriesCollection data = new XYSeriesCollection(s);
            if (p[1].equals("heapAfterGc") && cpu(samples)) { // a CPU server keeps its prefix cache on the heap
                XYSeries net = new XYSeries("heap after GC less the prefix cache (MiB)");
                for (JsonNode x : samples) {
                    net.add(x.path("seconds").asDouble(), (x.path("heapAfterGc").asDouble() - x.path("cacheKvBytes").asDouble(0)
                            - x.path("cacheSnapshotBytes").asDouble(0)) / scale);
                }
                data.addSeries(net);
            }
            NumberAxis y = new NumberAxis(p[0]);
            y.setAutoRangeIncludesZero(true);
            XYLineAndShapeRenderer renderer = new XYLineAndShapeRenderer(true, true);
            renderer.setDefaultSeriesVisibleInLegend(data.getSeriesCount() > 1);
            plot.add(new XYPlot(data, null, y, renderer));
            drawn++;
        }
        JFreeChart chart = new JFreeChart(title, JFreeChart.DEFAULT_TITLE_FONT, plot, cpu(samples));
        ChartUtils.saveChartAsPNG(png.toFile(), chart, 1000, 180 * drawn + 120);
        return drawn;
    }
}
