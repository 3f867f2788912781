package dev.jnext.model.weights;

import dev.jnext.JnextException;
import dev.jnext.model.DType;
import dev.jnext.model.Fp8Quantization;
import dev.jnext.model.GdnProjections;
import dev.jnext.model.LayerType;
import dev.jnext.model.ModelConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Every weight of a Qwen3-Next or Qwen3.5 checkpoint as plain records ({@link LayerWeights}), bound by their Hugging Face names
 * and checked against the config's shapes: views of the memory-mapped safetensors files (converted to fp32 as they are
 * read; small 1-D weights are copied). No compute: the CPU backend binds these records to its blocks, the CUDA backend
 * packs them into its device image. Closing it unmaps the files.
 *
 * <p>A fine-grained FP8 checkpoint ({@link Fp8Quantization}) binds each {@code F8_E4M3} linear weight with its
 * {@code weight_scale_inv} grid ({@link BlockScales}), which is read, shape-checked and checked positive and finite here:
 * a missing, misshaped or non-finite scale tensor is refused naming it, as is an FP8 weight the config's
 * {@code modules_to_not_convert} keeps unquantized or any FP8 tensor that is not a linear weight.
 */
public final class ModelWeights implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(ModelWeights.class);
    /** The multi-token-prediction head of Qwen3-Next and Qwen3.5 checkpoints: not part of the causal LM. */
    static final String MTP_PREFIX = "mtp.";
    /** The vision tower of the Qwen3.5 multimodal checkpoints: not part of the text model. */
    static final String VISUAL_PREFIX = "model.visual.";

    private final ModelConfig config;
    private final Checkpoint checkpoint;
    private final Tensor embedTokens;
    private final float[] finalNorm;
    private final Matrix lmHead;
    private final List<LayerWeights> layers;
    private final Skipped skipped;

    /**
     * The checkpoint's tensors that are not the text model's and were left unread: the multi-token-prediction head
     * ({@code mtp.*}) and the vision tower ({@code model.visual.*}), with their byte counts.
     */
    public record Skipped(int mtpTensors, long mtpBytes, int visualTensors, long visualBytes) {
        /** Whether nothing was skipped. */
        public boolean isEmpty() {
            return mtpTensors + visualTensors == 0;
        }

        /** The one info line the load logs: what was skipped and how many bytes. */
        public String describe() {
            return "skipped " + (mtpTensors + visualTensors) + " tensors (" + mib(mtpBytes + visualBytes)
                    + " MiB) that the text model does not use: " + mtpTensors + " mtp.* (" + mib(mtpBytes)
                    + " MiB, the multi-token-prediction head), " + visualTensors + " model.visual.* (" + mib(visualBytes)
                    + " MiB, the vision tower)";
        }

        private static String mib(long bytes) {
            return String.format(Locale.ROOT, "%.1f", bytes / 1048576.0);
        }
    }

    private ModelWeights(ModelConfig config, Checkpoint checkpoint, Tensor embedTokens, float[] finalNorm,
                         Matrix lmHead, List<LayerWeights> layers, Skipped skipped) {
        this.skipped = skipped;
        this.config = config;
        this.checkpoint = checkpoint;
        this.embedTokens = embedTokens;
        this.finalNorm = finalNorm;
        this.lmHead = lmHead;
        this.layers = List.copyOf(layers);
    }

    /**
     * Loads {@code dir/config.json} and maps the safetensors files of {@code dir}, checking every tensor's name and
     * shape against the config.
     *
     * @throws dev.jnext.JnextException when a file is missing or malformed, or a tensor is missing, misshaped or
     *                                  unexpected (the message names the file or tensor); nothing stays mapped
     */
    public static ModelWeights load(Path dir) {
        long t0 = System.nanoTime();
        ModelConfig config = ModelConfig.load(dir);
        Checkpoint ckpt = Checkpoint.open(dir);
        ModelWeights weights;
        try {
            weights = new Binder(config, ckpt).bind();
        } catch (RuntimeException | Error e) {
            ckpt.close();
            throw e;
        }
        if (LOG.isInfoEnabled()) {
            long bytes = 0, params = 0;
            Set<DType> dtypes = new TreeSet<>();
            for (Tensor t : ckpt.tensors().values()) {
                bytes += t.data().byteSize();
                params += t.elementCount();
                dtypes.add(t.dtype());
            }
            LOG.info("loaded {}: {}{}, {} layers ({} linear attention), {} experts, {} M parameters in {} MiB of {} mapped in {} ms",
                    dir, config.family().displayName(), config.multimodal() ? " (multimodal checkpoint, text model only)" : "",
                    config.numHiddenLayers(), config.countLayers(LayerType.LINEAR_ATTENTION), config.numExperts(),
                    String.format(Locale.ROOT, "%.1f", params / 1e6), bytes >> 20, dtypes,
                    (System.nanoTime() - t0) / 1_000_000);
        }
        return weights;
    }

    /** What the load left unread (mtp.*, model.visual.*). */
    public Skipped skipped() {
        return skipped;
    }

    /** The checkpoint's config.json, checked. */
    public ModelConfig config() {
        return config;
    }

    /** The mapped files. */
    public Checkpoint checkpoint() {
        return checkpoint;
    }

    /** model.embed_tokens.weight [vocab, H]. */
    public Tensor embedTokens() {
        return embedTokens;
    }

    /** model.norm.weight [H]. */
    public float[] finalNorm() {
        return finalNorm;
    }

    /** lm_head.weight [vocab, H] (the embedding when tied). */
    public Matrix lmHead() {
        return lmHead;
    }

    /** The decoder layers, in order. */
    public List<LayerWeights> layers() {
        return layers;
    }

    /** Unmaps the files. */
    @Override
    public void close() {
        checkpoint.close();
    }

    @Override
    public String toString() {
        return "ModelWeights[" + checkpoint.dir() + ", " + layers.size() + " layers]";
    }

    /** Binds checkpoint tensors to blocks by their Hugging Face names, checking every shape. */
    private static final class Binder {
        private final ModelConfig c;
        private final Checkpoint ckpt;
        private final Fp8Quantization quant;
        private final Set<String> used = new HashSet<>();

        Binder(ModelConfig c, Checkpoint ckpt) {
            this.c = c;
            this.ckpt = ckpt;
            this.quant = c.quantization();
        }

        ModelWeights bind() {
            int h = c.hiddenSize();
            Tensor embed = tensor(c.weightPrefix() + "embed_tokens.weight", c.vocabSize(), h);
            float[] finalNorm = vector(c.weightPrefix() + "norm.weight", h);
            Matrix lmHead;
            if (ckpt.find("lm_head.weight") != null || !c.tieWordEmbeddings()) {
                lmHead = matrix("lm_head.weight", c.vocabSize(), h);
            } else {
                lmHead = Matrix.of(embed);
            }
            int held = layersHeld();
            if (c.numHiddenLayers() > held) { // before anything is built per layer
                throw new JnextException(ckpt.dir().resolve("config.json") + ": num_hidden_layers is " + c.numHiddenLayers()
                        + " but the checkpoint holds tensors for " + held + " layer" + (held == 1 ? "" : "s"));
            }
            List<LayerWeights> layers = new ArrayList<>();
            for (int i = 0; i < c.numHiddenLayers(); i++) layers.add(layer(i));
            Set<String> unexpected = new TreeSet<>();
            long[] skipped = new long[4];   // mtp.* tensors, bytes; model.visual.* tensors, bytes
            for (Map.Entry<String, Tensor> e : ckpt.tensors().entrySet()) {
                String name = e.getKey();
                if (used.contains(name)) continue;
                int kind = name.startsWith(MTP_PREFIX) ? 0 : name.startsWith(VISUAL_PREFIX) ? 2 : -1;
                if (kind < 0) {
                    unexpected.add(name);
                } else {
                    skipped[kind]++;
                    skipped[kind + 1] += e.getValue().data().byteSize();
                }
            }
            if (!unexpected.isEmpty()) {
                throw new JnextException(ckpt.dir() + ": unexpected tensor" + (unexpected.size() > 1 ? "s " : " ")
                        + unexpected.stream().limit(5).map(n -> "'" + n + "'").toList()
                        + (unexpected.size() > 5 ? " and " + (unexpected.size() - 5) + " more" : "")
                        + " (not part of a " + c.family().displayName() + " model with this config.json)");
            }
            Skipped s = new Skipped((int) skipped[0], skipped[1], (int) skipped[2], skipped[3]);
            if (!s.isEmpty()) LOG.info("{}: {}", ckpt.dir(), s.describe());
            return new ModelWeights(c, ckpt, embed, finalNorm, lmHead, layers, s);
        }

        /** One past the highest N of the checkpoint's {@code <prefix>layers.N.*} tensors. */
        private int layersHeld() {
            String prefix = c.weightPrefix() + "layers.";
            int highest = -1;
            for (String name : ckpt.tensors().keySet()) {
                int dot = name.indexOf('.', prefix.length());
                if (!name.startsWith(prefix) || dot < 0) continue;
                try {
                    highest = Math.max(highest, Integer.parseInt(name, prefix.length(), dot, 10));
                } catch (NumberFormatException e) {
                    // not a layer index: reported as an unexpected tensor
                }
            }
            return highest + 1;
        }

        private LayerWeights layer(int i) {
            String p = c.weightPrefix() + "layers." + i + ".";
            int h = c.hiddenSize();
            float[] in = vector(p + "input_layernorm.weight", h);
            float[] post = vector(p + "post_attention_layernorm.weight", h);
            LayerWeights.Mixer mixer = c.layerType(i) == LayerType.LINEAR_ATTENTION
                    ? deltaNet(p + "linear_attn.") : attention(p + "self_attn.");
            LayerWeights.FeedForward ffn = c.isMoeLayer(i) ? moe(p + "mlp.") : mlp(p + "mlp.", c.intermediateSize());
            return new LayerWeights(i, in, mixer, post, ffn);
        }

        private LayerWeights.DeltaNet deltaNet(String p) {
            int h = c.hiddenSize();
            int hv = c.linearNumValueHeads();
            int dv = c.linearValueHeadDim();
            int k = c.linearConvKernelDim();
            GdnProjections proj = new GdnProjections(c.linearNumKeyHeads(), hv, c.linearKeyHeadDim(), dv);
            LayerWeights.DeltaNetInput input;
            if (c.family().splitDeltaNetProjections()) {
                input = new LayerWeights.SplitInput(matrix(p + "in_proj_qkv.weight", proj.convDim(), h),
                        matrix(p + "in_proj_z.weight", hv * dv, h), matrix(p + "in_proj_b.weight", hv, h),
                        matrix(p + "in_proj_a.weight", hv, h));
            } else {
                input = new LayerWeights.GroupedInput(matrix(p + "in_proj_qkvz.weight", proj.qkvzWidth(), h),
                        matrix(p + "in_proj_ba.weight", proj.baWidth(), h));
            }
            float[] convW = tensor(p + "conv1d.weight", proj.convDim(), 1, k).toFloatArray();
            float[] aLog = vector(p + "A_log", hv);
            float[] dtBias = vector(p + "dt_bias", hv);
            float[] norm = vector(p + "norm.weight", dv);
            Matrix outProj = matrix(p + "out_proj.weight", h, hv * dv);
            return new LayerWeights.DeltaNet(input, convW, aLog, dtBias, norm, outProj);
        }

        private LayerWeights.Attention attention(String p) {
            int h = c.hiddenSize();
            int nh = c.numAttentionHeads();
            int nkv = c.numKeyValueHeads();
            int hd = c.headDim();
            return new LayerWeights.Attention(
                    matrix(p + "q_proj.weight", nh * hd * 2, h),
                    matrix(p + "k_proj.weight", nkv * hd, h),
                    matrix(p + "v_proj.weight", nkv * hd, h),
                    matrix(p + "o_proj.weight", h, nh * hd),
                    vector(p + "q_norm.weight", hd),
                    vector(p + "k_norm.weight", hd));
        }

        private LayerWeights.Moe moe(String p) {
            int h = c.hiddenSize();
            int e = c.numExperts();
            int inter = c.moeIntermediateSize();
            Matrix router = matrix(p + "gate.weight", e, h); // checks num_experts against the checkpoint first
            List<LayerWeights.Mlp> experts = new ArrayList<>();
            String fusedName = p + "experts.gate_up_proj";
            if (ckpt.find(fusedName) != null) {
                if (ckpt.find(p + "experts.0.gate_proj.weight") != null) {
                    throw new JnextException(ckpt.dir() + ": layer " + p + " has experts in both the fused ("
                            + fusedName + ") and the per-expert layout");
                }
                Tensor gateUp = linearTensor(fusedName, e, 2 * inter, h);
                Tensor down = linearTensor(p + "experts.down_proj", e, h, inter);
                float[] gateUpScales = scaleGrid(gateUp, fusedName);
                float[] downScales = scaleGrid(down, p + "experts.down_proj");
                for (int i = 0; i < e; i++) {
                    BlockScales gu = expertScales(gateUp, gateUpScales, i);
                    experts.add(new LayerWeights.Mlp(Matrix.slice(gateUp, gu, i, 0, inter), Matrix.slice(gateUp, gu, i, inter, inter),
                            Matrix.slice(down, expertScales(down, downScales, i), i, 0, h)));
                }
            } else {
                for (int i = 0; i < e; i++) experts.add(mlp(p + "experts." + i + ".", inter));
            }
            LayerWeights.Mlp shared = mlp(p + "shared_expert.", c.sharedExpertIntermediateSize());
            Matrix sharedGate = matrix(p + "shared_expert_gate.weight", 1, h);
            return new LayerWeights.Moe(router, experts, shared, sharedGate);
        }

        private LayerWeights.Mlp mlp(String p, int inter) {
            int h = c.hiddenSize();
            return new LayerWeights.Mlp(matrix(p + "gate_proj.weight", inter, h), matrix(p + "up_proj.weight", inter, h),
                    matrix(p + "down_proj.weight", h, inter));
        }

        /** A tensor that is not a linear weight: never FP8. */
        private Tensor tensor(String name, int... shape) {
            Tensor t = linearTensor(name, shape);
            if (t.dtype() == DType.F8_E4M3) {
                throw new JnextException(ckpt.dir() + ": tensor '" + name + "' is F8_E4M3, but only linear weights (the "
                        + "projections, experts, gates and lm_head) are read as FP8; embeddings, norms, conv1d, A_log and "
                        + "dt_bias must be F32, BF16 or F16");
            }
            return t;
        }

        private Tensor linearTensor(String name, int... shape) {
            Tensor t = ckpt.require(name, shape);
            used.add(name);
            return t;
        }

        private Matrix matrix(String name, int rows, int cols) {
            Tensor t = linearTensor(name, rows, cols);
            float[] grid = scaleGrid(t, name.endsWith(".weight") ? name.substring(0, name.length() - ".weight".length()) : name);
            return Matrix.of(t, grid == null ? null : new BlockScales(scaleName(t), grid, blocks(rows), blocks(cols),
                    Fp8Quantization.BLOCK, Fp8Quantization.BLOCK, 0));
        }

        /** The block-scale grid of an expert's matrix in a fused [E, R, C] FP8 tensor, or null when it is not FP8. */
        private BlockScales expertScales(Tensor stacked, float[] grid, int expert) {
            if (grid == null) return null;
            int gr = blocks(stacked.dim(1)), gc = blocks(stacked.dim(2));
            float[] mine = Arrays.copyOfRange(grid, expert * gr * gc, (expert + 1) * gr * gc);
            return new BlockScales(scaleName(stacked) + "[" + expert + "]", mine, gr, gc, Fp8Quantization.BLOCK,
                    Fp8Quantization.BLOCK, 0);
        }

        private static int blocks(int n) {
            return (n + Fp8Quantization.BLOCK - 1) / Fp8Quantization.BLOCK;
        }

        /**
         * The scale names of a linear weight: {@code <m>.weight_scale_inv} for {@code <m>.weight}; for a fused expert
         * tensor {@code <t>}, {@code <t>_scale_inv} (transformers 5) or {@code <t>_scales_inv} (4.57's writer).
         */
        private static List<String> scaleNames(String weight) {
            return weight.endsWith(".weight") ? List.of(weight + "_scale_inv") : List.of(weight + "_scale_inv", weight + "_scales_inv");
        }

        private String scaleName(Tensor weight) {
            for (String n : scaleNames(weight.name())) if (ckpt.find(n) != null) return n;
            return scaleNames(weight.name()).getFirst();
        }

        /**
         * The checked block scales of a linear weight (all of a fused tensor's experts, row-major) when it is FP8, null
         * otherwise; refuses FP8 without a quantization_config or kept by it, a missing, misshaped or mistyped scale
         * tensor, a scale that is not positive and finite, and block scales beside a weight that is not FP8.
         */
        private float[] scaleGrid(Tensor w, String module) {
            String scaleName = scaleName(w);
            Tensor s = ckpt.find(scaleName);
            if (w.dtype() != DType.F8_E4M3) {
                if (s != null) {
                    throw new JnextException(ckpt.dir() + ": tensor '" + scaleName + "' holds block scales for '" + w.name()
                            + "', which is " + w.dtype() + " (only F8_E4M3 weights take block scales)");
                }
                return null;
            }
            if (quant == null) {
                throw new JnextException(ckpt.dir() + ": tensor '" + w.name() + "' is F8_E4M3 but config.json has no "
                        + "quantization_config; " + Fp8Quantization.SUPPORTED);
            }
            var kept = quant.keptBy(module);
            if (kept.isPresent()) {
                throw new JnextException(ckpt.dir() + ": tensor '" + w.name() + "' is F8_E4M3 but quantization_config keeps "
                        + module + " unquantized (" + (kept.get().equals("lm_head") && !quant.modulesToNotConvert().contains("lm_head")
                        ? "lm_head always is" : "modules_to_not_convert entry \"" + kept.get() + "\"") + ")");
            }
            int[] shape = w.shape();
            int[] grid = shape.clone();
            grid[grid.length - 2] = blocks(shape[shape.length - 2]);
            grid[grid.length - 1] = blocks(shape[shape.length - 1]);
            if (s == null) {
                throw new JnextException(ckpt.dir() + ": missing tensor '" + scaleName + "' (the block scales of the "
                        + "F8_E4M3 tensor '" + w.name() + "', expected shape " + Arrays.toString(grid) + ")");
            }
            used.add(scaleName);
            if (s.dtype() != DType.F32 && s.dtype() != DType.BF16) {
                throw new JnextException(ckpt.dir() + ": tensor '" + scaleName + "' is " + s.dtype()
                        + "; block scales must be F32 or BF16");
            }
            if (!s.hasShape(grid)) {
                throw new JnextException(ckpt.dir() + ": tensor '" + scaleName + "' has shape " + s.shapeString()
                        + ", expected " + Arrays.toString(grid) + " (one scale per " + Fp8Quantization.BLOCK + " x "
                        + Fp8Quantization.BLOCK + " block of '" + w.name() + "' " + w.shapeString() + ", ceil-divided)");
            }
            float[] values = s.toFloatArray();
            for (int i = 0; i < values.length; i++) {
                float v = values[i];
                if (!(v > 0) || v == Float.POSITIVE_INFINITY) {
                    throw new JnextException(ckpt.dir() + ": tensor '" + scaleName + "' holds " + v + " at "
                            + Arrays.toString(unflatten(i, grid)) + "; block scales must be positive and finite");
                }
            }
            return values;
        }

        private static int[] unflatten(int flat, int[] shape) {
            int[] idx = new int[shape.length];
            for (int d = shape.length - 1; d >= 0; d--) {
                idx[d] = flat % shape[d];
                flat /= shape[d];
            }
            return idx;
        }

        private float[] vector(String name, int n) {
            return tensor(name, n).toFloatArray();
        }
    }
}
