package dev.jnext.server.tools;

import java.util.ArrayList;
import java.util.List;

/**
 * A whole chat answer split into OpenAI's fields.
 *
 * @param reasoning the think block's text ({@code reasoning_content}), null when there was none
 * @param content   the text outside the think block and the calls, null when empty
 * @param toolCalls the calls, in order
 */
public record ParsedOutput(String reasoning, String content, List<OutputDelta.ToolCall> toolCalls) {

    public ParsedOutput {
        toolCalls = List.copyOf(toolCalls);
    }

    /** The deltas put together, as a client of the stream would. */
    public static ParsedOutput of(List<? extends OutputDelta> deltas) {
        StringBuilder reasoning = null, content = null;
        List<OutputDelta.ToolCall> calls = new ArrayList<>();
        for (OutputDelta d : deltas) {
            switch (d) {
                case OutputDelta.Reasoning r -> (reasoning == null ? reasoning = new StringBuilder() : reasoning).append(r.text());
                case OutputDelta.Content c -> (content == null ? content = new StringBuilder() : content).append(c.text());
                case OutputDelta.ToolCall t -> calls.add(t);
            }
        }
        return new ParsedOutput(reasoning == null || reasoning.isEmpty() ? null : reasoning.toString(),
                content == null || content.isEmpty() ? null : content.toString(), calls);
    }
}
