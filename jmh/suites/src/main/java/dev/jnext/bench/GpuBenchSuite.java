package dev.jnext.bench;

import dev.jnext.gpu.Gpu;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What every GPU bench suite holds: its device, the rows and flat figures it reports, and the device copy ceiling it
 * measured in its own run (so "% of copy" compares like with like).
 */
public abstract class GpuBenchSuite implements BenchSuite {
    protected final Gpu gpu;
    protected final List<Row> rows = new ArrayList<>();
    protected final Map<String, Double> numbers = new LinkedHashMap<>();
    /** The device copy ceiling of this run in TB/s, once {@link #measureCopyCeiling} ran. */
    protected double copyTBps;

    protected GpuBenchSuite(Gpu gpu) {
        this.gpu = gpu;
    }

    @Override
    public final List<Row> rows() {
        return rows;
    }

    @Override
    public final Map<String, Double> numbers() {
        return numbers;
    }

    /** {@link BenchSuite#measureCopyCeiling} into this suite's rows, figures and {@link #copyTBps}. */
    protected final double measureCopyCeiling(dev.jnext.gpu.Stream s, GpuTimer timer) {
        copyTBps = BenchSuite.measureCopyCeiling(gpu, s, timer, rows, numbers);
        return copyTBps;
    }
}
