package dev.jnext.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jnext.engine.FinishReason;
import dev.jnext.engine.GeneratedToken;
import dev.jnext.server.tools.ChatOutputParser;
import dev.jnext.server.tools.OutputDelta;
import dev.jnext.server.tools.ParsedOutput;
import dev.jnext.tokenizer.QwenTokenizer;

import java.util.ArrayList;
import java.util.List;

/**
 * The JSON bodies of OpenAI's completion APIs for one request: the whole response, the streamed chunks, usage and
 * log-probabilities (chat's {@code content} list or the legacy {@code tokens / token_logprobs / top_logprobs /
 * text_offset} arrays). A chat answer goes through the request's {@link ChatOutputParser} (tool calls and reasoning):
 * {@link #chunks} and {@link #lastChunks} stream its deltas, {@link #complete} the whole message.
 */
final class OpenAiResponses {
    private final ObjectMapper json;
    private final QwenTokenizer tokenizer;
    private final OpenAiRequest request;
    private final String id;
    private final long created;
    private final String model;
    private int textOffset; // completions' text_offset: characters (code points) of the token strings so far
    private final ChatOutput output;
    private final ChatOutputParser parser; // null: the text goes out as it is (completions)

    OpenAiResponses(ObjectMapper json, QwenTokenizer tokenizer, OpenAiRequest request, ChatOutput output, String id,
                    long created, String model) {
        this.json = json;
        this.tokenizer = tokenizer;
        this.request = request;
        this.id = id;
        this.created = created;
        this.model = model;
        this.output = output;
        this.parser = output.parses() ? output.parser(id) : null;
    }

    private boolean chat() {
        return request.endpoint() == OpenAiRequest.Endpoint.CHAT;
    }

