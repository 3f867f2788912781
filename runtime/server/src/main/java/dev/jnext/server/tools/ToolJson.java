package dev.jnext.server.tools;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.IOException;

/** Strict JSON reading for tool calls: exactly one value, nothing after it, numbers kept exact. */
final class ToolJson {
    /** Floats as BigDecimal, so a model's {@code 0.1} or {@code 1e400} survives a round trip as it was written. */
    static final ObjectMapper MAPPER = JsonMapper.builder()
            .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    private ToolJson() {}

    /** The one JSON value of {@code text}, or null when it is not exactly one JSON value. */
    static JsonNode read(ObjectMapper mapper, String text) {
        try (JsonParser p = mapper.createParser(text)) {
            JsonNode node = mapper.readTree(p);
            if (node == null || p.nextToken() != null) return null;
            return node;
        } catch (JsonProcessingException e) {
            return null;
        } catch (IOException e) {
            return null;
        }
    }

    static JsonNode read(String text) {
        return read(MAPPER, text);
    }

    static String write(JsonNode node) {
        try {
            return MAPPER.writeValueAsString(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a JSON tree that cannot be written", e);
        }
    }
}
