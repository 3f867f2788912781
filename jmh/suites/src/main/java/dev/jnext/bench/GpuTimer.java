package dev.jnext.bench;

import dev.jnext.gpu.Event;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.Stream;

import java.util.Arrays;

/** Median GPU time of a piece of stream work, measured with CUDA events around each repetition after warm-up. */
final class GpuTimer implements AutoCloseable {
    private final Stream stream;
    private final Event start;
    private final Event stop;

    GpuTimer(Gpu gpu, Stream stream) {
        this.stream = stream;
        this.start = gpu.createEvent(true);
        this.stop = gpu.createEvent(true);
    }

    /** Median milliseconds of {@code work} over {@code reps} timed runs after {@code warmup} untimed ones. */
    double medianMillis(Runnable work, int warmup, int reps) {
        for (int i = 0; i < warmup; i++) work.run();
        stream.synchronize();
        double[] t = new double[reps];
        for (int i = 0; i < reps; i++) {
            start.record(stream);
            work.run();
            stop.record(stream);
            stop.synchronize();
            t[i] = stop.elapsedMillisSince(start);
        }
        Arrays.sort(t);
        return t[reps / 2];
    }

    @Override
    public void close() {
        start.close();
        stop.close();
    }
}
