package dev.jnext.cli;

import dev.jnext.backend.PrefillMode;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.jnext.JnextException;
import dev.jnext.bench.ModelBench;
import dev.jnext.backend.DeviceChoice;
import dev.jnext.cuda.CudaOptions;
import dev.jnext.gpu.Gpu;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code jnext bench model}: whole-checkpoint prefill and decode throughput on the GPU, llama-bench style. */
@Command(name = "model", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Measure prefill and decode throughput of a checkpoint on the GPU, with each figure's share of a roofline from the checkpoint's bytes and FLOPs and the copy and GEMM ceilings measured in the same run.")
public final class BenchModelCommand implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--prefill", paramLabel = "N,...", split = ",", defaultValue = "512,4096", order = 10,
            description = "Prefill step sizes in tokens (default: ${DEFAULT-VALUE}).")
    int[] prefill;

    @Option(names = "--prefill-seqs", paramLabel = "K,...", split = ",", defaultValue = "1", order = 11,
            description = "Sequences sharing each prefill step's tokens (default: ${DEFAULT-VALUE}).")
    int[] prefillSeqs;

    @Option(names = "--decode-batch", paramLabel = "B,...", split = ",", defaultValue = "1,8,32,64", order = 12,
            description = "Decode batch sizes (default: ${DEFAULT-VALUE}).")
    int[] decodeBatch;

    @Option(names = "--profile", order = 13,
            description = "Also profile one step of each decode batch and prefill size: every operation's GPU time (CUDA events "
                    + "around each op of an eager step), its bytes and FLOPs, its share of the step and of the ceilings.")
    boolean profile;

    @Option(names = "--json", paramLabel = "FILE", order = 15, description = "Also write every figure to this JSON file.")
    Path json;

    @Override
    public Integer call() throws IOException {
        List<PrefillMode> modes = modelOptions.deviceOptions().prefillModes();
        boolean decodeGraphs = modelOptions.deviceOptions().decodeGraphsOn();
        for (int t : prefill) if (t < 1) throw new JnextException("--prefill sizes must be positive, got " + t);
        for (int k : prefillSeqs) if (k < 1) throw new JnextException("--prefill-seqs must be positive, got " + k);
        for (int b : decodeBatch) if (b < 1) throw new JnextException("--decode-batch sizes must be positive, got " + b);
        if (modelOptions.device().kind() == DeviceChoice.Kind.CPU) throw new JnextException("bench model measures the CUDA runner; --device cpu is not for it");
        Path model = modelOptions.modelDir();
        try (Gpu gpu = Gpu.open(0)) {
            ModelBench bench = new ModelBench(gpu, model, CudaOptions.defaults().withDecodeGraphs(decodeGraphs)
                    .withQuantize(modelOptions.deviceOptions().quantization()), modes,
                    prefill, prefillSeqs, decodeBatch, profile);
            bench.runAll();
            System.out.println("card: " + gpu.device().name() + " (" + gpu.device().smCount() + " SMs); model " + model);
            System.out.print(bench.table());
            if (json != null) {
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("card", gpu.device().name());
                out.put("model", model.toString());
                out.putAll(bench.numbers());
                new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), out);
            }
        }
        return 0;
    }
}
