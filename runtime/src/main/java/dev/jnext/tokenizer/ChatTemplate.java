package dev.jnext.tokenizer;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import dev.jnext.JnextException;
import jinjava.javax.el.CompositeELResolver;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A checkpoint's Jinja chat template rendered with jinjava the way Hugging Face's
 * {@code apply_chat_template(..., tokenize=False)} renders it: trim_blocks and lstrip_blocks on,
 * {@code {{-}}} whitespace control, Python string and dict methods ({@link PythonMethods}), extended
 * slices and keyword arguments ({@link JinjaRewriter}), {@code loop.previtem}/{@code nextitem},
 * {@code tojson} as Python's json.dumps, {@code raise_exception}, {@code strftime_now}, the
 * {@code {% generation %}} block, and the special tokens as variables. Thread-safe.
 */
public final class ChatTemplate {
    private final String source;
    private final String template;
    private final Path origin;
    private final Map<String, Object> specialTokens;
    private final Jinjava jinjava;

    public ChatTemplate(String source, Path origin, Map<String, Object> specialTokens) {
        this.source = source;
        this.template = JinjaRewriter.rewrite(source);
        this.origin = origin;
        this.specialTokens = Map.copyOf(withoutNulls(specialTokens));
        CompositeELResolver resolver = new CompositeELResolver();
        resolver.add(new PythonMethods());
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .withElResolver(resolver)
                .withLegacyOverrides(LegacyOverrides.newBuilder()
                        .withUseTrimmingForNotesAndExpressions(true)
                        .withParseWhitespaceControlStrictly(true)
                        .withEvaluateMapKeys(true)
                        .withIterateOverMapKeys(true)
                        .withUsePyishObjectMapper(true)
                        .withKeepNullableLoopValues(true)
                        .build())
                .build();
        jinjava = new Jinjava(config);
        var globals = jinjava.getGlobalContext();
        globals.registerFunction(new ELFunctionDefinition("", "raise_exception", TemplateFunctions.class, "raiseException", Object.class));
        globals.registerFunction(new ELFunctionDefinition("", "strftime_now", TemplateFunctions.class, "strftimeNow", String.class));
        globals.registerFunction(new ELFunctionDefinition("", JinjaRewriter.FUNCTION, TemplateFunctions.class, "slice",
                Object.class, Object.class, Object.class, Object.class));
        globals.registerFilter(new TojsonFilter());
        globals.registerTag(new LoopNeighbours.TrackingForTag());
        globals.registerTag(new GenerationTag());
    }

    /** The template of a checkpoint or tokenizer folder (chat_template.jinja or tokenizer_config.json). */
    public static ChatTemplate load(Path dir) {
        TokenizerConfig config = TokenizerConfig.read(dir);
        String source = config.chatTemplate().orElseThrow(() -> new JnextException(
                dir.resolve("tokenizer_config.json") + ": no chat_template (and no chat_template.jinja); "
                        + "this tokenizer cannot format chat messages, use a plain prompt instead"));
        return new ChatTemplate(source, config.templateSource(), config.specialTokens());
    }

    public String source() {
        return source;
    }

    /** Renders plain role/content messages. */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        return render(messages, addGenerationPrompt, Map.of());
    }

    /** Renders plain role/content messages with extra template variables (e.g. enable_thinking=false). */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt, Map<String, ?> extraVariables) {
        return render(messages.stream().map(ChatMessage::toMap).toList(), null, addGenerationPrompt, extraVariables);
    }

    /**
     * Renders messages given as maps (role, content and whatever else the template reads, such as
     * reasoning_content or tool_calls), optional tool schemas, and extra variables (e.g. enable_thinking).
     */
    public String render(List<? extends Map<String, ?>> messages, List<?> tools, boolean addGenerationPrompt,
                         Map<String, ?> extraVariables) {
        Map<String, Object> context = new HashMap<>(specialTokens);
        context.putAll(extraVariables);
        context.put("messages", messages);
        context.put("tools", tools == null || tools.isEmpty() ? null : tools);
        context.put("add_generation_prompt", addGenerationPrompt);
        RenderResult result;
        try {
            result = jinjava.renderForResult(template, context);
        } catch (RuntimeException e) {
            throw failure(e.getMessage(), e);
        }
        for (TemplateError error : result.getErrors()) {
            if (error.getSeverity() == TemplateError.ErrorType.FATAL) {
                String message = error.getMessage();
                Throwable cause = error.getException();
                for (Throwable t = cause; t != null; t = t.getCause()) {
                    if (t instanceof TemplateFunctions.TemplateRaised raised) message = "raise_exception: " + raised.getMessage();
                }
                throw failure("line " + error.getLineno() + ": " + message, cause);
            }
        }
        return result.getOutput();
    }

    private JnextException failure(String what, Throwable cause) {
        return new JnextException("chat template of " + origin + " cannot be rendered: " + what, cause);
    }

    private static Map<String, Object> withoutNulls(Map<String, Object> m) {
        Map<String, Object> out = new HashMap<>();
        m.forEach((k, v) -> {
            if (v != null) out.put(k, v);
        });
        return out;
    }

    /** Hugging Face's tojson: Python's json.dumps with ensure_ascii=False (and indent / sort_keys if given). */
    private static final class TojsonFilter implements Filter {
        @Override
        public String getName() {
            return "tojson";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            Integer indent = args.length > 0 && args[0] != null ? Integer.valueOf(args[0]) : null;
            return PythonJson.dumps(var, indent, false);
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            Object indent = kwargs.getOrDefault("indent", args.length > 0 ? args[0] : null);
            boolean sortKeys = Boolean.TRUE.equals(kwargs.get("sort_keys"));
            return PythonJson.dumps(var, indent == null ? null : ((Number) indent).intValue(), sortKeys);
        }
    }

    /** Hugging Face's {@code {% generation %}...{% endgeneration %}} (marks assistant text for masks): renders its body. */
    private static final class GenerationTag implements com.hubspot.jinjava.lib.tag.Tag {
        private static final long serialVersionUID = 1L;

        @Override
        public String getName() {
            return "generation";
        }

        @Override
        public String getEndTagName() {
            return "endgeneration";
        }

        @Override
        public String interpret(com.hubspot.jinjava.tree.TagNode tagNode, JinjavaInterpreter interpreter) {
            StringBuilder out = new StringBuilder();
            for (com.hubspot.jinjava.tree.Node child : tagNode.getChildren()) out.append(child.render(interpreter).getValue());
            return out.toString();
        }
    }
}
