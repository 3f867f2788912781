package dev.jnext.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jnext.JnextException;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * A config.json {@code quantization_config} of the one kind jnext loads: fine-grained FP8 as the official
 * Qwen3-Next-…-FP8 checkpoints (and transformers' {@code FineGrainedFP8Config}) write it — {@code quant_method "fp8"},
 * {@code fmt "e4m3"}, {@code activation_scheme "dynamic"}, {@code weight_block_size [128, 128]}. A converted linear
 * weight {@code <m>.weight} is stored as {@code F8_E4M3} with {@code <m>.weight_scale_inv} (F32 or BF16), one scale per
 * 128 × 128 block, ceil-divided at ragged edges: the weight is {@code fp8 value · scale_inv} of its block.
 *
 * <p>{@code modules_to_not_convert} (or {@code ignored_layers}, transformers' older name, read when the first is absent)
 * names the modules kept in their unquantized dtype, with transformers' matching rule ({@code should_convert_module}): an
 * entry names a module when it matches the start of the module's name as a regular expression or ends it literally.
 * {@code lm_head} is always kept, as transformers adds it to the list. Every other quantization — GPTQ, AWQ,
 * compressed-tensors, bitsandbytes, per-tensor FP8, other block sizes, e5m2, static activation scales, UE8M0 scales —
 * is refused by {@link #parse} with one line naming the field and what is supported.
 */
public final class Fp8Quantization {
    /** The block edge, rows and columns, of the one accepted {@code weight_block_size}. */
    public static final int BLOCK = 128;

    /** What jnext loads, the tail of every refusal. */
    public static final String SUPPORTED = "jnext loads unquantized checkpoints (F32, BF16, F16) and fine-grained FP8 "
            + "(quant_method \"fp8\", fmt \"e4m3\", activation_scheme \"dynamic\", weight_block_size [128, 128])";

    /** transformers keeps the output embedding unquantized whatever the list says. */
    private static final String ALWAYS_KEPT = "lm_head";

    private final List<String> modulesToNotConvert;
    private final Matcher matcher;

    private Fp8Quantization(List<String> modulesToNotConvert, String source) {
        this.modulesToNotConvert = List.copyOf(modulesToNotConvert);
        this.matcher = new Matcher();
        for (int i = 0; i < this.modulesToNotConvert.size(); i++) {
            matcher.add(this.modulesToNotConvert.get(i), source + ": quantization_config.modules_to_not_convert[" + i + "]");
        }
        matcher.add(ALWAYS_KEPT, "lm_head");
    }

    /**
     * Fine-grained FP8 keeping the modules {@code modulesToNotConvert} names (entries as in config.json).
     *
     * @throws JnextException naming an entry that is not a valid regular expression
     */
    public static Fp8Quantization of(List<String> modulesToNotConvert) {
        return new Fp8Quantization(modulesToNotConvert, "config");
    }

    /**
     * The list the official Qwen3-Next FP8 checkpoints keep in bf16, for this geometry: {@code lm_head},
     * {@code model.embed_tokens}, every layer's two norms, each MoE layer's router {@code mlp.gate} and
     * {@code mlp.shared_expert_gate}, each Gated DeltaNet layer's {@code A_log}, {@code conv1d}, {@code dt_bias},
     * {@code in_proj_ba} and {@code norm}, each attention layer's {@code q_norm} and {@code k_norm}. What it leaves —
     * the attention and DeltaNet projections, the experts, the shared expert, the dense MLPs — is FP8.
     */
    public static Fp8Quantization qwen3Next(ModelConfig c) {
        return official(c, "model.", List.of("A_log", "conv1d", "dt_bias", "in_proj_ba", "norm"));
    }

    /** The official FP8 builds' list for {@code c}'s family: {@link #qwen3Next} or {@link #qwen35}. */
    public static Fp8Quantization official(ModelConfig c) {
        return c.family() == ModelFamily.QWEN3_NEXT ? qwen3Next(c) : qwen35(c);
    }

    /**
     * Qwen3.5 / 3.6's FP8 builds (as the published Qwen3.6-35B-A3B-FP8 layout is described by third-party copies that
     * reproduce it — no file of Qwen's was reachable from here): the same kept modules as Qwen3-Next's under the text
     * model's prefix ({@link ModelConfig#weightPrefix}), with the split DeltaNet projections: {@code in_proj_a} and
     * {@code in_proj_b} kept, {@code in_proj_qkv} and {@code in_proj_z} FP8.
     */
    public static Fp8Quantization qwen35(ModelConfig c) {
        return official(c, c.weightPrefix(), List.of("A_log", "conv1d", "dt_bias", "in_proj_a", "in_proj_b", "norm"));
    }

    /**
     * lm_head and the embedding; every layer's norms; every MoE layer's router and shared-expert gate; every Gated
     * DeltaNet layer's {@code deltaNetKept}; every attention layer's q/k norms — the text model's modules under
     * {@code prefix}.
     */
    private static Fp8Quantization official(ModelConfig c, String prefix, List<String> deltaNetKept) {
        List<String> out = new ArrayList<>(List.of("lm_head", prefix + "embed_tokens"));
        for (int i = 0; i < c.numHiddenLayers(); i++) {
            String p = prefix + "layers." + i + ".";
            out.add(p + "input_layernorm");
            out.add(p + "post_attention_layernorm");
            if (c.isMoeLayer(i)) {
                out.add(p + "mlp.gate");
                out.add(p + "mlp.shared_expert_gate");
            }
            if (c.layerType(i) == LayerType.LINEAR_ATTENTION) {
                for (String m : deltaNetKept) out.add(p + "linear_attn." + m);
            } else {
                out.add(p + "self_attn.q_norm");
                out.add(p + "self_attn.k_norm");
            }
        }
        return of(out);
    }

    /** The modules kept unquantized, as config.json lists them (without the implicit {@code lm_head}). */
    public List<String> modulesToNotConvert() {
        return modulesToNotConvert;
    }

    /** Whether transformers converts {@code module} (a weight's name without {@code .weight}) to FP8. */
    public boolean converts(String module) {
        return keptBy(module).isEmpty();
    }

    /** The list entry that keeps {@code module} unquantized ({@code "lm_head"} for the implicit one), or empty. */
    public Optional<String> keptBy(String module) {
        return Optional.ofNullable(matcher.match(module));
    }

    /** The config.json object. */
    public ObjectNode toJson(ObjectNode o) {
        o.put("activation_scheme", "dynamic");
        o.put("fmt", "e4m3");
        o.put("quant_method", "fp8");
        o.putArray("weight_block_size").add(BLOCK).add(BLOCK);
        ArrayNode list = o.putArray("modules_to_not_convert");
        modulesToNotConvert.forEach(list::add);
        return o;
    }

    /**
     * Reads a {@code quantization_config} object; {@code source} names the file in errors.
     *
     * @throws JnextException one line naming the field and its value, then {@link #SUPPORTED}, for anything but
     *                        fine-grained FP8 in 128 × 128 blocks with dynamic activations
     */
    public static Fp8Quantization parse(JsonNode q, String source) {
        String src = source + ": quantization_config";
        if (!q.isObject()) throw new JnextException(src + " must be an object, got " + abbreviate(q) + "; " + SUPPORTED);
        JsonNode method = q.get("quant_method");
        if (method == null || method.isNull()) {
            String keys = String.join(", ", fieldNames(q));
            throw new JnextException(src + " has no quant_method (keys: " + keys + "); " + SUPPORTED);
        }
        if (!method.isTextual() || !method.asText().equals("fp8")) {
            throw new JnextException(src + ".quant_method is " + abbreviate(method) + "; " + SUPPORTED);
        }
        expectText(q, "fmt", "e4m3", src);
        expectText(q, "activation_scheme", "dynamic", src);
        expectText(q, "weight_format", "fp8", src);
        expectText(q, "scale_fmt", "float", src);
        if (q.has("weight_block_size")) { // absent: transformers' default [128, 128]; null: one scale per tensor
            JsonNode b = q.get("weight_block_size");
            boolean ok = b.isArray() && b.size() == 2 && b.get(0).isIntegralNumber() && b.get(1).isIntegralNumber()
                    && b.get(0).asLong() == BLOCK && b.get(1).asLong() == BLOCK;
            if (!ok) {
                String what = b.isNull() ? "null (per-tensor FP8)" : abbreviate(b);
                throw new JnextException(src + ".weight_block_size is " + what + "; " + SUPPORTED);
            }
        }
        JsonNode convert = q.get("modules_to_convert");
        if (convert != null && !convert.isNull() && !(convert.isArray() && convert.isEmpty())) {
            throw new JnextException(src + ".modules_to_convert is " + abbreviate(convert)
                    + " (FP8 embeddings are not supported); " + SUPPORTED);
        }
        String listKey = q.hasNonNull("modules_to_not_convert") ? "modules_to_not_convert" : "ignored_layers";
        List<String> kept = new ArrayList<>();
        JsonNode list = q.get(listKey);
        if (list != null && !list.isNull()) {
            if (!list.isArray()) throw new JnextException(src + "." + listKey + " must be a list of module names, got " + abbreviate(list));
            for (int i = 0; i < list.size(); i++) {
                if (!list.get(i).isTextual()) {
                    throw new JnextException(src + "." + listKey + "[" + i + "] must be a module name, got " + abbreviate(list.get(i)));
                }
                kept.add(list.get(i).asText());
            }
        }
        return new Fp8Quantization(kept, source);
    }

    private static void expectText(JsonNode q, String field, String accepted, String src) {
        JsonNode n = q.get(field);
        if (n == null || n.isNull()) return;
        if (!n.isTextual() || !n.asText().equals(accepted)) {
            throw new JnextException(src + "." + field + " is " + abbreviate(n) + "; " + SUPPORTED);
        }
    }

    private static List<String> fieldNames(JsonNode q) {
        List<String> names = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = q.properties().iterator(); it.hasNext(); ) names.add(it.next().getKey());
        return names.isEmpty() ? List.of("none") : names;
    }

    private static String abbreviate(JsonNode n) {
        String s = n.toString();
        return s.length() <= 80 ? s : s.substring(0, 77) + "...";
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Fp8Quantization q && q.modulesToNotConvert.equals(modulesToNotConvert);
    }

    @Override
    public int hashCode() {
        return modulesToNotConvert.hashCode();
    }

    @Override
    public String toString() {
        return "Fp8Quantization[e4m3, blocks 128x128, dynamic, " + modulesToNotConvert.size() + " modules kept]";
    }

    /**
     * The list as transformers tests it ({@code should_convert_module}): an entry keeps a module when
     * {@code re.match(entry, name) or name.endswith(entry)} (its third form, {@code re.match(entry + "\\.", name)},
     * implies the first). Entries without regex syntax but the dot — module names, as in every official list, hundreds
     * of them against tens of thousands of expert matrices — go into a trie whose dots match any character (the regex
     * dot) and an index of literal suffixes by length; the rest are compiled and tried one by one.
     */
    private static final class Matcher {
        private final Node prefixes = new Node();
        private final Map<Integer, Map<String, String>> suffixes = new TreeMap<>();
        private final List<Map.Entry<Pattern, String>> regexes = new ArrayList<>();

        private static final class Node {
            final Map<Character, Node> next = new HashMap<>();
            Node any;
            String entry;
        }

        void add(String entry, String where) {
            suffixes.computeIfAbsent(entry.length(), n -> new HashMap<>()).putIfAbsent(entry, entry);
            if (entry.chars().allMatch(ch -> ch == '.' || "\\[]{}()*+?^$|".indexOf(ch) < 0)) {
                Node n = prefixes;
                for (int i = 0; i < entry.length(); i++) {
                    char ch = entry.charAt(i);
                    if (ch == '.') n = n.any == null ? (n.any = new Node()) : n.any;
                    else n = n.next.computeIfAbsent(ch, c -> new Node());
                }
                if (n.entry == null) n.entry = entry;
                return;
            }
            try {
                regexes.add(Map.entry(Pattern.compile(entry), entry));
            } catch (PatternSyntaxException e) {
                throw new JnextException(where + " \"" + entry + "\" is not a valid regular expression: "
                        + e.getDescription());
            }
        }

        /** The entry keeping {@code name}, or null. */
        String match(String name) {
            String hit = prefix(prefixes, name, 0);
            if (hit != null) return hit;
            for (Map.Entry<Integer, Map<String, String>> e : suffixes.entrySet()) {
                if (e.getKey() > name.length()) break;
                hit = e.getValue().get(name.substring(name.length() - e.getKey()));
                if (hit != null) return hit;
            }
            for (Map.Entry<Pattern, String> r : regexes) if (r.getKey().matcher(name).lookingAt()) return r.getValue();
            return null;
        }

        private static String prefix(Node n, String name, int i) {
            if (n.entry != null) return n.entry;
            if (i == name.length()) return null;
            Node literal = n.next.get(name.charAt(i));
            String hit = literal == null ? null : prefix(literal, name, i + 1);
            return hit != null || n.any == null ? hit : prefix(n.any, name, i + 1);
        }
    }
}
