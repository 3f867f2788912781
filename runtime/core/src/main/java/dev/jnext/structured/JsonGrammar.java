package dev.jnext.structured;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jnext.JnextException;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What a JSON document may be, compiled into the nodes {@link JsonAutomaton} walks: either any JSON object
 * ({@link #anyObject()}, OpenAI's {@code json_object}) or a JSON schema of the supported subset ({@link #compile}).
 *
 * <p>The subset: {@code type} (one of {@code object}, {@code array}, {@code string}, {@code number}, {@code integer},
 * {@code boolean}, {@code null}, or an array of them), {@code properties}, {@code required}, {@code
 * additionalProperties} ({@code false}, {@code true} or a schema; absent means {@code false} when {@code properties} is
 * given and {@code true} otherwise), {@code items} (one schema), {@code minItems} / {@code maxItems} (up to {@value
 * #MAX_ITEMS_BOUND}), {@code enum} / {@code const} of strings, numbers, booleans and null, local {@code $ref}s into
 * {@code $defs} / {@code definitions} (not recursive), and the annotations {@code title}, {@code description}, {@code
 * default}, {@code examples}, {@code $schema}, {@code $id}, {@code $comment}, {@code deprecated}, {@code readOnly},
 * {@code writeOnly} (ignored). Anything else is refused with an {@link UnsupportedSchemaException} naming the keyword
 * and where it is, rather than ignored: an ignored keyword would let the model write documents the schema rejects.
 *
 * <p>Every node is satisfiable (an empty enum, a {@code false} schema or a required property that cannot be written is
 * refused), so every prefix the automaton accepts can be completed. Immutable and thread-safe.
 */
public final class JsonGrammar {
    static final int T_OBJECT = 1, T_ARRAY = 2, T_STRING = 4, T_NUMBER = 8, T_INTEGER = 16, T_BOOLEAN = 32, T_NULL = 64;
    static final int T_ALL = 127;
    /** Containers (objects and arrays) one inside the other, at most. */
    public static final int MAX_NESTING = 32;
    /** Properties one object schema may list (a bit each in the automaton's state). */
    public static final int MAX_PROPERTIES = 63;
    /** Largest minItems / maxItems. */
    public static final int MAX_ITEMS_BOUND = 256;
    /** Most nodes a schema may compile to ($refs are inlined). */
    public static final int MAX_NODES = 1 << 16;
    /** Longest schema text, in characters. */
    public static final int MAX_SCHEMA_CHARS = 1 << 20;
    /** Index of the node that allows any JSON value. */
    static final int ANY = 0;

    private static final ObjectMapper JSON = new ObjectMapper(JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder().maxNestingDepth(256).build())
            .enable(com.fasterxml.jackson.core.StreamReadFeature.STRICT_DUPLICATE_DETECTION).build());
    private static final Set<String> ANNOTATIONS = Set.of("title", "description", "default", "examples", "$schema", "$id",
            "$comment", "deprecated", "readOnly", "writeOnly");
    private static final Set<String> SUPPORTED = Set.of("type", "properties", "required", "additionalProperties", "items",
            "minItems", "maxItems", "enum", "const", "$ref", "$defs", "definitions");
    /** The supported keywords, for messages. */
    public static final String SUBSET = "type, properties, required, additionalProperties, items, minItems, maxItems, "
            + "enum, const, $ref (to $defs or definitions, not recursive) and the annotations title, description, "
            + "default, examples, $schema, $id, $comment, deprecated, readOnly, writeOnly";

    /** One schema node; object fields only matter with {@link #T_OBJECT}, array fields with {@link #T_ARRAY}. */
    static final class Node {
        int types;
        /** enum/const literals (then {@link #isEnum}) or the words true/false/null of the types; null for none. */
        ByteTrie literals;
        boolean isEnum;
        // object
        ByteTrie keys;           // property names, JSON-encoded without the opening quote (closing quote included)
        int[] propertyNodes = new int[0];
        long listed;             // a bit per property
        long required;
        int additional = ANY;    // node of other properties' values, −1: none allowed
        // array
        int items = ANY;
        int minItems;
        int maxItems = -1;       // −1: no bound

        /** Whether an object may take one more key, having seen {@code seen}. */
        boolean canTakeKey(long seen) {
            return additional >= 0 || (listed & ~seen) != 0;
        }

        /** The item count the automaton needs to tell apart: counts past it behave alike. */
        int countBound() {
            return Math.max(minItems, maxItems);
        }
    }

    final Node[] nodes;
    final int root;
    private final String description;

    private JsonGrammar(Node[] nodes, int root, String description) {
        this.nodes = nodes;
        this.root = root;
        this.description = description;
    }

    private static final JsonGrammar ANY_OBJECT;

    static {
        List<Node> nodes = new ArrayList<>();
        nodes.add(anyNode());
        Node object = new Node();
        object.types = T_OBJECT;
        nodes.add(object);
        ANY_OBJECT = new JsonGrammar(nodes.toArray(Node[]::new), 1, "any JSON object");
    }

    private static Node anyNode() {
        Node any = new Node();
        any.types = T_ALL;
        any.literals = keywords(T_ALL);
        return any;
    }

    /** Any JSON object (OpenAI's {@code response_format: {"type": "json_object"}}). */
    public static JsonGrammar anyObject() {
        return ANY_OBJECT;
    }

    @Override
    public String toString() {
        return description;
    }

    // ---- compiling a schema ----

    private static final int CACHE = 64;
    private static final int CACHED_SCHEMA_CHARS = 64 << 10;
    private static final Map<String, JsonGrammar> compiled = new LinkedHashMap<>(CACHE, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, JsonGrammar> eldest) {
            return size() > CACHE;
        }
    };

    /**
     * Compiles a JSON schema given as JSON text (the last {@value #CACHE} compiled of up to 64 Ki characters are
     * remembered, so a schema sent again is the same grammar and shares its cached token masks).
     *
     * @throws UnsupportedSchemaException for a keyword outside the subset, naming it and where it is
     * @throws JnextException             for a schema that is not JSON, not a schema, or cannot be satisfied
     */
    public static JsonGrammar compile(String schema) {
        if (schema.length() > MAX_SCHEMA_CHARS) {
            throw new JnextException("the JSON schema has " + schema.length() + " characters; at most " + MAX_SCHEMA_CHARS);
        }
        synchronized (compiled) {
            JsonGrammar g = compiled.get(schema);
            if (g != null) return g;
        }
        JsonNode tree;
        try {
            tree = JSON.readTree(schema);
        } catch (JsonProcessingException e) {
            throw new JnextException("the JSON schema is not valid JSON: " + e.getOriginalMessage());
        }
        if (tree == null || tree.isMissingNode()) throw new JnextException("the JSON schema is empty");
        JsonGrammar g = new Compiler(tree).compile();
        if (schema.length() <= CACHED_SCHEMA_CHARS) {
            synchronized (compiled) {
                compiled.put(schema, g);
            }
        }
        return g;
    }

    private static ByteTrie keywords(int types) {
        List<byte[]> words = new ArrayList<>();
        if ((types & T_BOOLEAN) != 0) {
            words.add(bytes("true"));
            words.add(bytes("false"));
        }
        if ((types & T_NULL) != 0) words.add(bytes("null"));
        return words.isEmpty() ? null : ByteTrie.of(words);
    }

    private static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    private static final class Compiler {
        private final JsonNode rootSchema;
        private final List<Node> nodes = new ArrayList<>();
        private final Set<String> resolving = new HashSet<>();

        Compiler(JsonNode rootSchema) {
            this.rootSchema = rootSchema;
            nodes.add(anyNode());
        }

        JsonGrammar compile() {
            int root = node(rootSchema, "", 0);
            return new JsonGrammar(nodes.toArray(Node[]::new), root, "a JSON schema");
        }

        /** Compiles the schema at {@code path} ({@code depth} containers deep) and returns its node index. */
        private int node(JsonNode s, String path, int depth) {
            String where = path.isEmpty() ? "at the root" : "at " + path;
            if (s.isBoolean()) {
                if (s.asBoolean()) return ANY;
                throw new JnextException("the JSON schema " + where + " is false: no value satisfies it");
            }
            if (!s.isObject()) throw new JnextException("the JSON schema " + where + " must be an object or a boolean, got " + kind(s));
            for (Iterator<String> it = s.fieldNames(); it.hasNext(); ) {
                String k = it.next();
                if (!SUPPORTED.contains(k) && !ANNOTATIONS.contains(k)) {
                    throw new UnsupportedSchemaException(k, path.isEmpty() ? "/" : path);
                }
            }
            if (s.has("$ref")) return ref(s, path, depth);

            int types;
            JsonNode type = s.get("type");
            if (type != null) {
                types = 0;
                if (type.isTextual()) {
                    types = type(type.asText(), path);
                } else if (type.isArray() && !type.isEmpty()) {
                    for (JsonNode t : type) {
                        if (!t.isTextual()) throw new JnextException("\"type\" " + where + " must be a string or an array of strings");
                        types |= type(t.asText(), path);
                    }
                } else {
                    throw new JnextException("\"type\" " + where + " must be a string or a non-empty array of strings");
                }
            } else {
                types = 0;
                if (s.has("properties") || s.has("required") || s.has("additionalProperties")) types |= T_OBJECT;
                if (s.has("items") || s.has("minItems") || s.has("maxItems")) types |= T_ARRAY;
                if (types == 0) types = T_ALL;
            }
            if ((types & T_NUMBER) != 0) types &= ~T_INTEGER; // a number may be an integer
            if (nodes.size() >= MAX_NODES) {
                throw new JnextException("the JSON schema compiles to more than " + MAX_NODES + " nodes (every $ref is expanded)");
            }
            Node n = new Node();
            int index = nodes.size();
            nodes.add(n);
            n.types = types;

            if (s.has("enum") || s.has("const")) {
                List<byte[]> literals = new ArrayList<>();
                List<JsonNode> values = new ArrayList<>();
                if (s.has("const")) values.add(s.get("const"));
                if (s.has("enum")) {
                    JsonNode e = s.get("enum");
                    if (!e.isArray()) throw new JnextException("\"enum\" " + where + " must be an array");
                    e.forEach(values::add);
                }
                for (JsonNode v : values) {
                    if (v.isObject() || v.isArray()) {
                        throw new UnsupportedSchemaException("enum", path.isEmpty() ? "/" : path,
                                "enum and const values must be strings, numbers, booleans or null, got " + kind(v));
                    }
                    byte[] literal = literal(v, types);
                    if (literal != null && literals.stream().noneMatch(l -> java.util.Arrays.equals(l, literal))) literals.add(literal);
                }
                if (s.has("const") && s.has("enum")) { // both: the const, if the enum holds it
                    byte[] c = literal(s.get("const"), types);
                    boolean inEnum = false;
                    for (JsonNode v : s.get("enum")) inEnum |= c != null && java.util.Arrays.equals(c, literal(v, types));
                    literals.clear();
                    if (inEnum) literals.add(c);
                }
                if (literals.isEmpty()) {
                    throw new JnextException("the JSON schema " + where + " allows no value: its enum/const holds none of its type");
                }
                n.literals = ByteTrie.of(literals);
                n.isEnum = true;
                return index;
            }
            n.literals = keywords(types);
            if ((types & (T_OBJECT | T_ARRAY)) != 0 && depth >= MAX_NESTING) {
                throw new JnextException("the JSON schema nests objects and arrays more than " + MAX_NESTING + " deep (" + where + ")");
            }
            if ((types & T_OBJECT) != 0) object(n, s, path, depth);
            if ((types & T_ARRAY) != 0) array(n, s, path, depth);
            return index;
        }

        private void object(Node n, JsonNode s, String path, int depth) {
            String where = path.isEmpty() ? "at the root" : "at " + path;
            LinkedHashMap<String, JsonNode> properties = new LinkedHashMap<>();
            JsonNode p = s.get("properties");
            if (p != null) {
                if (!p.isObject()) throw new JnextException("\"properties\" " + where + " must be an object");
                p.properties().forEach(e -> properties.put(e.getKey(), e.getValue()));
            }
            JsonNode additional = s.get("additionalProperties");
            JsonNode other; // the schema of other keys' values, or null: none
            if (additional == null) other = p != null ? null : JSON.getNodeFactory().booleanNode(true);
            else if (additional.isBoolean()) other = additional.asBoolean() ? additional : null;
            else if (additional.isObject()) other = additional;
            else throw new JnextException("\"additionalProperties\" " + where + " must be a boolean or a schema");
            List<String> required = new ArrayList<>();
            JsonNode r = s.get("required");
            if (r != null) {
                if (!r.isArray()) throw new JnextException("\"required\" " + where + " must be an array of strings");
                for (JsonNode x : r) {
                    if (!x.isTextual()) throw new JnextException("\"required\" " + where + " must be an array of strings");
                    if (required.contains(x.asText())) continue;
                    required.add(x.asText());
                    if (!properties.containsKey(x.asText())) {
                        if (other == null) {
                            throw new JnextException("the JSON schema " + where + " requires \"" + x.asText()
                                    + "\", which is not in its properties while additionalProperties is false");
                        }
                        properties.put(x.asText(), other);
                    }
                }
            }
            if (properties.size() > MAX_PROPERTIES) {
                throw new UnsupportedSchemaException("properties", path.isEmpty() ? "/" : path,
                        "an object schema may list at most " + MAX_PROPERTIES + " properties, got " + properties.size());
            }
            List<byte[]> keys = new ArrayList<>();
            n.propertyNodes = new int[properties.size()];
            int i = 0;
            for (Map.Entry<String, JsonNode> e : properties.entrySet()) {
                String name = e.getKey();
                for (int c = 0; c < name.length(); c++) {
                    if (name.charAt(c) < 0x20) {
                        throw new JnextException("property names with control characters are not supported (" + where + ")");
                    }
                }
                byte[] encoded = encode(name);
                keys.add(java.util.Arrays.copyOfRange(encoded, 1, encoded.length));
                n.propertyNodes[i] = node(e.getValue(), path + "/properties/" + pointer(name), depth + 1);
                n.listed |= 1L << i;
                if (required.contains(name)) n.required |= 1L << i;
                i++;
            }
            n.keys = keys.isEmpty() ? null : ByteTrie.of(keys);
            n.additional = other == null ? -1 : node(other, path + "/additionalProperties", depth + 1);
        }

        private void array(Node n, JsonNode s, String path, int depth) {
            String where = path.isEmpty() ? "at the root" : "at " + path;
            JsonNode items = s.get("items");
            if (items != null && items.isArray()) {
                throw new UnsupportedSchemaException("items", path.isEmpty() ? "/" : path,
                        "items as an array (tuple validation) is not supported; give one schema for every item");
            }
            n.minItems = bound(s, "minItems", path, 0);
            n.maxItems = bound(s, "maxItems", path, -1);
            if (n.maxItems >= 0 && n.minItems > n.maxItems) {
                throw new JnextException("the JSON schema " + where + " has minItems " + n.minItems + " > maxItems " + n.maxItems);
            }
            n.items = items == null ? ANY : node(items, path + "/items", depth + 1);
        }

        private int bound(JsonNode s, String field, String path, int dflt) {
            String where = path.isEmpty() ? "at the root" : "at " + path;
            JsonNode v = s.get(field);
            if (v == null) return dflt;
            if (!v.canConvertToInt() || !(v.isIntegralNumber() || v.asDouble() == Math.rint(v.asDouble())) || v.asInt() < 0) {
                throw new JnextException("\"" + field + "\" " + where + " must be a non-negative integer, got " + v);
            }
            if (v.asInt() > MAX_ITEMS_BOUND) {
                throw new UnsupportedSchemaException(field, path.isEmpty() ? "/" : path,
                        field + " above " + MAX_ITEMS_BOUND + " is not supported, got " + v.asInt());
            }
            return v.asInt();
        }

        private int ref(JsonNode s, String path, int depth) {
            String where = path.isEmpty() ? "at the root" : "at " + path;
            for (Iterator<String> it = s.fieldNames(); it.hasNext(); ) {
                String k = it.next();
                if (!k.equals("$ref") && !k.equals("$defs") && !k.equals("definitions") && !ANNOTATIONS.contains(k)) {
                    throw new UnsupportedSchemaException(k, path.isEmpty() ? "/" : path, "keywords beside $ref are not supported");
                }
            }
            JsonNode r = s.get("$ref");
            if (!r.isTextual()) throw new JnextException("\"$ref\" " + where + " must be a string");
            String ref = r.asText();
            String prefix = ref.startsWith("#/$defs/") ? "#/$defs/" : ref.startsWith("#/definitions/") ? "#/definitions/" : null;
            if (prefix == null || ref.substring(prefix.length()).contains("/")) {
                throw new UnsupportedSchemaException("$ref", path.isEmpty() ? "/" : path,
                        "only references to \"#/$defs/NAME\" or \"#/definitions/NAME\" are supported, got \"" + ref + "\"");
            }
            String name = unpointer(ref.substring(prefix.length()));
            JsonNode defs = rootSchema.get(prefix.substring(2, prefix.length() - 1));
            JsonNode target = defs == null ? null : defs.get(name);
            if (target == null) throw new JnextException("\"$ref\" " + where + " points to " + ref + ", which the schema does not define");
            if (resolving.size() >= MAX_NESTING * 2) {
                throw new UnsupportedSchemaException("$ref", path.isEmpty() ? "/" : path, "references nest more than "
                        + MAX_NESTING * 2 + " deep");
            }
            if (!resolving.add(ref)) {
                throw new UnsupportedSchemaException("$ref", path.isEmpty() ? "/" : path, "recursive references (" + ref + ") are not supported");
            }
            try {
                return node(target, path.isEmpty() ? prefix.substring(1) + pointer(name) : path, depth);
            } finally {
                resolving.remove(ref);
            }
        }

        private static int type(String t, String path) {
            return switch (t) {
                case "object" -> T_OBJECT;
                case "array" -> T_ARRAY;
                case "string" -> T_STRING;
                case "number" -> T_NUMBER;
                case "integer" -> T_INTEGER;
                case "boolean" -> T_BOOLEAN;
                case "null" -> T_NULL;
                default -> throw new JnextException("\"type\" " + (path.isEmpty() ? "at the root" : "at " + path)
                        + " must be object, array, string, number, integer, boolean or null, got \"" + t + "\"");
            };
        }

        /** The JSON text of a scalar enum value, or null when it is not of the node's types. */
        private static byte[] literal(JsonNode v, int types) {
            if (v.isTextual()) return (types & T_STRING) != 0 ? encode(v.asText()) : null;
            if (v.isBoolean()) return (types & T_BOOLEAN) != 0 ? bytes(v.asText()) : null;
            if (v.isNull()) return (types & T_NULL) != 0 ? bytes("null") : null;
            if (v.isNumber()) {
                if ((v.isDouble() || v.isFloat()) && !Double.isFinite(v.asDouble())) {
                    throw new JnextException("an enum/const number of the JSON schema is out of range: " + v.asText());
                }
                BigDecimal d = v.decimalValue();
                if (d.precision() - d.scale() > 400 || d.scale() > 400) {
                    throw new JnextException("an enum/const number of the JSON schema has more than 400 digits");
                }
                boolean integral = v.isIntegralNumber() || d.stripTrailingZeros().scale() <= 0;
                if ((types & T_NUMBER) != 0) return bytes(v.isIntegralNumber() ? v.asText() : v.toString());
                if ((types & T_INTEGER) != 0 && integral) return bytes(d.toBigIntegerExact().toString());
                return null;
            }
            return null;
        }
    }

    /** A string as JSON text: Jackson's escaping (quotes, backslashes and control characters), other characters as UTF-8. */
    static byte[] encode(String s) {
        try {
            return JSON.writeValueAsBytes(s);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String pointer(String name) {
        return name.replace("~", "~0").replace("/", "~1");
    }

    private static String unpointer(String name) {
        return name.replace("~1", "/").replace("~0", "~");
    }

    static String kind(JsonNode v) {
        if (v.isObject()) return "an object";
        if (v.isArray()) return "an array";
        if (v.isTextual()) return "a string";
        if (v.isNumber()) return "a number";
        if (v.isBoolean()) return "a boolean";
        if (v.isNull()) return "null";
        return v.getNodeType().name().toLowerCase(java.util.Locale.ROOT);
    }
}
