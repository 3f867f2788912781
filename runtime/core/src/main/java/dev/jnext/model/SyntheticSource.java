package dev.jnext.model;

import dev.jnext.JnextException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.LongConsumer;

/**
 * A model without a file, named where a checkpoint folder goes:
 * {@code synthetic:PRESET[,layers=N][,experts=N][,dtype=bf16|fp8][,seed=N][,logit-scale=S]}. Loading it generates, into
 * host memory (one shared arena, freed when the checkpoint closes), exactly the tensors {@code jnext synth} writes for the
 * same preset and options (its defaults too: seed 0, logit scale 1, bf16, the hub's per-expert files), and the loader reads
 * them as it reads a folder's — so geometries larger than the disk (the full 80B-A3B: 82 GB in FP8, 159 GB in bf16;
 * the GPU host's disk holds 64 GiB) run through the same path, given the host memory. Everything that prints the model
 * prints this name, so every figure made with it says synthetic.
 *
 * @param preset     a {@link SyntheticCheckpoint#PRESETS} name
 * @param layers     the depth, null for the preset's
 * @param experts    the routed experts, null for the preset's
 * @param fp8        the official fine-grained FP8 layout ({@code synth --dtype fp8})
 * @param seed       the weights' seed
 * @param logitScale the final norm's scale ({@code synth --logit-scale})
 */
public record SyntheticSource(String preset, Integer layers, Integer experts, boolean fp8, long seed, float logitScale) {
    /** What a model path starts with to name a synthetic model. */
    public static final String PREFIX = "synthetic:";
    private static final String FORM = "synthetic:PRESET[,layers=N][,experts=N][,dtype=bf16|fp8][,seed=N][,logit-scale=S]";

    public SyntheticSource {
        if (!SyntheticCheckpoint.PRESETS.contains(preset)) {
            throw new JnextException(PREFIX + preset + ": unknown preset (expected one of " + SyntheticCheckpoint.PRESETS + ")");
        }
        if (!(logitScale > 0) || !Float.isFinite(logitScale)) {
            throw new JnextException(PREFIX + preset + ": logit-scale must be positive, got " + logitScale);
        }
    }

    /** Whether {@code model} names a synthetic model rather than a folder. */
    public static boolean is(Path model) {
        return model != null && model.toString().startsWith(PREFIX);
    }

    /** Parses a synthetic model name; a bad one is a {@link JnextException} naming the part and the form. */
    public static SyntheticSource parse(Path model) {
        String s = model.toString();
        if (!s.startsWith(PREFIX)) throw new JnextException(s + ": not a synthetic model (" + FORM + ")");
        String[] parts = s.substring(PREFIX.length()).split(",", -1);
        Integer layers = null, experts = null;
        boolean fp8 = false;
        long seed = 0;
        float scale = 1f;
        for (int i = 1; i < parts.length; i++) {
            int eq = parts[i].indexOf('=');
            String key = eq < 0 ? parts[i] : parts[i].substring(0, eq), value = eq < 0 ? "" : parts[i].substring(eq + 1);
            try {
                switch (key) {
                    case "layers" -> layers = positive(Integer.parseInt(value));
                    case "experts" -> experts = positive(Integer.parseInt(value));
                    case "seed" -> seed = Long.parseLong(value);
                    case "logit-scale" -> scale = Float.parseFloat(value);
                    case "dtype" -> fp8 = switch (value.toLowerCase(Locale.ROOT)) {
                        case "bf16" -> false;
                        case "fp8" -> true;
                        default -> throw new NumberFormatException();
                    };
                    default -> throw new JnextException(s + ": unknown part \"" + parts[i] + "\" (" + FORM + ")");
                }
            } catch (NumberFormatException e) {
                throw new JnextException(s + ": bad value in \"" + parts[i] + "\" (" + FORM + ")");
            }
        }
        return new SyntheticSource(parts[0], layers, experts, fp8, seed, scale);
    }

    private static int positive(int n) {
        if (n < 1) throw new NumberFormatException();
        return n;
    }

    /** The configuration as the loader reads it from the config.json {@code synth} would write. */
    public ModelConfig config() {
        return ModelConfig.parse(writtenConfig().toJson(), PREFIX + preset);
    }

