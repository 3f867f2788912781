package dev.jnext.tokenizer;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One chat turn: a role (system, user, assistant, tool) and its text, for {@link ChatTemplate#render(java.util.List,
 * boolean)}. Messages with more fields (tool calls, reasoning) are passed to the template as maps instead.
 *
 * @param role    "system", "user", "assistant" or "tool" (the template decides what it accepts)
 * @param content the text; rendered literally, never as a template
 */
public record ChatMessage(String role, String content) {
    /**
     * A system message.
     *
     * @param content the instructions
     * @return {@code new ChatMessage("system", content)}
     */
    public static ChatMessage system(String content) {
        return new ChatMessage("system", content);
    }

    /**
     * A user message.
     *
     * @param content what the user says
     * @return {@code new ChatMessage("user", content)}
     */
    public static ChatMessage user(String content) {
        return new ChatMessage("user", content);
    }

    /**
     * An assistant message (an earlier reply, in a multi-turn conversation).
     *
     * @param content the reply
     * @return {@code new ChatMessage("assistant", content)}
     */
    public static ChatMessage assistant(String content) {
        return new ChatMessage("assistant", content);
    }

    Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("role", role);
        m.put("content", content);
        return m;
    }
}
