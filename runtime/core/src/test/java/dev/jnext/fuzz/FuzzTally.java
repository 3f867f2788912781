package dev.jnext.fuzz;

import dev.jnext.JnextException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Outcome counts of one fuzz target, and the rule every input must satisfy: it is accepted, or it fails with a
 * {@link JnextException} whose message is one line naming the file (or request) it is about, within a time bound.
 * Anything else (another exception, a JVM error, a two-line or anonymous message, a slow input) is "other" and
 * fails the property. The counts are printed (and appended to target/fuzz-outcomes.txt) when the class finishes.
 */
public final class FuzzTally {
    public enum Outcome { CLEAN_ERROR, ACCEPTED }

    private final String target;
    private final AtomicLong errors = new AtomicLong();
    private final AtomicLong accepted = new AtomicLong();
    private final AtomicLong other = new AtomicLong();

    public FuzzTally(String target) {
        this.target = target;
    }

    /**
     * Runs {@code action} on one input; {@code names} are the strings one of which a clean message must contain
     * (the file or folder the input lives in).
     */
    public Outcome run(List<String> names, Duration bound, Callable<?> action) {
        long start = System.nanoTime();
        Outcome outcome;
        try {
            action.call();
            outcome = Outcome.ACCEPTED;
        } catch (JnextException e) {
            String m = String.valueOf(e.getMessage());
            if (m.contains("\n") || m.contains("\r") || m.contains("[Source:") || m.contains("Input length =")
                    || names.stream().noneMatch(m::contains)) {
                other.incrementAndGet();
                throw new AssertionError("unclear message (one line naming " + names + " expected): " + m, e);
            }
            outcome = Outcome.CLEAN_ERROR;
        } catch (Throwable e) {
            other.incrementAndGet();
            throw new AssertionError("neither accepted nor a clean error: " + e, e);
        }
        long ms = (System.nanoTime() - start) / 1_000_000;
        if (ms > bound.toMillis()) {
            other.incrementAndGet();
            throw new AssertionError("took " + ms + " ms, more than " + bound.toMillis() + " ms (" + outcome + ")");
        }
        (outcome == Outcome.ACCEPTED ? accepted : errors).incrementAndGet();
        return outcome;
    }

    /** Counts an outcome decided elsewhere (e.g. the exit code of a CLI run). */
    public void count(Outcome outcome) {
        (outcome == Outcome.ACCEPTED ? accepted : errors).incrementAndGet();
    }

    public String summary() {
        return "fuzz " + target + ": " + (errors.get() + accepted.get() + other.get()) + " inputs: " + errors.get()
                + " clean errors, " + accepted.get() + " accepted, " + other.get() + " other";
    }

    /** Prints the summary and appends it to target/fuzz-outcomes.txt (the build's record of what was tried). */
    public void report() {
        System.out.println(summary());
        try {
            Path out = Path.of("target", "fuzz-outcomes.txt");
            if (Files.isDirectory(out.getParent())) {
                Files.writeString(out, summary() + "\n", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
