package dev.jnext.server.tools;

/**
 * A request whose tools, tool_choice, parallel_tool_calls or tool-call history is malformed: the server answers 400
 * naming {@link #param()}.
 */
public final class ToolRequestException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;
    private final String param;

    public ToolRequestException(String param, String message) {
        super(message);
        this.param = param;
    }

    /** The request field at fault, e.g. {@code tools[1].function.name}. */
    public String param() {
        return param;
    }
}
