package dev.jnext.model.weights;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jnext.JnextException;
import dev.jnext.model.SyntheticSource;
import dev.jnext.json.JsonFiles;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The tensors of a Hugging Face checkpoint directory: {@code model.safetensors}, or the shards listed by
 * {@code model.safetensors.index.json}. Every file is memory-mapped into one shared arena that {@link #close()}
 * releases; the heap never holds a file. If opening fails, everything mapped so far is released first.
 */
public final class Checkpoint implements AutoCloseable {

    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private final Path dir;
    private final Arena arena;
    private final Map<String, Tensor> tensors;

    private Checkpoint(Path dir, Arena arena, Map<String, Tensor> tensors) {
        this.dir = dir;
        this.arena = arena;
        this.tensors = Collections.unmodifiableMap(tensors);
    }

    /** Opens and maps the checkpoint in {@code dir}; a {@link SyntheticSource} name is generated into host memory instead. */
    public static Checkpoint open(Path dir) {
        if (SyntheticSource.is(dir)) return synthetic(dir);
        Arena arena = Arena.ofShared();
        try {
            Map<String, Tensor> all = new LinkedHashMap<>();
            Path index = dir.resolve(INDEX_FILE);
            Path single = dir.resolve(SINGLE_FILE);
            if (Files.isRegularFile(index)) {
                Map<String, String> weightMap = readIndex(index);
                Set<String> files = new LinkedHashSet<>(weightMap.values());
                Map<String, String> seenIn = new LinkedHashMap<>();
                for (String f : files) {
                    Path shard = dir.resolve(f).normalize();
                    if (!shard.startsWith(dir.normalize()) || !Files.isRegularFile(shard)) {
                        throw new JnextException(index + ": shard \"" + f + "\" does not exist in " + dir);
                    }
                    for (Tensor t : SafeTensorsFile.map(shard, arena).values()) {
                        if (!weightMap.containsKey(t.name())) {
                            throw new JnextException(index + ": weight_map does not list tensor '" + t.name()
                                    + "' of shard " + f + " (an index must account for every tensor of its shards)");
                        }
                        String prev = seenIn.putIfAbsent(t.name(), f);
                        if (prev != null) {
                            throw new JnextException(dir + ": tensor '" + t.name() + "' appears in both " + prev
                                    + " and " + f);
                        }
                        all.put(t.name(), t);
                    }
                }
                for (Map.Entry<String, String> e : weightMap.entrySet()) {
                    String actual = seenIn.get(e.getKey());
                    if (!e.getValue().equals(actual)) {
                        throw new JnextException(index + ": weight_map puts '" + e.getKey() + "' in " + e.getValue()
                                + " but " + (actual == null ? "no shard holds it" : "it is in " + actual));
                    }
                }
            } else if (Files.isRegularFile(single)) {
                all.putAll(SafeTensorsFile.map(single, arena));
            } else {
                throw new JnextException(dir + ": no " + SINGLE_FILE + " or " + INDEX_FILE
                        + " (expected a Hugging Face safetensors checkpoint)");
            }
            return new Checkpoint(dir, arena, all);
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    /** A {@link SyntheticSource}'s tensors, generated into host memory that {@link #close()} releases. */
    private static Checkpoint synthetic(Path name) {
        Arena arena = Arena.ofShared();
        try {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            for (SyntheticSource.Generated g : SyntheticSource.parse(name).generate(name, arena, bytes -> { })) {
                tensors.put(g.name(), new Tensor(g.name(), g.dtype(), g.shape(), g.data()));
            }
            return new Checkpoint(name, arena, tensors);
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    private static Map<String, String> readIndex(Path index) {
        JsonNode root = JsonFiles.read(index);
        JsonNode wm = root.get("weight_map");
        if (wm == null || !wm.isObject()) throw new JnextException(index + ": missing \"weight_map\" object");
        Map<String, String> out = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = wm.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual()) {
                throw new JnextException(index + ": weight_map." + e.getKey() + " must be a file name, got " + e.getValue());
            }
            out.put(e.getKey(), e.getValue().asText());
        }
        if (out.isEmpty()) throw new JnextException(index + ": weight_map is empty");
        return out;
    }

    public Path dir() {
        return dir;
    }

    /** All tensors by name, in file order. */
    public Map<String, Tensor> tensors() {
        return tensors;
    }

    /** The tensor or null. */
    public Tensor find(String name) {
        return tensors.get(name);
    }

    /** The tensor, which must exist with exactly {@code shape}; the error names it and both shapes. */
    public Tensor require(String name, int... shape) {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new JnextException(dir + ": missing tensor '" + name + "' (expected shape "
                    + java.util.Arrays.toString(shape) + ")");
        }
        if (!t.hasShape(shape)) {
            throw new JnextException(dir + ": tensor '" + name + "' has shape " + t.shapeString() + ", expected "
                    + java.util.Arrays.toString(shape));
        }
        return t;
    }

    /**
     * The first tensor (in file order) holding a NaN or an infinity, described with its name and the element, or empty
     * when every weight is finite. Reads every byte of the checkpoint: meant for diagnosing a model whose logits came
     * out non-finite, not for every load.
     */
    public Optional<String> firstNonFinite() {
        for (Tensor t : tensors.values()) {
            long i = nonFiniteElement(t);
            if (i >= 0) {
                float v = t.getFloat(i);
                return Optional.of("tensor '" + t.name() + "' " + t.shapeString() + " holds " + (Float.isNaN(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf")
                        + " at element " + i);
            }
        }
        return Optional.empty();
    }

    /** {@link #firstNonFinite()} of the checkpoint in {@code dir}, opened for the purpose. */
    public static Optional<String> firstNonFinite(Path dir) {
        try (Checkpoint c = open(dir)) {
            return c.firstNonFinite();
        }
    }

    private static final ValueLayout.OfInt I32_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** The index of the tensor's first NaN or infinite element (all exponent bits set), or -1. */
    static long nonFiniteElement(Tensor t) {
        long n = t.elementCount();
        MemorySegment d = t.data();
        switch (t.dtype()) {
            case F32 -> {
                for (long i = 0; i < n; i++) if ((d.get(I32_LE, 4 * i) & 0x7f800000) == 0x7f800000) return i;
            }
            case BF16 -> {
                for (long i = 0; i < n; i++) if ((d.get(Tensor.I16_LE, 2 * i) & 0x7f80) == 0x7f80) return i;
            }
            case F16 -> {
                for (long i = 0; i < n; i++) if ((d.get(Tensor.I16_LE, 2 * i) & 0x7c00) == 0x7c00) return i;
            }
            case F8_E4M3 -> { // e4m3fn has no infinity: S.1111.111 is NaN
                for (long i = 0; i < n; i++) if ((d.get(ValueLayout.JAVA_BYTE, i) & 0x7f) == 0x7f) return i;
            }
        }
        return -1;
    }

    /** Unmaps every file. Tensors of this checkpoint must not be used afterwards. */
    @Override
    public void close() {
        if (arena.scope().isAlive()) arena.close();
    }
}
