package dev.jnext.tokenizer;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.el.JinjavaProcessors;
import com.hubspot.jinjava.interpret.CollectionTooBigException;
import com.hubspot.jinjava.interpret.Context;
import com.hubspot.jinjava.interpret.InterpreterFactory;
import com.hubspot.jinjava.interpret.OutputTooBigException;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.interpret.errorcategory.BasicTemplateErrorCategory;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import dev.jnext.JnextException;
import jinjava.javax.el.CompositeELResolver;

import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A checkpoint's Jinja chat template rendered with jinjava the way Hugging Face's
 * {@code apply_chat_template(..., tokenize=False)} renders it: trim_blocks and lstrip_blocks on,
 * {@code {{-}}} whitespace control, Python string and dict methods ({@link PythonMethods}), extended
 * slices and keyword arguments ({@link JinjaRewriter}), {@code loop.previtem}/{@code nextitem},
 * {@code tojson} as Python's json.dumps, {@code raise_exception}, {@code strftime_now}, the
 * {@code {% generation %}} block, and the special tokens as variables. Thread-safe.
 *
 * <p>Every value a caller supplies (message content, tool schemas, extra variables) is data: it is rendered
 * literally, as jinja2 does: never re-read as a template (jinjava's "nested interpretation" is off, and the
 * filters that would render a value, {@code render} and {@code striptags}, are disabled) and output as it is,
 * control characters included. jinjava's filters that are not jinja2's and need libraries jnext does not ship
 * ({@code ipaddr}, {@code log}, {@code b64encode}, ...) are disabled too. What a template can do
 * is bounded by {@link Limits}: output and string length, collection sizes, macro recursion, steps and time;
 * {@code range} is jinja2's sandboxed one (at most 100000 items), and no template can load another file.
 */
public final class ChatTemplate {

    /**
     * Bounds of one render, so that no template and no message can hang the process or exhaust its memory.
     *
     * @param maxOutputChars longest rendered prompt, and longest string one expression may build
     * @param maxItems       most items of a list or dict the template builds
     * @param maxDepth       deepest macro recursion
     * @param maxSteps       most rendered nodes plus loop iterations
     * @param maxTime        longest render
     */
    public record Limits(long maxOutputChars, int maxItems, int maxDepth, long maxSteps, Duration maxTime) {
        /** 16 Mi characters (far beyond any context window), 1 Mi items, depth 64, 4 M steps, 10 s. */
        public static final Limits DEFAULT = new Limits(16L << 20, 1 << 20, 64, 4_000_000, Duration.ofSeconds(10));

        /** Checks that every bound is positive. */
        public Limits {
            if (maxOutputChars <= 0 || maxItems <= 0 || maxDepth <= 0 || maxSteps <= 0 || maxTime == null
                    || maxTime.isNegative() || maxTime.isZero()) {
                throw new IllegalArgumentException("chat template limits must be positive: " + maxOutputChars + ", "
                        + maxItems + ", " + maxDepth + ", " + maxSteps + ", " + maxTime);
            }
        }
    }

    /**
     * jinjava filters and tags that would render a value as a template or load another file, and jinjava's own filters
     * whose libraries jnext leaves out of its dependencies (Hugging Face's Jinja environment has none of them, so no
     * chat template uses them): ipaddr/ipv4/ipv6, log, root, b64encode/b64decode.
     */
    private static final Map<Context.Library, Set<String>> DISABLED = Map.of(
            Context.Library.FILTER, Set.of("render", "striptags",
                    "ipaddr", "ipv4", "ipv6", "log", "root", "b64encode", "b64decode"),
            Context.Library.TAG, Set.of("include", "import", "from", "extends"));

    private final String source;
    private final String template;
    private final Path origin;
    private final Map<String, Object> specialTokens;
    private final Limits limits;
    private final Jinjava jinjava;

    /**
     * A template from its Jinja source, with the {@link Limits#DEFAULT default limits}.
     *
     * @param source        the Jinja source
     * @param origin        the file it came from, named in error messages
     * @param specialTokens variables the template sees besides the messages (bos_token, eos_token, ...; see
     *                      {@link TokenizerConfig#specialTokens()}); null values are left out
     */
    public ChatTemplate(String source, Path origin, Map<String, Object> specialTokens) {
        this(source, origin, specialTokens, Limits.DEFAULT);
    }

