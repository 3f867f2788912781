package dev.jnext.jmh;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jnext.tokenizer.QwenTokenizer;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Qwen3 tokenizer throughput on one thread over the parity corpus (src/reference/tokenizer_corpus.jsonl, 434
 * strings in many scripts, code, JSON, emoji, whitespace runs, 34,781 UTF-8 bytes): the same documents
 * {@code src/reference/tokenizer_goldens.py} times Hugging Face {@code tokenizers} on, so the two figures can
 * be divided. The {@code bytes} counter is UTF-8 bytes encoded per second (MB/s = bytes / 1e6).
 * Run from the repository root (it reads the corpus and {@code .cache/tokenizer-qwen3}).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 4, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(1)
@Threads(1)
public class TokenizerBenchmark {
    private QwenTokenizer tokenizer;
    private QwenTokenizer uncached;
    private String[] documents;
    private String joined;
    private int[][] ids;
    private long documentBytes;
    private long joinedBytes;

    /** Bytes processed, reported by JMH as a rate next to the operations. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Bytes {
        public long bytes;

        @Setup(Level.Iteration)
        public void reset() {
            bytes = 0;
        }
    }

    @Setup
    public void load() throws IOException {
        Path dir = Path.of(System.getProperty("jnext.tokenizerDir", ".cache/tokenizer-qwen3"));
        Path corpus = Path.of(System.getProperty("jnext.tokenizerCorpus", "src/reference/tokenizer_corpus.jsonl"));
        if (!Files.isRegularFile(corpus)) {
            throw new IllegalStateException(corpus.toAbsolutePath() + " not found: run the benchmark from the repository root");
        }
        tokenizer = QwenTokenizer.load(dir);
        uncached = tokenizer.withoutWordCache();
        ObjectMapper json = new ObjectMapper();
        List<String> docs = new ArrayList<>();
        for (String line : Files.readAllLines(corpus)) {
            if (!line.isBlank()) docs.add(json.readTree(line).get("text").asText());
        }
        documents = docs.toArray(String[]::new);
        joined = String.join("\n", docs);
        ids = new int[documents.length][];
        for (int i = 0; i < documents.length; i++) {
            ids[i] = tokenizer.encode(documents[i]);
            documentBytes += QwenTokenizer.utf8Length(documents[i]);
        }
        joinedBytes = QwenTokenizer.utf8Length(joined);
    }

    @Benchmark
    public void encodeEachDocument(Bytes counter, Blackhole bh) {
        for (String d : documents) bh.consume(tokenizer.encode(d));
        counter.bytes += documentBytes;
    }

    @Benchmark
    public void encodeJoinedWithNewlines(Bytes counter, Blackhole bh) {
        bh.consume(tokenizer.encode(joined));
        counter.bytes += joinedBytes;
    }

    /** Every word through the merge loop: the cost of text the word cache has never seen. */
    @Benchmark
    public void encodeEachDocumentWithoutWordCache(Bytes counter, Blackhole bh) {
        for (String d : documents) bh.consume(uncached.encode(d));
        counter.bytes += documentBytes;
    }

    @Benchmark
    public void decodeEachDocument(Bytes counter, Blackhole bh) {
        for (int[] d : ids) bh.consume(tokenizer.decode(d));
        counter.bytes += documentBytes;
    }
}
