package dev.jnext.server.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The tool parts of a conversation sent back to the model: an assistant message's {@code tool_calls} and a
 * {@code tool} message, made into what the Qwen chat templates read. The templates iterate
 * {@code tool_call.function.arguments} as a mapping (Qwen3.5 / Qwen3-Coder: {@code arguments|items}) or write it
 * with {@code tojson} (Qwen3), while OpenAI clients send it as a JSON string: the string is parsed into a map here,
 * as vLLM does. A missing assistant {@code content} becomes {@code ""} (Qwen3's template tests
 * {@code '</think>' in message.content}).
 */
public final class ChatHistory {
    private ChatHistory() {}

    /**
     * Checks and rewrites one message map (converted from {@code node}) in place.
     *
     * @param where the message's place, e.g. {@code messages[2]}, for errors
     * @throws ToolRequestException naming the field at fault
     */
    public static void normalize(JsonNode node, Map<String, Object> message, String where, ObjectMapper mapper) {
        String role = String.valueOf(message.get("role"));
        JsonNode calls = node.get("tool_calls");
        if (role.equals("assistant")) {
            if (message.get("content") == null) message.put("content", "");
            JsonNode reasoning = node.get("reasoning_content");
            if (reasoning != null && !reasoning.isNull() && !reasoning.isTextual()) {
                throw new ToolRequestException(where + ".reasoning_content", where + ".reasoning_content must be a string, got "
                        + ChatTools.kind(reasoning));
            }
            if (calls == null || calls.isNull()) {
                message.remove("tool_calls");
                return;
            }
            if (!calls.isArray()) {
                throw new ToolRequestException(where + ".tool_calls", where + ".tool_calls must be an array, got " + ChatTools.kind(calls));
            }
            List<Object> out = new ArrayList<>();
            for (int j = 0; j < calls.size(); j++) out.add(toolCall(calls.get(j), where + ".tool_calls[" + j + "]", mapper));
            if (out.isEmpty()) message.remove("tool_calls");
            else message.put("tool_calls", out);
        } else {
            if (calls != null && !calls.isNull()) {
                throw new ToolRequestException(where + ".tool_calls", where + ".tool_calls is only allowed on assistant messages");
            }
            if (role.equals("tool")) {
                JsonNode id = node.get("tool_call_id");
                if (id != null && !id.isNull() && !id.isTextual()) {
                    throw new ToolRequestException(where + ".tool_call_id", where + ".tool_call_id must be a string, got " + ChatTools.kind(id));
                }
            }
        }
    }

    private static Map<String, Object> toolCall(JsonNode call, String where, ObjectMapper mapper) {
        if (!call.isObject()) throw new ToolRequestException(where, where + " must be an object, got " + ChatTools.kind(call));
        JsonNode type = call.get("type");
        if (type != null && !type.isNull() && !"function".equals(type.asText(null))) {
            throw new ToolRequestException(where + ".type", where + ".type must be \"function\"");
        }
        JsonNode id = call.get("id");
        if (id != null && !id.isNull() && !id.isTextual()) {
            throw new ToolRequestException(where + ".id", where + ".id must be a string, got " + ChatTools.kind(id));
        }
        JsonNode fn = call.get("function");
        if (fn == null || !fn.isObject()) {
            throw new ToolRequestException(where + ".function", where + ".function must be an object, got " + ChatTools.kind(fn));
        }
        String name = ChatTools.functionName(fn.get("name"), where + ".function.name");
        JsonNode args = fn.get("arguments");
        JsonNode parsed;
        if (args == null || args.isNull()) {
            parsed = mapper.createObjectNode();
        } else if (args.isObject()) {
            parsed = args;
        } else if (args.isTextual()) {
            parsed = args.asText().isBlank() ? mapper.createObjectNode() : ToolJson.read(mapper, args.asText());
            if (parsed == null || !parsed.isObject()) {
                throw new ToolRequestException(where + ".function.arguments", where
                        + ".function.arguments must be a JSON object (as a string), got " + brief(args.asText()));
            }
        } else {
            throw new ToolRequestException(where + ".function.arguments", where
                    + ".function.arguments must be a string holding a JSON object, got " + ChatTools.kind(args));
        }
        Map<String, Object> function = new LinkedHashMap<>();
        function.put("name", name);
        function.put("arguments", mapper.convertValue(parsed, LinkedHashMap.class));
        Map<String, Object> out = new LinkedHashMap<>();
        if (id != null && !id.isNull()) out.put("id", id.asText());
        out.put("type", "function");
        out.put("function", function);
        return out;
    }

    private static String brief(String s) {
        return "\"" + (s.length() > 40 ? s.substring(0, 40) + "..." : s) + "\"";
    }
}
