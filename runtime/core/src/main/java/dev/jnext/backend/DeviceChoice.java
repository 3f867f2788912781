package dev.jnext.backend;

import dev.jnext.JnextException;

import java.util.Locale;
import java.util.Objects;

/**
 * Where a model should run: {@code auto} (the GPU when a CUDA driver, a Hopper GPU and a geometry the kernels run are
 * present, else the CPU), {@code cpu} (the reference backend) or {@code cuda} on one GPU, by its index in the driver's
 * order ({@code cuda:1}; {@code cuda} is {@code cuda:0}). The one spelling of the device for the library, the CLI
 * ({@code --device}) and the server.
 *
 * @param kind which backend
 * @param gpu  the GPU's index for {@link Kind#CUDA} (0 for the others)
 */
public record DeviceChoice(Kind kind, int gpu) {

    /** The three choices. */
    public enum Kind {
        /** The GPU when it can run the model, else the CPU. */
        AUTO,
        /** The CPU reference backend. */
        CPU,
        /** The CUDA backend. */
        CUDA
    }

    /** {@code auto}. */
    public static final DeviceChoice AUTO = new DeviceChoice(Kind.AUTO, 0);
    /** {@code cpu}. */
    public static final DeviceChoice CPU = new DeviceChoice(Kind.CPU, 0);
    /** {@code cuda} (GPU 0). */
    public static final DeviceChoice CUDA = new DeviceChoice(Kind.CUDA, 0);

    /**
     * Checks the parts.
     *
     * @throws NullPointerException     when {@code kind} is null
     * @throws IllegalArgumentException when {@code gpu} is negative, or not 0 for {@code auto} or {@code cpu}
     */
    public DeviceChoice {
        Objects.requireNonNull(kind, "kind");
        if (gpu < 0) throw new IllegalArgumentException("gpu must be >= 0, got " + gpu);
        if (kind != Kind.CUDA && gpu != 0) throw new IllegalArgumentException("only cuda takes a GPU index, got " + kind + " with " + gpu);
    }

    /** {@code cuda:gpu}. */
    public static DeviceChoice cuda(int gpu) {
        return new DeviceChoice(Kind.CUDA, gpu);
    }

    /**
     * Parses {@code auto}, {@code cpu}, {@code cuda} or {@code cuda:N} (any case).
     *
     * @throws JnextException naming what was given when it is none of these
     */
    public static DeviceChoice parse(String s) {
        Objects.requireNonNull(s, "device");
        String t = s.strip().toLowerCase(Locale.ROOT);
        switch (t) {
            case "auto": return AUTO;
            case "cpu": return CPU;
            case "cuda": return CUDA;
            default:
                if (t.startsWith("cuda:")) {
                    try {
                        int n = Integer.parseInt(t.substring(5));
                        if (n >= 0) return cuda(n);
                    } catch (NumberFormatException e) {
                        // the message below
                    }
                }
                throw new JnextException("the device must be auto, cpu, cuda or cuda:N (a GPU index), got \"" + s + "\"");
        }
    }

    /** {@code auto}, {@code cpu}, {@code cuda} (GPU 0) or {@code cuda:N}. */
    @Override
    public String toString() {
        return switch (kind) {
            case AUTO -> "auto";
            case CPU -> "cpu";
            case CUDA -> gpu == 0 ? "cuda" : "cuda:" + gpu;
        };
    }
}
