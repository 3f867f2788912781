package dev.jnext.gpu;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The committed allow-lists (bindings/jextract/*.symbols) and the generated bindings agree, both ways. */
class BindingsAllowListTest {
    private static final Path BINDINGS = Path.of("..", "..", "bindings");

    @ParameterizedTest(name = "{0}")
    @CsvSource({"cuda.symbols, dev.jnext.bindings.cuda, CudaDriver", "cublaslt.symbols, dev.jnext.bindings.cublaslt, CublasLt"})
    void allowListMatchesGeneratedCode(String symbols, String pkg, String headerClass) throws Exception {
        List<String[]> entries = new ArrayList<>();
        for (String line : Files.readAllLines(BINDINGS.resolve("jextract").resolve(symbols))) {
            line = line.strip();
            if (line.isEmpty() || line.startsWith("#")) continue;
            String[] kv = line.split("\\s+");
            assertEquals(2, kv.length, "allow-list line: " + line);
            entries.add(kv);
        }
        Class<?> header = Class.forName(pkg + "." + headerClass, false, getClass().getClassLoader());
        Set<String> generated = new TreeSet<>();
        for (Method m : header.getDeclaredMethods()) {
            if (Modifier.isPublic(m.getModifiers()) && Modifier.isStatic(m.getModifiers()) && !m.getName().contains("$")) {
                generated.add(m.getName());
            }
        }
        Path srcDir = BINDINGS.resolve("src/main/java").resolve(pkg.replace('.', '/'));
        String source;
        try (Stream<Path> files = Files.list(srcDir)) {
            source = files.map(BindingsAllowListTest::read).collect(Collectors.joining("\n"));
        }
        Set<String> listed = new TreeSet<>();
        for (String[] e : entries) {
            String kind = e[0], name = e[1];
            switch (kind) {
                case "--include-function", "--include-constant" -> {
                    assertTrue(generated.contains(name), symbols + ": " + name + " is allow-listed but not generated");
                    listed.add(name);
                }
                case "--include-struct" -> assertTrue(Files.exists(srcDir.resolve(name + ".java")), name + ".java generated");
                case "--include-typedef" -> assertTrue(source.contains(name), symbols + ": typedef " + name + " not in the generated code");
                default -> throw new AssertionError("unknown allow-list option " + kind);
            }
        }
        Set<String> extra = new TreeSet<>(generated);
        extra.removeAll(listed);
        assertEquals(Set.of(), extra, headerClass + " has functions/constants that are not allow-listed");
    }

    private static String read(Path p) {
        try {
            return Files.readString(p);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
