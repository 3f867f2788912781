package dev.jnext.engine;

import dev.jnext.JnextException;
import dev.jnext.structured.JsonGrammar;

import java.util.Objects;

/**
 * What the answer must be (OpenAI's {@code response_format}): free {@link Text}, any {@link JsonObject JSON object},
 * or a JSON document of a {@link JsonSchema schema}. The JSON formats are enforced by constrained decoding: at every
 * step the engine computes, on the host, the ids whose bytes keep the text a prefix of such a document, and the backend
 * samples only among them; the end of the sequence is allowed only once the document is whole (and then only it). The
 * schema subset, and what is refused, is listed in serving.md (<i>Structured output</i>).
 *
 * <p>{@code startAfter}: the constraint applies only after the answer has this token (e.g. {@code </think>}, when the
 * chat template opens a think block: the reasoning is free text, the answer after it JSON); null: from the first token.
 */
public sealed interface ResponseFormat {

    /** Free text: no constraint. */
    ResponseFormat TEXT = new Text();

    /** Whether the answer is constrained (a JSON format). */
    default boolean constrains() {
        return !(this instanceof Text);
    }

    /** The token after which the constraint starts, or null (from the first token). */
    default String startAfter() {
        return null;
    }

    /** This format, enforced only after the answer has the token {@code token} (null: from the first token). */
    ResponseFormat startingAfter(String token);

    /** Free text. */
    record Text() implements ResponseFormat {
        @Override
        public ResponseFormat startingAfter(String token) {
            return this;
        }
    }

    /** Any JSON object (OpenAI's {@code {"type": "json_object"}}). */
    record JsonObject(String startAfter) implements ResponseFormat {
        /** From the first token. */
        public JsonObject() {
            this(null);
        }

        @Override
        public ResponseFormat startingAfter(String token) {
            return new JsonObject(token);
        }
    }

    /**
     * A JSON document of {@code schema} (OpenAI's {@code {"type": "json_schema", "json_schema": {...}}}).
     *
     * @param name   the schema's name (for logs; may be null)
     * @param schema the JSON schema as JSON text, of the supported subset
     * @param strict OpenAI's flag; the schema is always enforced
     */
    record JsonSchema(String name, String schema, boolean strict, String startAfter) implements ResponseFormat {
        /**
         * Checks the schema: it must be JSON, a schema, satisfiable and of the supported subset.
         *
         * @throws JnextException naming the unsupported keyword and where it is, or what is wrong
         */
        public JsonSchema {
            Objects.requireNonNull(schema, "schema");
            JsonGrammar.compile(schema);
        }

        /** A schema enforced from the first token. */
        public JsonSchema(String name, String schema) {
            this(name, schema, true, null);
        }

        @Override
        public ResponseFormat startingAfter(String token) {
            return new JsonSchema(name, schema, strict, token);
        }
    }

    /** Any JSON object. */
    static ResponseFormat jsonObject() {
        return new JsonObject();
    }

    /** A JSON document of {@code schema} (JSON text); see {@link JsonSchema}. */
    static ResponseFormat jsonSchema(String schema) {
        return new JsonSchema(null, schema);
    }
}
