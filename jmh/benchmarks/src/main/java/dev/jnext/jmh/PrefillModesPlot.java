package dev.jnext.jmh;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Plots prefill throughput against tokens for every prefill mode in a {@code jnext bench model --json} file (keys
 * {@code <mode>_prefill_<tokens>[x<seqs>]_tok_per_s}), one line per mode and sequence count, log-scale tokens:
 * <pre>java -Djava.awt.headless=true -cp jmh/benchmarks/target/benchmarks.jar dev.jnext.jmh.PrefillModesPlot bench-model.json plot.png [title]</pre>
 */
public final class PrefillModesPlot {
    private static final Pattern KEY = Pattern.compile("(eager|piecewise|gdn-layer-eager)_prefill_(\\d+)(?:x(\\d+))?_tok_per_s");

    private PrefillModesPlot() {}

    public static void main(String[] args) throws IOException {
        if (args.length < 2) {
            System.err.println("usage: PrefillModesPlot BENCH_MODEL.json OUT.png [TITLE]");
            System.exit(2);
        }
        JsonNode root = new ObjectMapper().readTree(Path.of(args[0]).toFile());
        String title = args.length > 2 ? args[2] : "prefill throughput by executor (" + root.path("card").asText("?") + ")";
        write(root, Path.of(args[1]), title);
    }

    /** Writes the chart of {@code root}'s prefill figures as a PNG; returns the number of series drawn. */
    public static int write(JsonNode root, Path png, String title) throws IOException {
        Map<String, XYSeries> series = new TreeMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            Matcher m = KEY.matcher(e.getKey());
            if (!m.matches()) continue;
            String name = m.group(1) + (m.group(3) == null ? ", 1 sequence" : ", " + m.group(3) + " sequences");
            series.computeIfAbsent(name, n -> new XYSeries(n)).add(Double.parseDouble(m.group(2)), e.getValue().asDouble() / 1000);
        }
        XYSeriesCollection data = new XYSeriesCollection();
        series.values().forEach(data::addSeries);
        JFreeChart chart = ChartFactory.createXYLineChart(title, "prefill tokens per step", "thousand tokens / s", data,
                PlotOrientation.VERTICAL, true, false, false);
        XYPlot plot = chart.getXYPlot();
        LogAxis x = new LogAxis("prefill tokens per step");
        x.setBase(2);
        plot.setDomainAxis(x);
        plot.setRenderer(new XYLineAndShapeRenderer(true, true));
        ChartUtils.saveChartAsPNG(png.toFile(), chart, 1000, 600);
        return data.getSeriesCount();
    }
}
