package dev.jnext.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jnext.bench.AttentionBench;
import dev.jnext.bench.GdnBench;
import dev.jnext.bench.Fp8Bench;
import dev.jnext.bench.GdnChunkBench;
import dev.jnext.bench.BenchSuite;
import dev.jnext.bench.KernelBench;
import dev.jnext.bench.MoeBench;
import dev.jnext.gpu.Gpu;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code jnext bench kernels}: GPU-event-timed benchmarks with the copy ceiling measured in the same run. */
@Command(name = "bench", mixinStandardHelpOptions = true, subcommands = {BenchModelCommand.class, BenchServeCommand.class},
        description = "Run benchmarks on the GPU (CUDA-event timing, medians, and the ceilings they are compared with measured in the same run), a whole checkpoint (bench model), or load and soak runs against an OpenAI-compatible server (bench serve).")
public final class BenchCommand implements Callable<Integer> {
    @Parameters(index = "0", arity = "0..1", paramLabel = "SUITE",
            description = "What to benchmark: ${COMPLETION-CANDIDATES}, or the subcommands model and serve (see their --help).")
    Suite suite;

    @Option(names = "--device", paramLabel = "N", defaultValue = "0", description = "CUDA device ordinal (default: ${DEFAULT-VALUE}).")
    int ordinal;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write every figure to this JSON file.")
    Path json;

    enum Suite {
        kernels, gdn_decode, gdn_chunk, attention, moe, fp8;

        /** The name on the command line: {@code gdn-decode} (picocli matches enum constants by toString). */
        @Override
        public String toString() {
            return name().replace('_', '-');
        }
    }

    @Override
    public Integer call() throws IOException {
        if (suite == null) throw new dev.jnext.JnextException("bench needs a suite: kernels, gdn-decode, gdn-chunk, attention, moe, fp8, model or serve");
        try (Gpu gpu = Gpu.open(ordinal)) {
            BenchSuite bench = switch (suite) {
                case kernels -> new KernelBench(gpu);
                case gdn_decode -> new GdnBench(gpu);
                case gdn_chunk -> new GdnChunkBench(gpu);
                case attention -> new AttentionBench(gpu);
                case moe -> new MoeBench(gpu);
                case fp8 -> new Fp8Bench(gpu);
            };
            bench.runAll();
            String table = bench.table();
            Map<String, Double> numbers = bench.numbers();
            System.out.println("card: " + gpu.device().name() + " (" + gpu.device().smCount() + " SMs)");
            System.out.print(table);
            if (json != null) {
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("card", gpu.device().name());
                out.putAll(numbers);
                new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), out);
            }
        }
        return 0;
    }
}
