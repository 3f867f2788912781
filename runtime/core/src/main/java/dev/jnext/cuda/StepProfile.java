package dev.jnext.cuda;

import dev.jnext.gpu.Event;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.Stream;

import java.util.ArrayList;
import java.util.List;

/**
 * GPU time of each operation of one eagerly launched step (issue 23's step profile): a CUDA event before every operation
 * of the {@link ForwardPlan} and after the last, then the LM head and the sampler as two more rows. The events add a
 * few microseconds of their own between launches, so the rows sum to slightly more than an unprofiled eager step; the
 * graphs are never profiled (they stay exactly as captured).
 */
public final class StepProfile {

    /** One row: the op's name ("layer 3 gdn core"), its layer (−1 outside the layers), its GPU milliseconds. */
    public record OpTime(String name, int layer, double millis) {
        /** The name without its "layer N " prefix: the kind that a table sums over layers ("gdn core"). */
        public String kind() {
            return name.startsWith("layer ") ? name.substring(name.indexOf(' ', 6) + 1) : name;
        }
    }

    private final List<String> names = new ArrayList<>();
    private final List<Integer> layers = new ArrayList<>();
    private final List<Event> events = new ArrayList<>();
    private final Gpu gpu;

    StepProfile(Gpu gpu) {
        this.gpu = gpu;
    }

    /** Records the event that opens the row {@code name} (and closes the previous one) on {@code stream}. */
    void mark(Stream stream, String name, int layer) {
        Event e = gpu.createEvent(true);
        events.add(e);
        e.record(stream);
        names.add(name);
        layers.add(layer);
    }

    /** Closes the last row. */
    void end(Stream stream) {
        Event e = gpu.createEvent(true);
        events.add(e);
        e.record(stream);
    }

    /** Frees the events of a step that failed. */
    void discard() {
        for (Event e : events) e.close();
        events.clear();
    }

    /** The rows, after the step's stream has synchronised; frees the events. */
    List<OpTime> read() {
        try {
            List<OpTime> out = new ArrayList<>(names.size());
            for (int i = 0; i < names.size(); i++) {
                out.add(new OpTime(names.get(i), layers.get(i), events.get(i + 1).elapsedMillisSince(events.get(i))));
            }
            return out;
        } finally {
            for (Event e : events) e.close();
            events.clear();
        }
    }
}
