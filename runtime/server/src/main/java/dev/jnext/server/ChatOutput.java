package dev.jnext.server;

import dev.jnext.JnextException;
import dev.jnext.engine.Engine;
import dev.jnext.engine.FinishReason;
import dev.jnext.engine.GenerationRequest;
import dev.jnext.server.tools.ChatOutputParser;
import dev.jnext.server.tools.ChatTools;
import dev.jnext.server.tools.ToolCallFormat;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Tool calls and reasoning of one chat request (issue 18), between the request and the response bodies: renders the
 * chat prompt once (its end tells whether the answer starts inside a think block), picks the tool-call format from
 * the chat template ({@code <function=} in it: Qwen3.5 / Qwen3-Coder XML, else Qwen3 Hermes JSON; the system property
 * {@value #FORMAT_PROPERTY} or the environment variable {@value #FORMAT_ENV} = {@code hermes} / {@code xml}
 * overrides it), and makes the request's {@link ChatOutputParser}. The parsing itself is {@link dev.jnext.server.tools}.
 */
final class ChatOutput {
    private static final Logger log = LoggerFactory.getLogger(ChatOutput.class);
    static final String FORMAT_PROPERTY = "jnext.toolCallFormat";
    static final String FORMAT_ENV = "JNEXT_TOOL_CALL_FORMAT";
    static final String THINK_END = "</think>";

    private final GenerationRequest generation;
    private final ChatTools tools;
    private final ChatOutputParser.Settings settings; // null: not a chat, the text is returned as it is

    private ChatOutput(GenerationRequest generation, ChatTools tools, ChatOutputParser.Settings settings) {
        this.generation = generation;
        this.tools = tools;
        this.settings = settings;
    }

    /**
     * A chat request is rendered here (a template failure is a 400 naming messages) and submitted as its prompt text,
     * which tokenizes exactly as the chat would in the engine; a completions request is left as it is.
     */
    static ChatOutput prepare(Engine engine, OpenAiRequest request) {
        GenerationRequest g = request.generation();
        if (request.endpoint() != OpenAiRequest.Endpoint.CHAT || !(g.prompt() instanceof GenerationRequest.Prompt.Chat chat)) {
            return new ChatOutput(g, ChatTools.ABSENT, null);
        }
        String prompt;
        ToolCallFormat format;
        try {
            prompt = engine.chatTemplate().render(chat.messages(), chat.tools(), true, chat.templateVariables());
            format = format(engine.chatTemplate().source());
        } catch (JnextException e) {
            throw ApiError.badRequest("messages", e.getMessage());
        }
        boolean inThink = prompt.stripTrailing().endsWith("<think>");
        ChatTools tools = request.tools();
        // a JSON response format: the answer is the document, never parsed for tool calls (a "<tool_call>" inside one of
        // its strings is text)
        var settings = new ChatOutputParser.Settings(format, g.responseFormat().constrains() ? java.util.Map.of() : tools.callable(),
                tools.parallel(), inThink);
        GenerationRequest text = g.withPrompt(new GenerationRequest.Prompt.Text(prompt));
        if (inThink && text.responseFormat().constrains() && engine.tokenizer().idOf(THINK_END).isPresent()) {
            // the template opened a think block: the reasoning is free, the JSON document comes after </think>
            text = text.withResponseFormat(text.responseFormat().startingAfter(THINK_END));
        }
        return new ChatOutput(text, tools, settings);
    }

    /** The template's format unless overridden (an override that names no format is logged once and ignored). */
    static ToolCallFormat format(String templateSource) {
        String override = System.getProperty(FORMAT_PROPERTY, System.getenv(FORMAT_ENV));
        ToolCallFormat named = null;
        try {
            named = ToolCallFormat.named(override);
        } catch (IllegalArgumentException e) {
            if (!badOverrideLogged) log.warn("{} / {}: {}; the chat template decides", FORMAT_PROPERTY, FORMAT_ENV, e.getMessage());
            badOverrideLogged = true;
        }
        return named != null ? named : ToolCallFormat.detect(templateSource);
    }

    private static volatile boolean badOverrideLogged;

    /** What to submit to the engine. */
    GenerationRequest generation() {
        return generation;
    }

    /** Whether the answer is parsed (chat) or returned as it is (completions). */
    boolean parses() {
        return settings != null;
    }

    /** A parser for the answer of request {@code id}, which logs malformed and dropped calls as warnings. */
    ChatOutputParser parser(String id) {
        return new ChatOutputParser(settings, null, w -> log.warn("{}: {}", id, w));
    }

    /**
     * OpenAI's finish_reason once the answer ended with {@code calls} calls: {@code tool_calls} when there were any;
     * logs a warning when tool_choice asked for a call and none came (there is no constrained decoding to force one).
     */
    String finishReason(String id, FinishReason reason, int calls) {
        if (calls > 0 && reason.openAiName() != null) return "tool_calls";
        if (calls == 0 && reason != FinishReason.CANCELLED
                && (tools.choice() == ChatTools.Choice.REQUIRED || tools.choice() == ChatTools.Choice.NAMED)) {
            log.warn("{}: tool_choice {} but the model called no tool; its text is returned", id,
                    tools.choice() == ChatTools.Choice.NAMED ? "names " + tools.namedFunction() : "is required");
        }
        return reason.openAiName();
    }
}
