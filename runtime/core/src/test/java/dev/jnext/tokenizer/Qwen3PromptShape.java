package dev.jnext.tokenizer;

import java.util.List;
import java.util.Map;

/**
 * The prompt the Qwen3 chat template renders, written out by hand for the conversations whose shape makes it
 * obvious: every message content, tool-call name and string argument appears verbatim between the role markers,
 * as transformers' goldens show. Used to check that hostile content is rendered literally where no golden exists
 * yet; {@link ChatTemplateLiteralContentTest} first proves it against every golden of such a shape.
 */
public final class Qwen3PromptShape {
    private static final String TOOLS_HEAD = "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            + "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
    private static final String TOOLS_TAIL = "\n</tools>\n\nFor each function call, return a json object with function name "
            + "and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
            + "<args-json-object>}\n</tool_call><|im_end|>\n";

    private Qwen3PromptShape() {}

    /**
     * The rendered prompt, or null when the conversation has a part this shape does not cover (thinking in an
     * assistant message, reasoning_content, non-string content).
     */
    public static String expected(List<Map<String, Object>> messages, List<Object> tools, boolean addGenerationPrompt,
                           Map<String, Object> kwargs) {
        for (Map<String, Object> m : messages) {
            if (!(m.get("content") instanceof String content) || m.containsKey("reasoning_content")) return null;
            if ("assistant".equals(m.get("role")) && content.contains("</think>")) return null;
        }
        StringBuilder out = new StringBuilder();
        boolean firstIsSystem = !messages.isEmpty() && "system".equals(messages.getFirst().get("role"));
        if (tools != null && !tools.isEmpty()) {
            out.append("<|im_start|>system\n");
            if (firstIsSystem) out.append(content(messages.getFirst())).append("\n\n");
            out.append(TOOLS_HEAD);
            for (Object tool : tools) out.append('\n').append(PythonJson.dumps(tool, null, false));
            out.append(TOOLS_TAIL);
        } else if (firstIsSystem) {
            out.append("<|im_start|>system\n").append(content(messages.getFirst())).append("<|im_end|>\n");
        }
        int lastQuery = messages.size() - 1;
        for (int i = messages.size() - 1; i >= 0; i--) {
            String c = content(messages.get(i));
            if ("user".equals(messages.get(i).get("role"))
                    && !(c.startsWith("<tool_response>") && c.endsWith("</tool_response>"))) {
                lastQuery = i;
                break;
            }
        }
        for (int i = 0; i < messages.size(); i++) {
            Map<String, Object> m = messages.get(i);
            String role = String.valueOf(m.get("role"));
            String c = content(m);
            boolean last = i == messages.size() - 1;
            switch (role) {
                case "user" -> out.append("<|im_start|>user\n").append(c).append("<|im_end|>\n");
                case "system" -> {
                    if (i > 0) out.append("<|im_start|>system\n").append(c).append("<|im_end|>\n");
                }
                case "assistant" -> {
                    if (i > lastQuery && last) {
                        out.append("<|im_start|>assistant\n<think>\n\n</think>\n\n").append(lstripNewlines(c));
                    } else {
                        out.append("<|im_start|>assistant\n").append(c);
                    }
                    if (m.get("tool_calls") instanceof List<?> calls) {
                        for (int k = 0; k < calls.size(); k++) {
                            if (k > 0 || !c.isEmpty()) out.append('\n');
                            @SuppressWarnings("unchecked")
                            Map<String, Object> call = (Map<String, Object>) calls.get(k);
                            if (call.get("function") instanceof Map<?, ?> f) {
                                @SuppressWarnings("unchecked")
                                Map<String, Object> function = (Map<String, Object>) f;
                                call = function;
                            }
                            Object args = call.get("arguments");
                            out.append("<tool_call>\n{\"name\": \"").append(call.get("name")).append("\", \"arguments\": ")
                                    .append(args instanceof String s ? s : PythonJson.dumps(args, null, false))
                                    .append("}\n</tool_call>");
                        }
                    }
                    out.append("<|im_end|>\n");
                }
                case "tool" -> {
                    if (i == 0 || !"tool".equals(messages.get(i - 1).get("role"))) out.append("<|im_start|>user");
                    out.append("\n<tool_response>\n").append(c).append("\n</tool_response>");
                    if (last || !"tool".equals(messages.get(i + 1).get("role"))) out.append("<|im_end|>\n");
                }
                default -> { }
            }
        }
        if (addGenerationPrompt) {
            out.append("<|im_start|>assistant\n");
            if (Boolean.FALSE.equals(kwargs.get("enable_thinking"))) out.append("<think>\n\n</think>\n\n");
        }
        return out.toString();
    }

    private static String content(Map<String, Object> m) {
        return (String) m.get("content");
    }

    private static String lstripNewlines(String s) {
        int i = 0;
        while (i < s.length() && s.charAt(i) == '\n') i++;
        return s.substring(i);
    }
}
