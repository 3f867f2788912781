package dev.jnext.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jnext.bench.AttentionBench;
import dev.jnext.bench.GdnBench;
import dev.jnext.bench.GdnChunkBench;
import dev.jnext.bench.BenchSuite;
import dev.jnext.bench.KernelBench;
import dev.jnext.bench.ModelBench;
import dev.jnext.bench.MoeBench;
import dev.jnext.exec.CudaOptions;
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
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Run benchmarks on the GPU: CUDA-event timing, medians, and the ceilings they are compared with measured in the same run.")
public final class BenchCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "SUITE", description = "What to benchmark: ${COMPLETION-CANDIDATES}.")
    Suite suite;

    @Option(names = "--device", paramLabel = "N", defaultValue = "0", description = "CUDA device ordinal (default: ${DEFAULT-VALUE}).")
    int ordinal;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write every figure to this JSON file.")
    Path json;

    @Option(names = "--model", description = "model: the Hugging Face checkpoint folder to run")
    Path model;

    @Option(names = "--prefill", split = ",", defaultValue = "512,4096", description = "model: prefill lengths (default: ${DEFAULT-VALUE})")
    int[] prefill;

    @Option(names = "--decode-batch", split = ",", defaultValue = "1,8,32,64", description = "model: decode batch sizes (default: ${DEFAULT-VALUE})")
    int[] decodeBatch;

    @Option(names = "--graphs", defaultValue = "eager", description = "model: how prefill runs: eager, piecewise or gdn-layer-eager (default: ${DEFAULT-VALUE})")
    String graphs;

    @Option(names = "--decode-graphs", defaultValue = "on", description = "model: decode graphs on or off (default: ${DEFAULT-VALUE})")
    String decodeGraphs;

    enum Suite {
        kernels, gdn_decode, gdn_chunk, attention, moe, model;

        /** The name on the command line: {@code gdn-decode} (picocli matches enum constants by toString). */
        @Override
        public String toString() {
            return name().replace('_', '-');
        }
    }

    @Override
    public Integer call() throws IOException {
        try (Gpu gpu = Gpu.open(ordinal)) {
            BenchSuite bench = switch (suite) {
                case kernels -> new KernelBench(gpu);
                case gdn_decode -> new GdnBench(gpu);
                case gdn_chunk -> new GdnChunkBench(gpu);
                case attention -> new AttentionBench(gpu);
                case moe -> new MoeBench(gpu);
                case model -> modelBench(gpu);
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

    private ModelBench modelBench(Gpu gpu) {
        if (model == null) throw new dev.jnext.JnextException("bench model needs --model DIR");
        CudaOptions.PrefillMode mode = switch (graphs) {
            case "eager" -> CudaOptions.PrefillMode.EAGER;
            case "piecewise" -> CudaOptions.PrefillMode.PIECEWISE;
            case "gdn-layer-eager" -> CudaOptions.PrefillMode.GDN_LAYER_EAGER;
            default -> throw new dev.jnext.JnextException("--graphs must be eager, piecewise or gdn-layer-eager, got " + graphs);
        };
        if (!decodeGraphs.equals("on") && !decodeGraphs.equals("off")) {
            throw new dev.jnext.JnextException("--decode-graphs must be on or off, got " + decodeGraphs);
        }
        for (int t : prefill) if (t < 1) throw new dev.jnext.JnextException("--prefill lengths must be positive, got " + t);
        for (int b : decodeBatch) if (b < 1) throw new dev.jnext.JnextException("--decode-batch sizes must be positive, got " + b);
        return new ModelBench(gpu, model, CudaOptions.defaults().withPrefill(mode).withDecodeGraphs(decodeGraphs.equals("on")),
                prefill, decodeBatch);
    }
}
