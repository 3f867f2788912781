package dev.jnext.server.tools;

import java.util.Locale;

/**
 * How a Qwen3-family checkpoint writes a tool call, which its chat template shows the model.
 */
public enum ToolCallFormat {
    /**
     * Qwen3 / Qwen3-Next (Hermes style): {@code <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>}.
     */
    HERMES,
    /**
     * Qwen3-Coder / Qwen3.5 (XML style): {@code <tool_call>\n<function=f>\n<parameter=p>\nvalue\n</parameter>\n
     * </function>\n</tool_call>}, the values typed by the tool's JSON schema.
     */
    XML;

    /** The format a chat template teaches: XML when it writes {@code <function=}, else Hermes JSON. */
    public static ToolCallFormat detect(String chatTemplateSource) {
        return chatTemplateSource != null && chatTemplateSource.contains("<function=") ? XML : HERMES;
    }

    /**
     * An override by name: {@code hermes} (or {@code json}), {@code xml} (or {@code qwen3-xml}, {@code qwen3_coder});
     * {@code auto} or null: none.
     *
     * @throws IllegalArgumentException for another name
     */
    public static ToolCallFormat named(String name) {
        if (name == null) return null;
        return switch (name.trim().toLowerCase(Locale.ROOT)) {
            case "", "auto" -> null;
            case "hermes", "json", "qwen3" -> HERMES;
            case "xml", "qwen3-xml", "qwen3_xml", "qwen3-coder", "qwen3_coder" -> XML;
            default -> throw new IllegalArgumentException("unknown tool-call format \"" + name + "\": use auto, hermes or xml");
        };
    }
}
