package dev.jnext.server;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jnext.JnextException;
import dev.jnext.engine.GenerationConfig;
import dev.jnext.engine.GenerationRequest;
import dev.jnext.engine.ResponseFormat;
import dev.jnext.backend.SamplingParams;
import dev.jnext.server.tools.ChatHistory;
import dev.jnext.server.tools.ChatTools;
import dev.jnext.server.tools.ToolRequestException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

/**
 * An OpenAI {@code /v1/chat/completions} or {@code /v1/completions} request body, checked field by field: every field
 * of the wrong type or out of range is an {@link ApiError} (400) naming it. Fields jnext does not use (user, metadata,
 * ...) are ignored; fields that would change the output and that jnext cannot honour (n > 1, frequency_penalty,
 * echo, suffix, a JSON schema outside the supported subset) are refused rather than ignored. {@code response_format}
 * {@code json_object} and {@code json_schema} are enforced by constrained decoding ({@link ResponseFormat}).
 *
 * @param logprobs     report log-probabilities (chat {@code logprobs: true}; completions {@code logprobs: n})
 * @param includeUsage streaming: send a last chunk with {@code usage}
 * @param tools        chat: tools, tool_choice and parallel_tool_calls ({@link ChatTools#ABSENT} for completions)
 */
public record OpenAiRequest(Endpoint endpoint, String model, GenerationRequest generation, boolean stream,
                            boolean includeUsage, boolean logprobs, ChatTools tools) {

    public enum Endpoint {
        CHAT("/v1/chat/completions"), COMPLETIONS("/v1/completions");

        public final String path;

        Endpoint(String path) {
            this.path = path;
        }
    }

    /** Most stop strings per request, and longest one. */
    static final int MAX_STOPS = 16;
    static final int MAX_STOP_LENGTH = 1000;
    static final int MAX_NESTING = 64;

    private static final ObjectMapper JSON = new ObjectMapper(JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(MAX_NESTING).build())
            .enable(com.fasterxml.jackson.core.StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build());

    /** The request field a {@link SamplingParams} check is about, from its message ("top-p must be ..." → top_p). */
    static String samplingField(String message) {
        if (message == null) return null;
        for (String[] m : new String[][]{{"temperature", "temperature"}, {"top-k", "top_k"}, {"top-p", "top_p"},
                {"min-p", "min_p"}, {"repetition penalty", "repetition_penalty"}, {"presence penalty", "presence_penalty"}}) {
            if (message.startsWith(m[0])) return m[1];
        }
        return null;
    }

    /**
     * Checks that the body is well-formed UTF-8, strictly: no overlong forms (C0 AF for '/'), no encoded surrogates
     * (ED A0 80), no truncated or stray bytes. Jackson alone lets some of these through; a 400 names the first bad
     * byte's offset.
     */
    static void checkUtf8(byte[] body) {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(body);
        CharBuffer out = CharBuffer.allocate(4096);
        while (true) {
            CoderResult r = decoder.decode(in, out, true);
            if (r.isError()) {
                int at = in.position();
                StringBuilder bytes = new StringBuilder();
                for (int i = at; i < Math.min(body.length, at + Math.max(r.length(), 1)); i++) {
                    bytes.append(bytes.isEmpty() ? "" : " ").append(String.format("%02X", body[i] & 0xFF));
                }
                throw ApiError.badRequest(null, "the request body is not valid UTF-8: "
                        + (r.isMalformed() ? "malformed" : "unmappable") + " bytes " + bytes + " at offset " + at
                        + " (overlong forms, encoded surrogates and truncated sequences are refused)");
            }
            if (r.isOverflow()) {
                out.clear();
                continue;
            }
            break;
        }
        CoderResult end = decoder.flush(out.clear());
        if (end.isError()) throw ApiError.badRequest(null, "the request body is not valid UTF-8: it ends inside a character");
    }

    /** Reads the body; a body that is not strict UTF-8 or not one JSON object is a 400. */
    static JsonNode readJson(byte[] body) {
        if (body.length == 0) throw ApiError.badRequest(null, "the request body is empty; expected a JSON object");
        checkUtf8(body);
        JsonNode root;
        try (JsonParser p = JSON.createParser(body)) {
            root = JSON.readTree(p);
            if (p.nextToken() != null) throw ApiError.badRequest(null, "the request body holds more than one JSON value");
        } catch (JsonProcessingException e) {
            throw ApiError.badRequest(null, "the request body is not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw ApiError.badRequest(null, "the request body cannot be read: " + e.getMessage());
        }
        if (root == null || !root.isObject()) {
            throw ApiError.badRequest(null, "the request body must be a JSON object, got " + kind(root));
        }
        return root;
    }

    /**
     * Parses a request for {@code endpoint}.
     *
     * @param defaultMaxTokens chat requests without max_tokens (completions default to OpenAI's 16)
     */
    public static OpenAiRequest parse(byte[] body, Endpoint endpoint, GenerationConfig defaults, int defaultMaxTokens) {
        JsonNode root = readJson(body);
        String model = string(root, "model", true);
        boolean stream = bool(root, "stream", false);
        boolean includeUsage = false;
        JsonNode so = root.get("stream_options");
        if (so != null && !so.isNull()) {
            if (!so.isObject()) throw ApiError.badRequest("stream_options", "stream_options must be an object, got " + kind(so));
            includeUsage = bool(so, "include_usage", false, "stream_options.include_usage");
        }

        Integer n = integer(root, "n", 1, 1);
        if (n != null && n != 1) throw ApiError.badRequest("n", "only n = 1 is supported, got " + n);
        Double frequency = number(root, "frequency_penalty", -2, 2);
        if (frequency != null && frequency != 0) {
            throw ApiError.badRequest("frequency_penalty", "frequency_penalty is not supported (use presence_penalty or repetition_penalty)");
        }
        ResponseFormat responseFormat = responseFormat(root.get("response_format"));

        GenerationRequest.Prompt prompt;
        int maxTokens;
        int topLogprobs = 0;
        boolean logprobs;
        ChatTools tools = ChatTools.ABSENT;
        if (endpoint == Endpoint.CHAT) {
            tools = toolRequest(() -> ChatTools.parse(root, JSON));
            if (responseFormat.constrains() && (tools.choice() == ChatTools.Choice.REQUIRED || tools.choice() == ChatTools.Choice.NAMED)) {
                throw ApiError.badRequest("tool_choice", "tool_choice " + (tools.choice() == ChatTools.Choice.NAMED ? "naming a function" : "required")
                        + " cannot be combined with a JSON response_format: the answer must be the JSON document, not a tool call");
            }
            prompt = chatPrompt(root, tools);
            Integer mt = integer(root, "max_completion_tokens", 1, Integer.MAX_VALUE);
            if (mt == null) mt = integer(root, "max_tokens", 1, Integer.MAX_VALUE);
            maxTokens = mt != null ? mt : defaultMaxTokens;
            logprobs = bool(root, "logprobs", false);
            Integer top = integer(root, "top_logprobs", 0, GenerationRequest.MAX_TOP_LOGPROBS);
            if (top != null) {
                if (!logprobs && top > 0) throw ApiError.badRequest("top_logprobs", "top_logprobs needs logprobs: true");
                topLogprobs = top;
            }
        } else {
            prompt = completionPrompt(root);
            Integer mt = integer(root, "max_tokens", 1, Integer.MAX_VALUE);
            maxTokens = mt != null ? mt : 16;
            Integer lp = integer(root, "logprobs", 0, GenerationRequest.MAX_TOP_LOGPROBS);
            logprobs = lp != null;
            topLogprobs = lp != null ? lp : 0;
            if (bool(root, "echo", false)) throw ApiError.badRequest("echo", "echo is not supported");
            if (root.hasNonNull("suffix")) throw ApiError.badRequest("suffix", "suffix is not supported");
            Integer bestOf = integer(root, "best_of", 1, Integer.MAX_VALUE);
            if (bestOf != null && bestOf != 1) throw ApiError.badRequest("best_of", "only best_of = 1 is supported");
        }

        Double temperature = number(root, "temperature", 0, 2);
        Double topP = number(root, "top_p", Double.MIN_VALUE, 1);
        Integer topK = integer(root, "top_k", -1, Integer.MAX_VALUE);
        Double minP = number(root, "min_p", 0, 0.999999);
        Double repetition = number(root, "repetition_penalty", Double.MIN_VALUE, 100);
        Double presence = number(root, "presence_penalty", -2, 2);
        Long seed = int64(root, "seed");
        SamplingParams sampling;
        try {
            sampling = defaults.sampling(f(temperature), topK == null ? null : Math.max(0, topK), f(topP), f(minP),
                    f(repetition), f(presence), seed != null ? seed : ThreadLocalRandom.current().nextLong());
        } catch (JnextException e) { // a value the checks above let through (they should not): still name the field
            throw ApiError.badRequest(samplingField(e.getMessage()), e.getMessage());
        }

        boolean ignoreEos = bool(root, "ignore_eos", false);
        if (ignoreEos && responseFormat.constrains()) {
            throw ApiError.badRequest("ignore_eos", "ignore_eos cannot be combined with a JSON response_format: the answer ends "
                    + "with the end-of-sequence token once the document is whole");
        }
        GenerationRequest.Builder b = GenerationRequest.of(prompt).sampling(sampling).maxTokens(maxTokens)
                .stop(stops(root)).ignoreEos(ignoreEos).topLogprobs(topLogprobs).responseFormat(responseFormat);
        JsonNode ids = root.get("stop_token_ids");
        if (ids != null && !ids.isNull()) {
            if (!ids.isArray()) throw ApiError.badRequest("stop_token_ids", "stop_token_ids must be an array of integers");
            for (JsonNode id : ids) {
                if (!id.canConvertToInt() || !id.isIntegralNumber() || id.asInt() < 0) {
                    throw ApiError.badRequest("stop_token_ids", "stop_token_ids must hold non-negative integers, got " + id);
                }
                b.stopTokenIds(id.asInt());
            }
        }
        return new OpenAiRequest(endpoint, model, b.build(), stream, includeUsage, logprobs, tools);
    }

    /**
     * {@code response_format}: absent, null or {@code {"type": "text"}} is free text; {@code {"type": "json_object"}} any
     * JSON object; {@code {"type": "json_schema", "json_schema": {"name", "schema", "strict", "description"}}} a document
     * of the schema, which must be of the supported subset (else a 400 naming the keyword and where it is).
     */
    static ResponseFormat responseFormat(JsonNode format) {
        if (format == null || format.isNull()) return ResponseFormat.TEXT;
        if (!format.isObject()) throw ApiError.badRequest("response_format", "response_format must be an object, got " + kind(format));
        JsonNode type = format.get("type");
        if (type == null || !type.isTextual()) {
            throw ApiError.badRequest("response_format.type", "response_format.type must be text, json_object or json_schema");
        }
        switch (type.asText()) {
            case "text" -> {
                return ResponseFormat.TEXT;
            }
            case "json_object" -> {
                return ResponseFormat.jsonObject();
            }
            case "json_schema" -> {
                JsonNode js = format.get("json_schema");
                if (js == null || !js.isObject()) {
                    throw ApiError.badRequest("response_format.json_schema", "response_format.json_schema must be an object "
                            + "{\"name\", \"schema\", \"strict\"}, got " + kind(js));
                }
                String name = string(js, "name", false, "response_format.json_schema.name");
                boolean strict = bool(js, "strict", false, "response_format.json_schema.strict");
                JsonNode schema = js.get("schema");
                if (schema == null || schema.isNull()) {
                    throw ApiError.badRequest("response_format.json_schema.schema", "response_format.json_schema.schema is required");
                }
                if (!schema.isObject() && !schema.isBoolean()) {
                    throw ApiError.badRequest("response_format.json_schema.schema", "response_format.json_schema.schema must be "
                            + "a JSON schema (an object), got " + kind(schema));
                }
                try {
                    return new ResponseFormat.JsonSchema(name, JSON.writeValueAsString(schema), strict, null);
                } catch (JnextException e) {
                    throw ApiError.badRequest("response_format.json_schema.schema", "response_format.json_schema.schema: " + e.getMessage());
                } catch (JsonProcessingException e) {
                    throw ApiError.badRequest("response_format.json_schema.schema", "response_format.json_schema.schema cannot be read");
                }
            }
            default -> throw ApiError.badRequest("response_format.type", "response_format.type must be text, json_object or "
                    + "json_schema, got \"" + type.asText() + "\"");
        }
    }

    /** Tool fields (issue 18) are checked in {@link dev.jnext.server.tools}; a fault there is a 400 naming the field. */
    private static <T> T toolRequest(java.util.function.Supplier<T> check) {
        try {
            return check.get();
        } catch (ToolRequestException e) {
            throw ApiError.badRequest(e.param(), e.getMessage());
        }
    }

    private static GenerationRequest.Prompt chatPrompt(JsonNode root, ChatTools chatTools) {
        JsonNode messages = root.get("messages");
        if (messages == null || messages.isNull()) throw ApiError.badRequest("messages", "messages is required");
        if (!messages.isArray()) throw ApiError.badRequest("messages", "messages must be an array, got " + kind(messages));
        if (messages.isEmpty()) throw ApiError.badRequest("messages", "messages must hold at least one message");
        List<Map<String, Object>> out = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            JsonNode m = messages.get(i);
            String where = "messages[" + i + "]";
            if (!m.isObject()) throw ApiError.badRequest(where, where + " must be an object, got " + kind(m));
            JsonNode role = m.get("role");
            if (role == null || !role.isTextual()) throw ApiError.badRequest(where + ".role", where + ".role must be a string");
            String r = role.asText();
            if (!List.of("system", "developer", "user", "assistant", "tool").contains(r)) {
                throw ApiError.badRequest(where + ".role", where + ".role must be system, developer, user, assistant or tool, got \"" + r + "\"");
            }
            @SuppressWarnings("unchecked")
            Map<String, Object> map = JSON.convertValue(m, LinkedHashMap.class);
            map.put("role", r.equals("developer") ? "system" : r);
            JsonNode content = m.get("content");
            if (content == null || content.isNull()) {
                if (!r.equals("assistant")) throw ApiError.badRequest(where + ".content", where + ".content is required");
                map.put("content", null);
            } else if (content.isTextual()) {
                map.put("content", content.asText());
            } else if (content.isArray()) {
                StringBuilder text = new StringBuilder();
                for (int j = 0; j < content.size(); j++) {
                    JsonNode part = content.get(j);
                    String pw = where + ".content[" + j + "]";
                    if (!part.isObject() || !"text".equals(part.path("type").asText(null)) || !part.path("text").isTextual()) {
                        throw ApiError.badRequest(pw, pw + " must be {\"type\": \"text\", \"text\": \"...\"}: only text content is supported");
                    }
                    text.append(part.get("text").asText());
                }
                map.put("content", text.toString());
            } else {
                throw ApiError.badRequest(where + ".content", where + ".content must be a string or an array of text parts, got " + kind(content));
            }
            toolRequest(() -> {
                ChatHistory.normalize(m, map, where, JSON); // tool_calls' arguments as maps, for the templates
                return null;
            });
            out.add(map);
        }
        List<Object> tools = chatTools.offered(); // none for tool_choice none, the one named
        Map<String, Object> variables = new LinkedHashMap<>();
        JsonNode kwargs = root.get("chat_template_kwargs");
        if (kwargs != null && !kwargs.isNull()) {
            if (!kwargs.isObject()) throw ApiError.badRequest("chat_template_kwargs", "chat_template_kwargs must be an object, got " + kind(kwargs));
            kwargs.properties().forEach(e -> {
                if (!e.getValue().isNull()) variables.put(e.getKey(), JSON.convertValue(e.getValue(), Object.class));
            });
            for (String reserved : List.of("messages", "tools", "add_generation_prompt")) {
                if (variables.containsKey(reserved)) {
                    throw ApiError.badRequest("chat_template_kwargs", "chat_template_kwargs cannot set " + reserved);
                }
            }
        }
        return new GenerationRequest.Prompt.Chat(out, tools, variables);
    }

    private static GenerationRequest.Prompt completionPrompt(JsonNode root) {
        JsonNode p = root.get("prompt");
        if (p == null || p.isNull()) throw ApiError.badRequest("prompt", "prompt is required");
        if (p.isTextual()) return new GenerationRequest.Prompt.Text(p.asText());
        if (p.isArray()) {
            if (p.size() == 1 && (p.get(0).isTextual() || p.get(0).isArray())) return completionPromptItem(p.get(0));
            if (!p.isEmpty() && p.get(0).isIntegralNumber()) return completionPromptItem(p);
            if (p.size() > 1) throw ApiError.badRequest("prompt", "only one prompt per request is supported");
        }
        throw ApiError.badRequest("prompt", "prompt must be a string or an array of token ids, got " + kind(p));
    }

    private static GenerationRequest.Prompt completionPromptItem(JsonNode item) {
        if (item.isTextual()) return new GenerationRequest.Prompt.Text(item.asText());
        int[] ids = new int[item.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode id = item.get(i);
            if (!id.isIntegralNumber() || !id.canConvertToInt() || id.asInt() < 0) {
                throw ApiError.badRequest("prompt", "prompt token ids must be non-negative integers, got " + id + " at " + i);
            }
            ids[i] = id.asInt();
        }
        return new GenerationRequest.Prompt.Tokens(ids);
    }

    private static List<String> stops(JsonNode root) {
        JsonNode s = root.get("stop");
        if (s == null || s.isNull()) return List.of();
        List<String> out = new ArrayList<>();
        if (s.isTextual()) out.add(s.asText());
        else if (s.isArray()) {
            for (JsonNode x : s) {
                if (!x.isTextual()) throw ApiError.badRequest("stop", "stop must be a string or an array of strings, got " + kind(x) + " inside");
                out.add(x.asText());
            }
        } else {
            throw ApiError.badRequest("stop", "stop must be a string or an array of strings, got " + kind(s));
        }
        if (out.size() > MAX_STOPS) throw ApiError.badRequest("stop", "at most " + MAX_STOPS + " stop strings, got " + out.size());
        for (String x : out) {
            if (x.isEmpty()) throw ApiError.badRequest("stop", "stop strings must not be empty");
            if (x.length() > MAX_STOP_LENGTH) throw ApiError.badRequest("stop", "stop strings are at most " + MAX_STOP_LENGTH + " characters");
        }
        return out;
    }

    // ---- typed fields ----

    private static Float f(Double d) {
        return d == null ? null : d.floatValue();
    }

    private static String string(JsonNode o, String field, boolean required) {
        return string(o, field, required, field);
    }

    private static String string(JsonNode o, String field, boolean required, String name) {
        JsonNode v = o.get(field);
        if (v == null || v.isNull()) {
            if (required) throw ApiError.badRequest(name, name + " is required");
            return null;
        }
        if (!v.isTextual()) throw ApiError.badRequest(name, name + " must be a string, got " + kind(v));
        return v.asText();
    }

    private static boolean bool(JsonNode o, String field, boolean dflt) {
        return bool(o, field, dflt, field);
    }

    private static boolean bool(JsonNode o, String field, boolean dflt, String name) {
        JsonNode v = o.get(field);
        if (v == null || v.isNull()) return dflt;
        if (!v.isBoolean()) throw ApiError.badRequest(name, name + " must be true or false, got " + kind(v));
        return v.asBoolean();
    }

    private static Integer integer(JsonNode o, String field, int min, int max) {
        JsonNode v = o.get(field);
        if (v == null || v.isNull()) return null;
        if (!v.isIntegralNumber() || !v.canConvertToInt()) {
            throw ApiError.badRequest(field, field + " must be an integer in " + min + ".." + max + ", got " + brief(v));
        }
        int i = v.asInt();
        if (i < min || i > max) throw ApiError.badRequest(field, field + " must be in " + min + ".." + max + ", got " + i);
        return i;
    }

    private static Long int64(JsonNode o, String field) {
        JsonNode v = o.get(field);
        if (v == null || v.isNull()) return null;
        if (!v.isIntegralNumber() || !v.canConvertToLong()) throw ApiError.badRequest(field, field + " must be a 64-bit integer, got " + brief(v));
        return v.asLong();
    }

    /**
     * A number field in [min, max]; min {@link Double#MIN_VALUE} means "above 0". The engine takes it as a float, so
     * the check is of the float it becomes: {@code 1e-300} for top_p is 0 as a float, and refused naming top_p.
     */
    private static Double number(JsonNode o, String field, double min, double max) {
        JsonNode v = o.get(field);
        if (v == null || v.isNull()) return null;
        if (!v.isNumber()) throw ApiError.badRequest(field, field + " must be a number, got " + brief(v));
        double d = v.asDouble();
        float asFloat = (float) d;
        boolean exclusiveZero = min == Double.MIN_VALUE;
        boolean ok = Double.isFinite(d) && Float.isFinite(asFloat) && d >= min && d <= max
                && (exclusiveZero ? asFloat > 0 : asFloat >= (float) min) && asFloat <= (float) max;
        if (!ok) {
            throw ApiError.badRequest(field, field + " must be in [" + (exclusiveZero ? "0 (exclusive)" : fmt(min)) + ", " + fmt(max) + "]"
                    + (Double.isFinite(d) && d >= min && d <= max ? " at 32-bit float precision" : "") + ", got " + brief(v));
        }
        return d;
    }

    private static String fmt(double d) {
        return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
    }

    private static String brief(JsonNode v) {
        String s = v.toString();
        return s.length() > 40 ? s.substring(0, 40) + "..." : s;
    }

    static String kind(JsonNode v) {
        return ChatTools.kind(v);
    }
}