    /**
     * A template from its Jinja source with explicit limits.
     *
     * @param source        the Jinja source
     * @param origin        the file it came from, named in error messages
     * @param specialTokens variables the template sees besides the messages; null values are left out
     * @param limits        bounds of one render
     */
    public ChatTemplate(String source, Path origin, Map<String, Object> specialTokens, Limits limits) {
        this.source = source;
        this.limits = java.util.Objects.requireNonNull(limits, "limits");
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
                .withNestedInterpretationEnabled(false) // jinjava's default re-renders any value containing {{ or {%
                .withDisabled(DISABLED)
                .withMaxOutputSize(limits.maxOutputChars())
                .withMaxStringLength(limits.maxOutputChars())
                .withMaxListSize(limits.maxItems())
                .withMaxMapSize(limits.maxItems())
                .withEnableRecursiveMacroCalls(true) // as jinja2 (jinjava's default silently renders nothing instead)
                .withMaxMacroRecursionDepth(limits.maxDepth())
                .withProcessors(JinjavaProcessors.newBuilder().withNodePreProcessor((node, interpreter) -> RenderBudget.step()).build())
                .withInterperterFactory(new LiteralStringsInterpreter.Factory())
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
        globals.registerFunction(new ELFunctionDefinition("", "range", TemplateFunctions.class, "range", Object.class, Object[].class));
        globals.registerFunction(new ELFunctionDefinition("", "strftime_now", TemplateFunctions.class, "strftimeNow", String.class));
        globals.registerFunction(new ELFunctionDefinition("", JinjaRewriter.FUNCTION, TemplateFunctions.class, "slice",
                Object.class, Object.class, Object.class, Object.class));
        globals.registerFilter(new TojsonFilter());
        globals.registerFilter(new ItemsFilter());
        globals.registerFilter(new StringFilter());
        globals.registerFilter(new TrimFilter());
        globals.registerTag(new LoopNeighbours.TrackingForTag());
        globals.registerTag(new GenerationTag());
    }

    /**
     * The template of a checkpoint or tokenizer folder: {@code chat_template.jinja} when present (as transformers
     * prefers it), else {@code tokenizer_config.json}'s {@code chat_template}, with that file's special tokens.
     *
     * @param dir the folder
     * @return the template, ready to render
     * @throws JnextException when the folder has no template or its files are malformed
     */
    public static ChatTemplate load(Path dir) {
        TokenizerConfig config = TokenizerConfig.read(dir);
        String source = config.chatTemplate().orElseThrow(() -> new JnextException(
                dir.resolve("tokenizer_config.json") + ": no chat_template (and no chat_template.jinja); "
                        + "this tokenizer cannot format chat messages, use a plain prompt instead"));
        return new ChatTemplate(source, config.templateSource(), config.specialTokens());
    }

    /** The Jinja source as given (before jnext's rewrite of the forms jinjava's grammar gets wrong). */
    public String source() {
        return source;
    }