    private ObjectNode envelope(boolean chunk) {
        ObjectNode o = json.createObjectNode();
        o.put("id", id);
        o.put("object", chat() ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion");
        o.put("created", created);
        o.put("model", model);
        return o;
    }

    /** The whole non-streaming response, none of whose prompt tokens came from the prefix cache. */
    ObjectNode complete(String text, List<GeneratedToken> tokens, FinishReason reason, int promptTokens) {
        return complete(text, tokens, reason, promptTokens, 0);
    }

    /** The whole non-streaming response; {@code cachedTokens} of the prompt came from the prefix cache. */
    ObjectNode complete(String text, List<GeneratedToken> tokens, FinishReason reason, int promptTokens, int cachedTokens) {
        ObjectNode o = envelope(false);
        ObjectNode choice = o.putArray("choices").addObject();
        choice.put("index", 0);
        String finishReason = reason.openAiName();
        if (chat()) {
            ObjectNode message = choice.putObject("message");
            message.put("role", "assistant");
            if (parser != null) finishReason = message(message, text, reason);
            else message.put("content", text);
        } else {
            choice.put("text", text);
        }
        logprobs(choice, tokens);
        choice.put("finish_reason", finishReason);
        usage(o, promptTokens, tokens.size(), cachedTokens);
        return o;
    }

    // ---- tool calls and reasoning (issue 18) ----

    /** Fills a whole chat message from the answer: content (null if empty), reasoning_content, tool_calls. */
    private String message(ObjectNode message, String text, FinishReason reason) {
        List<OutputDelta> deltas = new ArrayList<>(parser.feed(text));
        deltas.addAll(parser.finish());
        ParsedOutput parsed = ParsedOutput.of(deltas);
        if (parsed.content() == null) message.putNull("content");
        else message.put("content", parsed.content());
        if (parsed.reasoning() != null) message.put("reasoning_content", parsed.reasoning());
        if (!parsed.toolCalls().isEmpty()) {
            ArrayNode calls = message.putArray("tool_calls");
            for (OutputDelta.ToolCall t : parsed.toolCalls()) {
                ObjectNode c = calls.addObject();
                c.put("id", t.id());
                c.put("type", "function");
                c.putObject("function").put("name", t.name()).put("arguments", t.arguments());
            }
        }
        return output.finishReason(id, reason, parsed.toolCalls().size());
    }

    /**
     * The chunks for the text (and tokens) of one engine event: as they are for completions; for chat, one chunk per
     * delta the parser gives (reasoning_content, content, or a tool call as a chunk with its index, id, type, name and
     * empty arguments, then one with its arguments), the log-probabilities on the first (or on a chunk of their own).
     */
    List<ObjectNode> chunks(String text, List<GeneratedToken> tokens) {
        if (parser == null) return !text.isEmpty() || request.logprobs() ? List.of(chunk(text, tokens, null)) : List.of();
        List<ObjectNode> out = deltaChunks(parser.feed(text), tokens);
        if (out.isEmpty() && request.logprobs() && !tokens.isEmpty()) out.add(deltaChunk(json.createObjectNode(), tokens, null));
        return out;
    }

    /** The last chunks: what the parser held back, then the one with finish_reason ({@code tool_calls} after calls). */
    List<ObjectNode> lastChunks(FinishReason reason) {
        if (parser == null) return List.of(chunk("", List.of(), reason));
        List<ObjectNode> out = deltaChunks(parser.finish(), List.of());
        out.add(deltaChunk(json.createObjectNode(), List.of(), output.finishReason(id, reason, parser.toolCalls())));
        return out;
    }

    private List<ObjectNode> deltaChunks(List<OutputDelta> deltas, List<GeneratedToken> tokens) {
        List<ObjectNode> out = new ArrayList<>();
        for (OutputDelta d : deltas) {
            List<GeneratedToken> lp = out.isEmpty() ? tokens : List.of();
            ObjectNode delta = json.createObjectNode();
            switch (d) {
                case OutputDelta.Reasoning r -> out.add(deltaChunk(delta.put("reasoning_content", r.text()), lp, null));
                case OutputDelta.Content c -> out.add(deltaChunk(delta.put("content", c.text()), lp, null));
                case OutputDelta.ToolCall t -> {
                    ObjectNode head = delta.putArray("tool_calls").addObject();
                    head.put("index", t.index()).put("id", t.id()).put("type", "function");
                    head.putObject("function").put("name", t.name()).put("arguments", "");
                    out.add(deltaChunk(delta, lp, null));
                    ObjectNode more = json.createObjectNode();
                    ObjectNode args = more.putArray("tool_calls").addObject();
                    args.put("index", t.index());
                    args.putObject("function").put("arguments", t.arguments());
                    out.add(deltaChunk(more, List.of(), null));
                }
            }
        }
        return out;
    }

    private ObjectNode deltaChunk(ObjectNode delta, List<GeneratedToken> tokens, String finishReason) {
        ObjectNode o = envelope(true);
        ObjectNode choice = o.putArray("choices").addObject();
        choice.put("index", 0);
        choice.set("delta", delta);
        logprobs(choice, tokens);
        choice.put("finish_reason", finishReason);
        if (request.includeUsage()) o.putNull("usage");
        return o;
    }

    /** The first chat chunk: the assistant's role. */
    ObjectNode roleChunk() {
        ObjectNode o = envelope(true);
        ObjectNode choice = o.putArray("choices").addObject();
        choice.put("index", 0);
        choice.putObject("delta").put("role", "assistant").put("content", "");
        choice.putNull("logprobs");
        choice.putNull("finish_reason");
        if (request.includeUsage()) o.putNull("usage");
        return o;
    }

    /** A chunk of generated text (and the tokens behind it); {@code reason} non-null on the last one. */
    ObjectNode chunk(String text, List<GeneratedToken> tokens, FinishReason reason) {
        ObjectNode o = envelope(true);
        ObjectNode choice = o.putArray("choices").addObject();
        choice.put("index", 0);
        if (chat()) {
            ObjectNode delta = choice.putObject("delta");
            if (!text.isEmpty() || reason == null) delta.put("content", text);
        } else {
            choice.put("text", text);
        }
        logprobs(choice, tokens);
        if (reason == null) choice.putNull("finish_reason");
        else choice.put("finish_reason", reason.openAiName());
        if (request.includeUsage()) o.putNull("usage");
        return o;
    }

    /** The last streamed chunk when usage was asked for: no choices, the token counts. */
    ObjectNode usageChunk(int promptTokens, int completionTokens, int cachedTokens) {
        ObjectNode o = envelope(true);
        o.putArray("choices");
        usage(o, promptTokens, completionTokens, cachedTokens);
        return o;
    }

    /** The token counts; {@code prompt_tokens_details.cached_tokens}: prompt tokens that came from the prefix cache. */
    private void usage(ObjectNode o, int prompt, int completion, int cached) {
        ObjectNode u = o.putObject("usage");
        u.put("prompt_tokens", prompt);
        u.put("completion_tokens", completion);
        u.put("total_tokens", prompt + completion);
        u.putObject("prompt_tokens_details").put("cached_tokens", cached);
    }

    private void logprobs(ObjectNode choice, List<GeneratedToken> tokens) {
        if (!request.logprobs() || tokens.isEmpty()) {
            choice.putNull("logprobs");
            return;
        }
        ObjectNode lp = choice.putObject("logprobs");
        if (chat()) {
            ArrayNode content = lp.putArray("content");
            for (GeneratedToken t : tokens) {
                ObjectNode c = tokenEntry(content.addObject(), t.id(), t.logprob());
                ArrayNode top = c.putArray("top_logprobs");
                for (int k = 0; k < t.topIds().length; k++) tokenEntry(top.addObject(), t.topIds()[k], t.topLogprobs()[k]);
            }
        } else {
            ArrayNode strings = lp.putArray("tokens");
            ArrayNode values = lp.putArray("token_logprobs");
            ArrayNode tops = lp.putArray("top_logprobs");
            ArrayNode offsets = lp.putArray("text_offset");
            for (GeneratedToken t : tokens) {
                String s = tokenText(t.id());
                strings.add(s);
                values.add(t.logprob());
                ObjectNode top = tops.addObject();
                for (int k = 0; k < t.topIds().length; k++) top.put(tokenText(t.topIds()[k]), t.topLogprobs()[k]);
                offsets.add(textOffset);
                textOffset += s.codePointCount(0, s.length()); // characters, as OpenAI and vLLM count, not UTF-16 units
            }
        }
    }

    private ObjectNode tokenEntry(ObjectNode o, int id, float logprob) {
        o.put("token", tokenText(id));
        o.put("logprob", logprob);
        ArrayNode bytes = o.putArray("bytes");
        for (byte b : tokenizer.tokenBytes(id)) bytes.add(b & 0xFF);
        return o;
    }

    private String tokenText(int id) {
        return id < tokenizer.vocabSize() ? tokenizer.decode(new int[]{id}) : "";
    }
}
