package dev.jnext.server.tools;

/** A piece of a chat answer as {@link ChatOutputParser} splits the model's text. */
public sealed interface OutputDelta {

    /** Text of the think block: the OpenAI {@code reasoning_content}. */
    record Reasoning(String text) implements OutputDelta {}

    /** Text outside the think block and the tool calls: the answer's {@code content}. */
    record Content(String text) implements OutputDelta {}

    /**
     * One whole, checked tool call.
     *
     * @param index     its place among the calls of the answer (0, 1, ...)
     * @param id        its id ({@code call_...})
     * @param name      the function
     * @param arguments a JSON object as text
     */
    record ToolCall(int index, String id, String name, String arguments) implements OutputDelta {}
}
