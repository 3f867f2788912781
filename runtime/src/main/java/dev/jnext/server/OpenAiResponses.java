package dev.jnext.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jnext.engine.FinishReason;
import dev.jnext.engine.GeneratedToken;
import dev.jnext.tokenizer.QwenTokenizer;

import java.util.List;

/**
 * The JSON bodies of OpenAI's completion APIs for one request: the whole response, the streamed chunks, usage and
 * log-probabilities (chat's {@code content} list or the legacy {@code tokens / token_logprobs / top_logprobs /
 * text_offset} arrays).
 */
final class OpenAiResponses {
    private final ObjectMapper json;
    private final QwenTokenizer tokenizer;
    private final OpenAiRequest request;
    private final String id;
    private final long created;
    private final String model;
    private int textOffset; // completions' text_offset: characters (code points) of the token strings so far

    OpenAiResponses(ObjectMapper json, QwenTokenizer tokenizer, OpenAiRequest request, String id, long created, String model) {
        this.json = json;
        this.tokenizer = tokenizer;
        this.request = request;
        this.id = id;
        this.created = created;
        this.model = model;
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

    /** The whole non-streaming response. */
    ObjectNode complete(String text, List<GeneratedToken> tokens, FinishReason reason, int promptTokens) {
        ObjectNode o = envelope(false);
        ObjectNode choice = o.putArray("choices").addObject();
        choice.put("index", 0);
        if (chat()) {
            ObjectNode message = choice.putObject("message");
            message.put("role", "assistant");
            message.put("content", text);
        } else {
            choice.put("text", text);
        }
        logprobs(choice, tokens);
        choice.put("finish_reason", reason.openAiName());
        usage(o, promptTokens, tokens.size());
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
    ObjectNode usageChunk(int promptTokens, int completionTokens) {
        ObjectNode o = envelope(true);
        o.putArray("choices");
        usage(o, promptTokens, completionTokens);
        return o;
    }

    private void usage(ObjectNode o, int prompt, int completion) {
        ObjectNode u = o.putObject("usage");
        u.put("prompt_tokens", prompt);
        u.put("completion_tokens", completion);
        u.put("total_tokens", prompt + completion);
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
