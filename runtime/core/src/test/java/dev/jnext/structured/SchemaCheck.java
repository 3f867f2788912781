package dev.jnext.structured;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * An independent check of a JSON value against a schema of the supported subset (type, properties, required,
 * additionalProperties, items, minItems, maxItems, enum, const, $ref into $defs/definitions), written from the JSON
 * Schema specification rather than from the automaton, for the tests: it returns the violations it finds (empty: valid).
 */
public final class SchemaCheck {
    private static final ObjectMapper JSON = new ObjectMapper();

    private SchemaCheck() {}

    /** Violations of {@code schema} (JSON text) by {@code document} (JSON text); not JSON or a key twice in an object is one. */
    public static List<String> violations(String schema, String document) {
        return violations(schema, document, true);
    }

    /** Violations, optionally letting a key appear twice in an object (JSON allows it; the last one counts). */
    public static List<String> violations(String schema, String document, boolean uniqueKeys) {
        JsonNode s, d;
        try {
            s = JSON.readTree(schema);
        } catch (Exception e) {
            throw new IllegalArgumentException(e);
        }
        try {
            ObjectMapper m = new ObjectMapper();
            if (uniqueKeys) m.enable(com.fasterxml.jackson.core.JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
            d = m.enable(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS).readTree(document);
        } catch (Exception e) {
            return List.of("not JSON: " + e.getMessage());
        }
        List<String> out = new ArrayList<>();
        check(s, s, d, "", out);
        return out;
    }

    private static void check(JsonNode root, JsonNode s, JsonNode v, String at, List<String> out) {
        if (s.isBoolean()) {
            if (!s.asBoolean()) out.add(at + ": false schema");
            return;
        }
        if (s.has("$ref")) {
            String ref = s.get("$ref").asText();
            String[] parts = ref.substring(2).split("/");
            check(root, root.get(parts[0]).get(parts[1]), v, at, out);
            return;
        }
        if (s.has("type")) {
            Set<String> types = new HashSet<>();
            if (s.get("type").isArray()) s.get("type").forEach(t -> types.add(t.asText()));
            else types.add(s.get("type").asText());
            boolean ok = v.isObject() && types.contains("object") || v.isArray() && types.contains("array")
                    || v.isTextual() && types.contains("string") || v.isNumber() && types.contains("number")
                    || v.isBoolean() && types.contains("boolean") || v.isNull() && types.contains("null")
                    || v.isNumber() && types.contains("integer") && v.decimalValue().stripTrailingZeros().scale() <= 0;
            if (!ok) out.add(at + ": " + v.getNodeType() + " is not of type " + types);
        }
        if (s.has("const") && !equal(s.get("const"), v)) out.add(at + ": not the const " + s.get("const"));
        if (s.has("enum")) {
            boolean any = false;
            for (JsonNode e : s.get("enum")) any |= equal(e, v);
            if (!any) out.add(at + ": " + v + " not in the enum " + s.get("enum"));
        }
        if (v.isObject()) {
            JsonNode props = s.get("properties");
            if (s.has("required")) {
                for (JsonNode r : s.get("required")) if (!v.has(r.asText())) out.add(at + ": required " + r.asText() + " missing");
            }
            JsonNode additional = s.get("additionalProperties");
            v.properties().forEach(e -> {
                String k = e.getKey();
                if (props != null && props.has(k)) check(root, props.get(k), e.getValue(), at + "/" + k, out);
                else if (additional != null && additional.isBoolean() && !additional.asBoolean()) out.add(at + ": additional property " + k);
                else if (additional != null && additional.isObject()) check(root, additional, e.getValue(), at + "/" + k, out);
            });
        }
        if (v.isArray()) {
            if (s.has("minItems") && v.size() < s.get("minItems").asInt()) out.add(at + ": fewer than minItems");
            if (s.has("maxItems") && v.size() > s.get("maxItems").asInt()) out.add(at + ": more than maxItems");
            if (s.has("items")) for (int i = 0; i < v.size(); i++) check(root, s.get("items"), v.get(i), at + "/" + i, out);
        }
    }

    private static boolean equal(JsonNode a, JsonNode b) {
        if (a.isNumber() && b.isNumber()) return a.decimalValue().compareTo(b.decimalValue()) == 0;
        return a.equals(b);
    }
}
