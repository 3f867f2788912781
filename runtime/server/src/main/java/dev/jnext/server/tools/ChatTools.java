package dev.jnext.server.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeType;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A chat request's {@code tools}, {@code tool_choice} and {@code parallel_tool_calls}, checked field by field, and
 * what follows from them: which tools the chat template offers the model ({@link #offered()}), and whether and which
 * calls the model's output is parsed into ({@link #parsesCalls()}, {@link #callable()}).
 *
 * <p>Constrained decoding covers {@code response_format} only, not tool calls, so {@code tool_choice} steers only
 * through the prompt and the parser:
 * <ul>
 * <li>{@code none}: the tools are not rendered into the prompt (the model is not told about them, so it does not
 *     call them) and nothing is parsed into {@code tool_calls}; the output is all content (reasoning still split off).
 * <li>{@code auto} (the default when tools are given): every tool offered, calls parsed.
 * <li>{@code required}: like auto; if the model writes no call, its text is returned as it is (finish_reason
 *     {@code stop}) and the server logs a warning — no error, since the model did answer.
 * <li>named ({@code {"type": "function", "function": {"name": "f"}}}): only {@code f} is offered and only calls of
 *     {@code f} are parsed (a call of another name is returned as text); no call: as for required.
 * </ul>
 * {@code parallel_tool_calls: false} keeps the first call the model writes and drops the others (logged).
 */
public final class ChatTools {

    /** tool_choice. */
    public enum Choice { NONE, AUTO, REQUIRED, NAMED }

    /** What a function name may be: OpenAI's {@code [a-zA-Z0-9_-]{1,64}}, widened with '.' and ':' (MCP names). */
    static final Pattern NAME = Pattern.compile("[A-Za-z0-9_.:\\-]{1,128}");

    /** A request without tools. */
    public static final ChatTools ABSENT = new ChatTools(List.of(), Map.of(), Choice.NONE, null, true);

    private final List<Object> tools;
    private final Map<String, JsonNode> functions; // name -> the tool's function object
    private final Choice choice;
    private final String named;
    private final boolean parallel;

    private ChatTools(List<Object> tools, Map<String, JsonNode> functions, Choice choice, String named, boolean parallel) {
        this.tools = tools;
        this.functions = functions;
        this.choice = choice;
        this.named = named;
        this.parallel = parallel;
    }

    /**
     * Reads {@code tools}, {@code tool_choice} and {@code parallel_tool_calls} of a chat request body.
     *
     * @throws ToolRequestException naming the field at fault
     */
    public static ChatTools parse(JsonNode root, ObjectMapper mapper) {
        for (String legacy : List.of("functions", "function_call")) {
            JsonNode v = root.get(legacy);
            if (v != null && !v.isNull()) {
                throw new ToolRequestException(legacy, legacy + " (deprecated by OpenAI) is not supported: use tools and tool_choice");
            }
        }
        List<Object> tools = new ArrayList<>();
        Map<String, JsonNode> functions = new LinkedHashMap<>();
        JsonNode t = root.get("tools");
        if (t != null && !t.isNull()) {
            if (!t.isArray()) throw new ToolRequestException("tools", "tools must be an array, got " + kind(t));
            for (int i = 0; i < t.size(); i++) {
                JsonNode tool = t.get(i);
                String where = "tools[" + i + "]";
                if (!tool.isObject()) throw new ToolRequestException(where, where + " must be an object, got " + kind(tool));
                JsonNode type = tool.get("type");
                if (type == null || !"function".equals(type.asText(null)) || !type.isTextual()) {
                    throw new ToolRequestException(where + ".type", where + ".type must be \"function\" (the only kind of tool supported)");
                }
                JsonNode fn = tool.get("function");
                if (fn == null || !fn.isObject()) {
                    throw new ToolRequestException(where + ".function", where + ".function must be an object, got " + kind(fn));
                }
                String name = functionName(fn.get("name"), where + ".function.name");
                JsonNode params = fn.get("parameters");
                if (params != null && !params.isNull() && !params.isObject()) {
                    throw new ToolRequestException(where + ".function.parameters", where
                            + ".function.parameters must be a JSON schema object, got " + kind(params));
                }
                if (functions.putIfAbsent(name, fn) != null) {
                    throw new ToolRequestException(where + ".function.name", "two tools are named \"" + name + "\"");
                }
                tools.add(mapper.convertValue(tool, LinkedHashMap.class));
            }
        }

        Choice choice = functions.isEmpty() ? Choice.NONE : Choice.AUTO;
        String named = null;
        JsonNode c = root.get("tool_choice");
        if (c != null && !c.isNull()) {
            if (c.isTextual()) {
                choice = switch (c.asText()) {
                    case "none" -> Choice.NONE;
                    case "auto" -> Choice.AUTO;
                    case "required" -> Choice.REQUIRED;
                    default -> throw new ToolRequestException("tool_choice", "tool_choice must be \"none\", \"auto\", "
                            + "\"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}, got \"" + c.asText() + "\"");
                };
            } else if (c.isObject() && "function".equals(c.path("type").asText(null)) && c.path("function").isObject()) {
                choice = Choice.NAMED;
                named = functionName(c.path("function").get("name"), "tool_choice.function.name");
                if (!functions.containsKey(named)) {
                    throw new ToolRequestException("tool_choice", "tool_choice names the function \"" + named
                            + "\", which is not among the tools");
                }
            } else {
                throw new ToolRequestException("tool_choice", "tool_choice must be \"none\", \"auto\", \"required\" or "
                        + "{\"type\": \"function\", \"function\": {\"name\": ...}}, got " + kind(c));
            }
            if (functions.isEmpty() && (choice == Choice.REQUIRED || choice == Choice.AUTO)) {
                if (choice == Choice.REQUIRED) {
                    throw new ToolRequestException("tool_choice", "tool_choice \"required\" needs tools");
                }
                choice = Choice.NONE;
            }
        }
        boolean parallel = true;
        JsonNode p = root.get("parallel_tool_calls");
        if (p != null && !p.isNull()) {
            if (!p.isBoolean()) throw new ToolRequestException("parallel_tool_calls", "parallel_tool_calls must be true or false, got " + kind(p));
            parallel = p.asBoolean();
        }
        if (functions.isEmpty()) return new ChatTools(List.of(), Map.of(), Choice.NONE, null, parallel);
        return new ChatTools(Collections.unmodifiableList(tools), Collections.unmodifiableMap(functions), choice, named, parallel);
    }

    static String functionName(JsonNode name, String where) {
        if (name == null || !name.isTextual()) throw new ToolRequestException(where, where + " must be a string, got " + kind(name));
        String s = name.asText();
        if (!NAME.matcher(s).matches()) {
            throw new ToolRequestException(where, where + " must be 1 to 128 letters, digits, '_', '-', '.' or ':', got \""
                    + (s.length() > 40 ? s.substring(0, 40) + "..." : s) + "\"");
        }
        return s;
    }

    /** The tools the chat template renders: none for tool_choice none, only the named one for a named choice. */
    public List<Object> offered() {
        return switch (choice) {
            case NONE -> null;
            case AUTO, REQUIRED -> tools;
            case NAMED -> {
                List<Object> one = new ArrayList<>();
                for (Object tool : tools) {
                    if (tool instanceof Map<?, ?> m && m.get("function") instanceof Map<?, ?> f && named.equals(f.get("name"))) one.add(tool);
                }
                yield one;
            }
        };
    }

    /** Whether the output is parsed into tool calls (tools given and tool_choice not none). */
    public boolean parsesCalls() {
        return choice != Choice.NONE;
    }

    /** The functions a parsed call may name, each with its function object (name, description, parameters). */
    public Map<String, JsonNode> callable() {
        if (choice == Choice.NONE) return Map.of();
        if (choice == Choice.NAMED) return Map.of(named, functions.get(named));
        return functions;
    }

    public Choice choice() {
        return choice;
    }

    /** The function of a named tool_choice, else null. */
    public String namedFunction() {
        return named;
    }

    /** parallel_tool_calls (default true): false keeps only the first call. */
    public boolean parallel() {
        return parallel;
    }

    /** Whether the request gave any tool. */
    public boolean present() {
        return !functions.isEmpty();
    }

    /** How an error message names a JSON value's type: "an array", "a string", "null", ... ("nothing" when absent). */
    public static String kind(JsonNode v) {
        if (v == null) return "nothing";
        JsonNodeType t = v.getNodeType();
        return switch (t) {
            case ARRAY -> "an array";
            case OBJECT -> "an object";
            case STRING -> "a string";
            case NUMBER -> "a number";
            case BOOLEAN -> "a boolean";
            case NULL -> "null";
            default -> t.name().toLowerCase(java.util.Locale.ROOT);
        };
    }
}
