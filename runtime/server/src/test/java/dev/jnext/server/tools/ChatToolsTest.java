package dev.jnext.server.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The request side: tool_choice semantics, the tool-call history made into what the templates read, value typing. */
class ChatToolsTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final String TOOLS = "\"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"a\"}}, "
            + "{\"type\": \"function\", \"function\": {\"name\": \"b\", \"parameters\": {\"type\": \"object\"}}}]";

    static ChatTools parse(String fields) throws Exception {
        return ChatTools.parse(JSON.readTree("{" + fields + "}"), JSON);
    }

    @Test
    void toolChoiceDecidesWhatIsOfferedAndParsed() throws Exception {
        ChatTools auto = parse(TOOLS);
        assertEquals(ChatTools.Choice.AUTO, auto.choice());
        assertEquals(2, auto.offered().size());
        assertEquals(List.of("a", "b"), List.copyOf(auto.callable().keySet()));
        assertTrue(auto.parallel());

        ChatTools none = parse(TOOLS + ", \"tool_choice\": \"none\"");
        assertNull(none.offered(), "tool_choice none: the template is not told about the tools");
        assertFalse(none.parsesCalls());
        assertTrue(none.callable().isEmpty());

        ChatTools required = parse(TOOLS + ", \"tool_choice\": \"required\", \"parallel_tool_calls\": false");
        assertEquals(2, required.offered().size());
        assertFalse(required.parallel());

        ChatTools named = parse(TOOLS + ", \"tool_choice\": {\"type\": \"function\", \"function\": {\"name\": \"b\"}}");
        assertEquals(1, named.offered().size());
        assertEquals(List.of("b"), List.copyOf(named.callable().keySet()));
        assertEquals("b", named.namedFunction());

        assertEquals(ChatTools.Choice.NONE, parse("\"tool_choice\": \"auto\"").choice(), "auto without tools: nothing to call");
        assertFalse(parse("").present());
        ToolRequestException e = assertThrows(ToolRequestException.class, () -> parse(TOOLS.replace("\"a\"", "\"b\"")));
        assertTrue(e.getMessage().contains("two tools are named"), e.getMessage());
    }

    @Test
    void pastCallsGetTheirArgumentsAsAMapping() throws Exception {
        JsonNode m = JSON.readTree("{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"c1\", \"type\": \"function\", "
                + "\"function\": {\"name\": \"a\", \"arguments\": \"{\\\"x\\\": [1, 2], \\\"y\\\": \\\"z\\\"}\"}}, "
                + "{\"function\": {\"name\": \"b\", \"arguments\": {\"k\": true}}}]}");
        @SuppressWarnings("unchecked")
        Map<String, Object> map = JSON.convertValue(m, LinkedHashMap.class);
        ChatHistory.normalize(m, map, "messages[1]", JSON);
        assertEquals("", map.get("content"), "the Qwen3 template tests '</think>' in content");
        List<?> calls = (List<?>) map.get("tool_calls");
        assertEquals(Map.of("id", "c1", "type", "function", "function", Map.of("name", "a", "arguments", Map.of("x", List.of(1, 2), "y", "z"))),
                calls.get(0));
        assertEquals(Map.of("type", "function", "function", Map.of("name", "b", "arguments", Map.of("k", true))), calls.get(1));

        JsonNode bad = JSON.readTree("{\"role\": \"assistant\", \"tool_calls\": [{\"function\": {\"name\": \"a\", \"arguments\": \"{} x\"}}]}");
        @SuppressWarnings("unchecked")
        Map<String, Object> badMap = JSON.convertValue(bad, LinkedHashMap.class);
        ToolRequestException e = assertThrows(ToolRequestException.class, () -> ChatHistory.normalize(bad, badMap, "messages[0]", JSON));
        assertEquals("messages[0].tool_calls[0].function.arguments", e.param());

        JsonNode user = JSON.readTree("{\"role\": \"user\", \"content\": \"x\", \"tool_calls\": []}");
        assertThrows(ToolRequestException.class, () -> ChatHistory.normalize(user, new LinkedHashMap<>(Map.of("role", "user")), "messages[0]", JSON));
    }

    @Test
    void xmlValuesAreTypedByTheirSchema() throws Exception {
        assertEquals(JSON.readTree("\"42\""), ToolCallBodies.typed("42", JSON.readTree("{\"type\": \"string\"}")));
        assertEquals(JSON.readTree("42"), ToolCallBodies.typed("42", JSON.readTree("{\"type\": [\"string\", \"integer\"]}")));
        assertEquals(JSON.readTree("\"4.5\""), ToolCallBodies.typed("4.5", JSON.readTree("{\"type\": \"integer\"}")));
        JsonNode number = ToolCallBodies.typed(" 4.5 ", JSON.readTree("{\"type\": \"number\"}"));
        assertTrue(number.isNumber() && number.decimalValue().compareTo(new java.math.BigDecimal("4.5")) == 0, number.toString());
        assertEquals(JSON.readTree("false"), ToolCallBodies.typed("False", JSON.readTree("{\"type\": \"boolean\"}")));
        assertEquals(JSON.readTree("null"), ToolCallBodies.typed("None", JSON.readTree("{\"anyOf\": [{\"type\": \"integer\"}, {\"type\": \"null\"}]}")));
        assertEquals(JSON.readTree("\"None\""), ToolCallBodies.typed("None", JSON.readTree("{\"type\": \"string\"}")));
        assertEquals(JSON.readTree("\"[1,\""), ToolCallBodies.typed("[1,", JSON.readTree("{\"type\": \"array\"}")));
        assertEquals(JSON.readTree("{\"a\": 1}"), ToolCallBodies.typed("{\"a\": 1}", JSON.readTree("{\"type\": \"object\"}")));
        assertEquals(JSON.readTree("\"{\\\"a\\\": 1}\""), ToolCallBodies.typed("{\"a\": 1}", null), "no schema: a string");
    }
}