    /**
     * Renders plain role/content messages.
     *
     * @param messages            the conversation
     * @param addGenerationPrompt whether to end with the assistant turn's header, so the model's reply follows
     * @return the prompt text, to be encoded with {@link QwenTokenizer#encode}
     * @throws JnextException when the template fails (its {@code raise_exception}, an error, a limit), in one line
     */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        return render(messages, addGenerationPrompt, Map.of());
    }

    /**
     * Renders plain role/content messages with extra template variables.
     *
     * @param messages            the conversation
     * @param addGenerationPrompt whether to end with the assistant turn's header
     * @param extraVariables      more variables, e.g. {@code Map.of("enable_thinking", false)} for Qwen3
     * @return the prompt text
     * @throws JnextException when the template fails, in one line
     */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt, Map<String, ?> extraVariables) {
        return render(messages.stream().map(ChatMessage::toMap).toList(), null, addGenerationPrompt, extraVariables);
    }

    /**
     * Renders messages given as maps (role, content and whatever else the template reads, such as
     * reasoning_content or tool_calls), optional tool schemas, and extra variables (e.g. enable_thinking).
     *
     * @param messages            the conversation, each message a map as in the OpenAI / transformers format
     * @param tools               tool schemas (JSON-like maps and lists), or null / empty for none
     * @param addGenerationPrompt whether to end with the assistant turn's header
     * @param extraVariables      more template variables
     * @return the prompt text
     * @throws JnextException when the template fails, in one line
     */
    public String render(List<? extends Map<String, ?>> messages, List<?> tools, boolean addGenerationPrompt,
                         Map<String, ?> extraVariables) {
        Map<String, Object> context = new HashMap<>(specialTokens);
        context.putAll(extraVariables);
        context.put("messages", messages);
        context.put("tools", tools == null || tools.isEmpty() ? null : tools);
        context.put("add_generation_prompt", addGenerationPrompt);
        RenderResult result;
        RenderBudget budget = RenderBudget.start(limits);
        try {
            result = jinjava.renderForResult(template, context);
        } catch (StackOverflowError e) {
            throw failure("the template nests too deeply", null);
        } catch (RuntimeException e) {
            throw failure(e.getMessage(), e);
        } finally {
            budget.close();
        }
        if (budget.exceeded() != null) throw failure(budget.exceeded().getMessage(), budget.exceeded());
        for (TemplateError error : result.getErrors()) {
            if (error.getSeverity() == TemplateError.ErrorType.FATAL || isCycle(error)) {
                String message = error.getMessage();
                Throwable cause = error.getException();
                for (Throwable t = cause; t != null; t = t.getCause()) {
                    if (t instanceof TemplateFunctions.TemplateRaised raised) message = "raise_exception: " + raised.getMessage();
                    else if (t instanceof TemplateFunctions.Refused || t instanceof CollectionTooBigException
                            || t instanceof OutputTooBigException) message = t.getMessage();
                }
                throw failure((error.getLineno() > 0 ? "line " + error.getLineno() + ": " : "") + message, cause);
            }
        }
        return result.getOutput();
    }

    /** jinjava reports a macro past the recursion limit as a warning and renders nothing for it; jinja2 fails. */
    private static boolean isCycle(TemplateError error) {
        return error.getCategory() == BasicTemplateErrorCategory.CYCLE_DETECTED
                || error.getCategory() == BasicTemplateErrorCategory.IMPORT_CYCLE_DETECTED;
    }

    private JnextException failure(String what, Throwable cause) {
        String oneLine = String.valueOf(what).replaceAll("\\s*\\R\\s*", " ");
        return new JnextException("chat template of " + origin + " cannot be rendered: " + oneLine, cause);
    }

    private static Map<String, Object> withoutNulls(Map<String, Object> m) {
        Map<String, Object> out = new HashMap<>();
        m.forEach((k, v) -> {
            if (v != null) out.put(k, v);
        });
        return out;
    }

    /**
     * jinjava's interpreter, except that a string value is output exactly as it is: jinjava's "pyish" output quotes
     * and escapes it with Jackson and unescapes only quotes and backslashes, so a control character such as U+0000
     * came out as the six characters {@code \u0000}. Other values keep jinjava's Python-like output (True, None, lists).
     */
    private static final class LiteralStringsInterpreter extends JinjavaInterpreter {
        LiteralStringsInterpreter(Jinjava application, Context context, JinjavaConfig config) {
            super(application, context, config);
        }

        LiteralStringsInterpreter(JinjavaInterpreter parent) {
            super(parent);
        }

        @Override
        public String getAsString(Object object) {
            return object instanceof CharSequence s ? s.toString() : super.getAsString(object);
        }

        static final class Factory implements InterpreterFactory {
            @Override
            public JinjavaInterpreter newInstance(JinjavaInterpreter parent) {
                return new LiteralStringsInterpreter(parent);
            }

            @Override
            public JinjavaInterpreter newInstance(Jinjava application, Context context, JinjavaConfig config) {
                return new LiteralStringsInterpreter(application, context, config);
            }
        }
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

    /**
     * jinja2's {@code items} filter (3.1): a mapping's (key, value) pairs, for {@code {% for k, v in m | items %}} — the
     * Qwen3.5 and Qwen3-Coder templates render a past tool call's arguments so; jinjava has no such filter and rendered
     * nothing. Undefined or none gives no pairs; anything else is jinja2's TypeError.
     */
    private static final class ItemsFilter implements Filter {
        @Override
        public String getName() {
            return "items";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            if (var == null) return List.of();
            if (var instanceof Map<?, ?> m) return List.copyOf(m.entrySet());
            throw new TemplateFunctions.Refused("items: can only get item pairs from a mapping, got "
                    + (var instanceof CharSequence ? "a string" : var.getClass().getSimpleName()));
        }
    }

    /**
     * jinja2's {@code string} filter: Python's {@code str(x)} ({@code True}, {@code None}, {@code 1.0}, {@code ['a']});
     * jinjava's writes Java's ({@code true}). The Qwen3.5 template renders a past tool call's scalar arguments with it.
     */
    private static final class StringFilter implements Filter {
        @Override
        public String getName() {
            return "string";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            return PythonStr.str(var);
        }
    }

    /**
     * jinja2's {@code trim(value, chars=None)}: Python's {@code str(value).strip(chars)}, which strips Unicode whitespace
     * only; jinjava's (Java's trim) also strips control characters such as NUL.
     */
    private static final class TrimFilter implements Filter {
        @Override
        public String getName() {
            return "trim";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            String chars = args.length > 0 ? args[0] : null;
            return PythonMethods.lstrip(PythonMethods.rstrip(PythonStr.str(var), chars), chars);
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
