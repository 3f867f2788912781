package dev.jnext.server.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.BooleanNode;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;

import java.util.LinkedHashSet;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/** The body of one {@code <tool_call>…</tool_call>} block, read in either format and checked against the tools. */
final class ToolCallBodies {
    private ToolCallBodies() {}

    /** What a body holds: a call (arguments as JSON text) or why it is not one. */
    sealed interface Result {}

    record Call(String name, String arguments) implements Result {}

    record Malformed(String why) implements Result {}

    static Result parse(ToolCallFormat format, String body, Map<String, JsonNode> callable) {
        return format == ToolCallFormat.XML ? xml(body, callable) : hermes(body, callable);
    }

    /** {@code {"name": "f", "arguments": {...}}}; arguments may also be a string holding a JSON object, or absent. */
    static Result hermes(String body, Map<String, JsonNode> callable) {
        JsonNode call = ToolJson.read(body.strip());
        if (call == null) return new Malformed("not one JSON value");
        if (!call.isObject()) return new Malformed("not a JSON object");
        JsonNode name = call.get("name");
        if (name == null || !name.isTextual()) return new Malformed("no \"name\" string");
        if (!callable.containsKey(name.asText())) return new Malformed("unknown function \"" + name.asText() + "\"");
        JsonNode args = call.get("arguments");
        if (args == null || args.isNull()) {
            args = ToolJson.MAPPER.createObjectNode();
        } else if (args.isTextual()) {
            JsonNode inner = ToolJson.read(args.asText());
            if (inner == null || !inner.isObject()) return new Malformed("\"arguments\" is a string that holds no JSON object");
            args = inner;
        } else if (!args.isObject()) {
            return new Malformed("\"arguments\" is not an object");
        }
        return new Call(name.asText(), ToolJson.write(args));
    }

    private static final String FUNCTION = "<function=", FUNCTION_END = "</function>";
    private static final String PARAMETER = "<parameter=", PARAMETER_END = "</parameter>";

    /**
     * {@code <function=f>(<parameter=p>value</parameter>)*</function>} with whitespace between the tags; a value loses
     * the one newline after its opening tag and the one before its closing tag (as the templates write them), and is
     * typed by the function's JSON schema ({@link #typed}).
     */
    static Result xml(String body, Map<String, JsonNode> callable) {
        int i = skipWhitespace(body, 0);
        if (!body.startsWith(FUNCTION, i)) return new Malformed("no <function=...> at its start");
        int gt = body.indexOf('>', i);
        if (gt < 0) return new Malformed("unterminated <function=");
        String name = body.substring(i + FUNCTION.length(), gt).strip();
        if (!callable.containsKey(name)) return new Malformed("unknown function \"" + name + "\"");
        JsonNode properties = callable.get(name).path("parameters").path("properties");
        ObjectNode args = ToolJson.MAPPER.createObjectNode();
        i = gt + 1;
        while (true) {
            i = skipWhitespace(body, i);
            if (body.startsWith(FUNCTION_END, i)) {
                i += FUNCTION_END.length();
                break;
            }
            if (!body.startsWith(PARAMETER, i)) {
                return new Malformed(i >= body.length() ? "no </function>" : "unexpected text inside <function=" + name + ">");
            }
            gt = body.indexOf('>', i);
            if (gt < 0) return new Malformed("unterminated <parameter=");
            String param = body.substring(i + PARAMETER.length(), gt).strip();
            if (param.isEmpty()) return new Malformed("a parameter without a name");
            int end = body.indexOf(PARAMETER_END, gt + 1);
            if (end < 0) return new Malformed("no </parameter> for \"" + param + "\"");
            String value = body.substring(gt + 1, end);
            if (value.startsWith("\r\n")) value = value.substring(2);
            else if (value.startsWith("\n")) value = value.substring(1);
            if (value.endsWith("\r\n")) value = value.substring(0, value.length() - 2);
            else if (value.endsWith("\n")) value = value.substring(0, value.length() - 1);
            args.set(param, typed(value, properties.get(param)));
            i = end + PARAMETER_END.length();
        }
        if (skipWhitespace(body, i) != body.length()) return new Malformed("text after </function>");
        return new Call(name, ToolJson.write(args));
    }

    /**
     * A parameter value typed by its JSON schema. The schema's types ({@code type}, a list of types, {@code anyOf} /
     * {@code oneOf} members) are tried in order, {@code string} and unknown ones skipped: null ({@code null} or
     * Python's {@code None}), boolean ({@code true} / {@code false} in any case: the templates write Python's
     * {@code True}), integer, number, object, array (JSON; surrounding whitespace ignored); the first the text parses as
     * wins. Otherwise — a string schema, no schema, a parameter not in it, a text that fits no type — the text as it is.
     */
    static JsonNode typed(String value, JsonNode schema) {
        Set<String> types = new LinkedHashSet<>();
        collectTypes(schema, types, 0);
        String v = value.strip();
        for (String t : types) {
            switch (t) {
                case "null" -> {
                    if (v.equals("null") || v.equals("None")) return NullNode.getInstance();
                }
                case "boolean" -> {
                    String b = v.toLowerCase(Locale.ROOT);
                    if (b.equals("true") || b.equals("false")) return BooleanNode.valueOf(b.equals("true"));
                }
                case "integer" -> {
                    JsonNode n = ToolJson.read(v);
                    if (n != null && n.isIntegralNumber()) return n;
                }
                case "number" -> {
                    JsonNode n = ToolJson.read(v);
                    if (n != null && n.isNumber()) return n;
                }
                case "object" -> {
                    JsonNode n = ToolJson.read(v);
                    if (n != null && n.isObject()) return n;
                }
                case "array" -> {
                    JsonNode n = ToolJson.read(v);
                    if (n != null && n.isArray()) return n;
                }
                default -> { } // "string" and unknown types: the text
            }
        }
        return TextNode.valueOf(value);
    }

    private static void collectTypes(JsonNode schema, Set<String> types, int depth) {
        if (schema == null || !schema.isObject() || depth > 8) return;
        JsonNode type = schema.get("type");
        if (type != null && type.isTextual()) types.add(type.asText());
        else if (type != null && type.isArray()) type.forEach(t -> {
            if (t.isTextual()) types.add(t.asText());
        });
        for (String union : new String[]{"anyOf", "oneOf"}) {
            JsonNode members = schema.get(union);
            if (members != null && members.isArray()) members.forEach(m -> collectTypes(m, types, depth + 1));
        }
    }

    private static int skipWhitespace(String s, int i) {
        while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++;
        return i;
    }
}
