package dev.jnext.fuzz;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;

/**
 * The committed fuzz corpus under src/test/resources/dev/jnext/fuzz/: per target a folder of inputs (one file each)
 * and {@code expected.tsv}, one line per input: {@code file<TAB>accepted} or {@code file<TAB>error<TAB>phrase}
 * (the phrase a clean message must contain). The fuzz properties start their mutations from these inputs; the
 * corpus tests replay each one against its expectation.
 */
public final class Corpus {
    /** One input and what must come of it. */
    public record Entry(Path file, boolean accepted, String phrase) {
        public byte[] bytes() {
            try {
                return Files.readAllBytes(file);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        public String name() {
            return file.getFileName().toString();
        }

        @Override
        public String toString() {
            return name();
        }
    }

    private static final Map<String, Map<String, byte[]>> SEEDS = new ConcurrentHashMap<>();

    private Corpus() {}

    /** The inputs of {@code target}, file name to bytes (read once): the seeds the mutations start from. */
    public static Map<String, byte[]> seeds(String target) {
        return SEEDS.computeIfAbsent(target, t -> {
            Map<String, byte[]> out = new LinkedHashMap<>();
            for (Entry e : entries(t)) out.put(e.name(), e.bytes());
            return out;
        });
    }

    public static Path dir(String target) {
        try {
            java.net.URI uri = Corpus.class.getResource("/dev/jnext/fuzz/" + target).toURI();
            if (uri.getScheme().equals("jar")) {  // read from the library's test jar (the CLI module's corpus test)
                try {
                    java.nio.file.FileSystems.newFileSystem(uri, java.util.Map.of());
                } catch (java.nio.file.FileSystemAlreadyExistsException e) {
                    // opened by an earlier call
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }
            return Path.of(uri);
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The inputs of {@code target} with their expectations, in the order of expected.tsv. */
    public static List<Entry> entries(String target) {
        Path dir = dir(target);
        List<Entry> out = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(dir.resolve("expected.tsv"), StandardCharsets.UTF_8)) {
                if (line.isBlank() || line.startsWith("#")) continue;
                String[] f = line.split("\t", 3);
                Path file = dir.resolve(f[0]);
                if (!Files.isRegularFile(file)) throw new IllegalStateException(file + " is listed but missing");
                boolean accepted = f[1].equals("accepted");
                if (!accepted && !(f[1].equals("error") && f.length == 3)) {
                    throw new IllegalStateException(dir.resolve("expected.tsv") + ": bad line " + line);
                }
                out.add(new Entry(file, accepted, accepted ? null : f[2]));
            }
            try (Stream<Path> s = Files.list(dir)) {
                long inputs = s.filter(p -> !p.getFileName().toString().equals("expected.tsv")).count();
                if (inputs != out.size()) {
                    throw new IllegalStateException(dir + " holds " + inputs + " inputs but expected.tsv lists " + out.size());
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }
}
