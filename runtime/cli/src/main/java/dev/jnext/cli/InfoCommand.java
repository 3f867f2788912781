package dev.jnext.cli;

import dev.jnext.gpu.Bytes;
import dev.jnext.gpu.Cuda;
import dev.jnext.gpu.CudaException;
import dev.jnext.gpu.Device;
import dev.jnext.gpu.Gemm;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.NoCudaDriverException;
import dev.jnext.JnextException;
import dev.jnext.model.SyntheticSource;
import dev.jnext.cuda.CudaGeometry;
import dev.jnext.model.LayerType;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.ModelFamily;
import dev.jnext.model.ModelSize;
import dev.jnext.model.weights.Checkpoint;
import dev.jnext.model.weights.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code jnext info}: JVM, CUDA driver presence and the device's properties; with {@code --model}, the model's. */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Show the JVM and, if a CUDA driver is present, the GPU: name, SMs, memory, driver and cuBLASLt versions. "
                + "With --model: that checkpoint's family, layout, geometry and what one GPU needs for its weights.")
public final class InfoCommand implements Callable<Integer> {
    @Option(names = "--device", paramLabel = "N", defaultValue = "0", description = "CUDA device ordinal (default: ${DEFAULT-VALUE}).")
    int ordinal;

    @Option(names = "--model", paramLabel = "DIR", description = ModelOptions.MODEL_DESCRIPTION)
    Path model;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        try {
            return run(out);
        } finally {
            out.flush();
        }
    }

    private int run(PrintWriter out) {
        if (model != null) {
            if (!SyntheticSource.is(model)) ModelOptions.folderWith("--model", model, "config.json", "");
            describe(ModelConfig.load(model), model, out);
        }
        out.println("jnext       0.1.0");
        out.println("jvm         " + Runtime.version() + " (" + System.getProperty("java.vendor") + ", "
                + Runtime.getRuntime().availableProcessors() + " cpus, max heap " + Bytes.human(Runtime.getRuntime().maxMemory()) + ")");
        if (!Cuda.driverPresent()) {
            out.println("cuda        no CUDA driver found (libcuda.so.1 not loadable): CPU backend only");
            return 0;
        }
        try {
            int v = Cuda.driverVersion();
            out.println("cuda        driver API " + v / 1000 + "." + (v % 1000) / 10 + ", " + Cuda.deviceCount() + " device(s)");
            Device d = Device.query(ordinal);
            try (Gpu gpu = Gpu.open(ordinal)) {
                Gpu.MemoryInfo mem = gpu.memoryInfo();
                out.println("device " + d.ordinal() + "    " + d.name() + ", sm_" + d.computeMajor() + d.computeMinor()
                        + ", " + d.smCount() + " SMs, L2 " + Bytes.human(d.l2CacheBytes()));
                out.println("memory      " + Bytes.human(mem.total()) + " total, " + Bytes.human(mem.free()) + " free");
            }
            try {
                long lt = Gemm.libraryVersion();
                out.println("cublasLt    " + lt);
            } catch (NoCudaDriverException e) {
                out.println("cublasLt    not found: " + e.getMessage());
            }
        } catch (NoCudaDriverException e) {
            out.println("cuda        " + e.getMessage());
        } catch (CudaException e) {
            out.println("cuda        driver present but unusable: " + e.getMessage());
            return 1;
        }
        return 0;
    }

    /** The model's family, layout, geometry, sizes and whether the CUDA backend runs it. */
    static void describe(ModelConfig c, Path dir, PrintWriter out) {
        ModelFamily f = c.family();
        out.println("model       " + dir);
        out.println("family      " + f.displayName() + " (" + (c.multimodal()
                ? "multimodal checkpoint " + f.wrapperArchitecture() + ": its text model, weights under " + c.weightPrefix()
                : "text-only checkpoint " + f.textArchitecture()) + ")");
        int gdn = c.countLayers(LayerType.LINEAR_ATTENTION);
        out.println("geometry    " + c.numHiddenLayers() + " layers (" + gdn + " Gated DeltaNet, "
                + (c.numHiddenLayers() - gdn) + " gated attention), hidden " + c.hiddenSize() + ", vocabulary "
                + c.vocabSize() + (c.tieWordEmbeddings() ? ", tied embeddings" : "") + ", context " + c.maxPositionEmbeddings());
        out.println("attention   " + c.numAttentionHeads() + " query heads, " + c.numKeyValueHeads() + " KV heads, head_dim "
                + c.headDim() + ", RoPE θ " + c.ropeTheta() + " on " + c.rotaryDim() + " dims"
                + (c.mropeSection().isEmpty() ? "" : " (mrope_section " + c.mropeSection() + ": text positions, plain RoPE)"));
        out.println("deltanet    " + c.linearNumKeyHeads() + " key heads × " + c.linearKeyHeadDim() + ", "
                + c.linearNumValueHeads() + " value heads × " + c.linearValueHeadDim() + ", conv " + c.linearConvKernelDim()
                + ", " + (f.splitDeltaNetProjections() ? "split projections (in_proj_qkv, z, b, a)" : "grouped projections (in_proj_qkvz, in_proj_ba)"));
        boolean anyMoe = false, anyDense = false;
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            if (c.isMoeLayer(i)) anyMoe = true;
            else anyDense = true;
        }
        String ffn = anyMoe ? c.numExperts() + " experts, top-" + c.numExpertsPerTok() + ", width " + c.moeIntermediateSize()
                + ", shared expert " + c.sharedExpertIntermediateSize() + (c.normTopkProb() ? "" : ", top-k not renormalised") : "";
        if (anyDense) ffn += (ffn.isEmpty() ? "" : "; ") + "dense SwiGLU MLP " + c.intermediateSize();
        out.println("ffn         " + ffn);
        ModelSize size = ModelSize.of(c);
        out.println("parameters  " + count(size.parameters())
                + (anyMoe ? " (" + count(size.activeParameters()) + " active per token)" : "") + " in the text model");
        out.println("one GPU     weights " + Bytes.human(size.weightBytesBf16()) + " in bf16"
                + (size.weightBytesBf16() > H100_BYTES ? " (more than an 80 GB H100 holds: needs FP8 or tensor parallelism)" : "")
                + (anyMoe ? ", " + Bytes.human(size.weightBytesFp8Experts()) + " with FP8 experts (an FP8 checkpoint, or --quantize fp8)"
                        + (size.weightBytesFp8Experts() > H100_BYTES ? ": an H200" : "") : "")
                + "; per sequence " + Bytes.human(size.stateBytesPerSequence()) + " of Gated DeltaNet state + "
                + Bytes.human(size.kvBytesPerToken()) + " of KV cache per token");
        if (SyntheticSource.is(dir)) {
            out.println("checkpoint  synthetic: " + Bytes.human(SyntheticSource.parse(dir).bytes())
                    + " of seeded tensors, generated in host memory when the model loads (no file)");
        } else try (Checkpoint ckpt = Checkpoint.open(dir)) {
            long all = 0, skipped = 0;
            for (Tensor t : ckpt.tensors().values()) {
                all += t.data().byteSize();
                if (t.name().startsWith("mtp.") || t.name().startsWith("model.visual.")) skipped += t.data().byteSize();
            }
            out.println("checkpoint  " + ckpt.tensors().size() + " tensors, " + Bytes.human(all)
                    + (skipped > 0 ? " (" + Bytes.human(skipped) + " of mtp.* / model.visual.* that jnext does not load)" : ""));
        } catch (JnextException e) {
            out.println("checkpoint  " + e.getMessage());
        }
        var v = CudaGeometry.violations(c);
        String cuda = v.isEmpty() ? "the CUDA kernels take this geometry" : "the CUDA kernels cannot run this geometry: " + String.join("; ", v);
        out.println("cuda        " + cuda);
    }

    private static String count(long n) {
        return n >= 1e9 ? String.format(Locale.ROOT, "%.2f B", n / 1e9) : String.format(Locale.ROOT, "%.2f M", n / 1e6);
    }

    /** An H100's 80 GB (the weights alone must fit with room for the KV cache and activations). */
    private static final long H100_BYTES = 80_000_000_000L;
}
