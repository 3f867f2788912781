package dev.jnext.structured;

import dev.jnext.JnextException;

/**
 * A JSON schema uses a keyword (or a form of one) outside the subset that constrained decoding enforces
 * ({@link JsonGrammar}). The message names the keyword and where it is (a JSON pointer into the schema).
 */
public final class UnsupportedSchemaException extends JnextException {
    private final String keyword;
    private final String path;

    UnsupportedSchemaException(String keyword, String path) {
        this(keyword, path, null);
    }

    UnsupportedSchemaException(String keyword, String path, String detail) {
        super("the JSON schema keyword \"" + keyword + "\" at " + path + " is not supported"
                + (detail != null ? ": " + detail : "") + " (supported: " + JsonGrammar.SUBSET + ")");
        this.keyword = keyword;
        this.path = path;
    }

    /** The keyword refused. */
    public String keyword() {
        return keyword;
    }

    /** Where it is in the schema, as a JSON pointer ({@code /} for the root). */
    public String path() {
        return path;
    }
}