    private ModelConfig writtenConfig() {
        ModelConfig c = SyntheticCheckpoint.preset(preset, layers, experts, DType.BF16);
        return fp8 ? c.withQuantization(Fp8Quantization.official(c)) : c;
    }

    /** The writer's options for this model (one shard per 4 GiB, the hub's expert layout). */
    public SyntheticCheckpoint.Options options() {
        return new SyntheticCheckpoint.Options(writtenConfig(), DType.BF16, seed, 4L << 30, SyntheticCheckpoint.ExpertLayout.HUB,
                logitScale, SyntheticCheckpoint.ConfigStyle.V5);
    }

    /** Bytes of host memory the tensors take. */
    public long bytes() {
        return SyntheticCheckpoint.dataBytes(options());
    }

    /** One generated tensor: a slice of a segment of the arena it was generated into. */
    public record Generated(String name, DType dtype, int[] shape, MemorySegment data) {}

    /**
     * Generates the tensors into segments of {@code arena} (which owns them: the caller closes it); {@code progress}
     * receives the bytes of each generated chunk. More than the host memory available is a {@link JnextException}
     * naming how much it needs, before anything is allocated.
     */
    public List<Generated> generate(Path name, Arena arena, LongConsumer progress) {
        SyntheticCheckpoint.Options o = options();
        checkMemory(name, bytes(), memAvailable());
        List<Generated> out = new ArrayList<>();
        try {
            for (List<SyntheticCheckpoint.Spec> shard : SyntheticCheckpoint.shards(o)) {
                ByteBuffer head = SyntheticCheckpoint.shardHeader(shard, o);
                long dataStart = head.remaining(), size = dataStart + SyntheticCheckpoint.shardDataBytes(shard, o);
                MemorySegment whole = arena.allocate(size, 64);
                SegmentChannel ch = new SegmentChannel(whole);
                ch.write(head);
                SyntheticCheckpoint.writeShardData(ch, shard, o, progress);
                long at = dataStart;
                for (SyntheticCheckpoint.Spec spec : shard) {
                    long n = spec.bytes(o);
                    out.add(new Generated(spec.name(), spec.dtype(o), spec.shape(), whole.asSlice(at, n)));
                    at += n;
                }
            }
            return out;
        } catch (OutOfMemoryError e) {
            throw new JnextException(name + ": generating it needs " + String.format(Locale.ROOT, "%.1f GB", bytes() / 1e9)
                    + " of host memory, which this machine could not give (" + e.getMessage() + ")");
        } catch (IOException e) {
            throw new JnextException(name + ": cannot generate it: " + e.getMessage(), e);
        }
    }

    /**
     * Refuses, before allocating anything, a model larger than 90% of the host memory available ({@code available} bytes;
     * negative: unknown, not checked): past it the kernel would kill the process instead of the allocation failing.
     */
    static void checkMemory(Path name, long bytes, long available) {
        if (available >= 0 && bytes > available * 0.9) {
            throw new JnextException(String.format(Locale.ROOT, "%s: generating it needs %.1f GB of host memory and this "
                    + "machine has %.1f GB available; choose fewer layers or experts, or dtype=fp8", name, bytes / 1e9, available / 1e9));
        }
    }

    /** MemAvailable of /proc/meminfo in bytes, or −1 where there is none. */
    private static long memAvailable() {
        try {
            for (String line : java.nio.file.Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemAvailable:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        } catch (IOException | RuntimeException e) {
            // not Linux, or unreadable: leave the check to the allocation
        }
        return -1;
    }

    /** Sequential writes into a segment, as the writer writes a file. */
    private static final class SegmentChannel implements WritableByteChannel {
        private final MemorySegment dst;
        private long at;

        SegmentChannel(MemorySegment dst) {
            this.dst = dst;
        }

        @Override
        public int write(ByteBuffer src) {
            int n = src.remaining();
            MemorySegment.copy(MemorySegment.ofBuffer(src), 0, dst, at, n);
            src.position(src.limit());
            at += n;
            return n;
        }

        @Override
        public boolean isOpen() {
            return true;
        }

        @Override
        public void close() {}
    }
}
