package dev.jnext.tokenizer;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jnext.JnextException;
import dev.jnext.json.JsonFiles;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * What jnext reads from a Hugging Face {@code tokenizer.json}: the BPE vocabulary, the merges in rank
 * order and the added tokens. Only the Qwen2/Qwen3/Qwen3.5 pipeline is accepted (NFC, the Qwen Split regex — Qwen3.5's
 * with combining marks in the letter runs when {@code marks} — then ByteLevel, BPE without byte fallback, ByteLevel
 * decoder); anything else is refused by name rather than tokenized differently from Hugging Face.
 */
record TokenizerJson(String[] vocab, Map<String, Integer> ids, int[] mergeLefts, int[] mergeRights, int[] mergeResults,
                     List<AddedToken> addedTokens, boolean nfc, boolean marks) {

    private static final ObjectMapper JSON = new ObjectMapper();
    // 151k vocabulary keys: interning or canonicalizing them as field names costs more than the parse itself
    private static final JsonFactory FACTORY = JsonFactory.builder()
            .disable(JsonFactory.Feature.INTERN_FIELD_NAMES)
            .disable(JsonFactory.Feature.CANONICALIZE_FIELD_NAMES)
            .build();

    static TokenizerJson read(Path file) {
        if (!Files.exists(file)) {
            throw new JnextException(file + ": no such file (a Hugging Face tokenizer.json is expected; "
                    + "load the tokenizer from the folder that holds it)");
        }
        // strict UTF-8 first (Jackson's decoder lets overlong forms and encoded surrogates through), naming the byte offset
        byte[] bytes = JsonFiles.readUtf8Bytes(file);
        try (JsonParser p = FACTORY.createParser(bytes)) {
            return parse(p, file);
        } catch (JsonProcessingException e) { // malformed JSON: one line with the place, not Jackson's two
            throw new JnextException(file + ": not valid JSON: " + JsonFiles.describe(e), e);
        } catch (IOException e) {
            throw new JnextException(file + ": cannot read tokenizer.json: " + e.getMessage(), e);
        }
    }

    private static TokenizerJson parse(JsonParser p, Path file) throws IOException {
        if (p.nextToken() != JsonToken.START_OBJECT) throw bad(file, "expected a JSON object at the top level");
        Map<String, Integer> vocab = null;
        List<String[]> merges = null;
        JsonNode added = null, normalizer = null, preTokenizer = null, decoder = null;
        JsonNode modelFields = null;
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String field = p.currentName();
            p.nextToken();
            switch (field) {
                case "model" -> {
                    if (p.currentToken() != JsonToken.START_OBJECT) throw bad(file, "\"model\" must be an object");
                    var fields = JSON.createObjectNode();
                    while (p.nextToken() == JsonToken.FIELD_NAME) {
                        String mf = p.currentName();
                        p.nextToken();
                        switch (mf) {
                            case "vocab" -> vocab = readVocab(p, file);
                            case "merges" -> merges = readMerges(p, file);
                            default -> fields.set(mf, JSON.readTree(p));
                        }
                    }
                    modelFields = fields;
                }
                case "added_tokens" -> added = JSON.readTree(p);
                case "normalizer" -> normalizer = JSON.readTree(p);
                case "pre_tokenizer" -> preTokenizer = JSON.readTree(p);
                case "decoder" -> decoder = JSON.readTree(p);
                default -> p.skipChildren();
            }
        }
        if (p.nextToken() != null) throw bad(file, "unexpected content after the top-level JSON object");
        if (modelFields == null || vocab == null) throw bad(file, "no \"model\".\"vocab\" found");
        if (merges == null) throw bad(file, "no \"model\".\"merges\" found");
        String type = modelFields.path("type").asText("BPE");
        if (!type.equals("BPE")) throw unsupported(file, "model.type " + type);
        if (modelFields.path("byte_fallback").asBoolean(false)) throw unsupported(file, "model.byte_fallback true");
        if (!modelFields.path("continuing_subword_prefix").asText("").isEmpty()
                || !modelFields.path("end_of_word_suffix").asText("").isEmpty()) {
            throw unsupported(file, "a continuing_subword_prefix or end_of_word_suffix");
        }
        boolean nfc = checkNormalizer(normalizer, file);
        boolean marks = checkPreTokenizer(preTokenizer, file);
        if (decoder != null && !decoder.isNull() && !decoder.path("type").asText().equals("ByteLevel")) {
            throw unsupported(file, "decoder " + decoder.path("type").asText());
        }

        List<AddedToken> addedTokens = new ArrayList<>();
        long size = 0;
        for (int id : vocab.values()) size = Math.max(size, id + 1L);
        if (added != null) {
            for (JsonNode t : added) {
                if (!t.path("id").canConvertToInt() || !t.path("content").isTextual()) {
                    throw bad(file, "added_tokens entries need an integer \"id\" and a string \"content\": " + t);
                }
                if (t.path("lstrip").asBoolean(false) || t.path("rstrip").asBoolean(false)
                        || t.path("single_word").asBoolean(false)) {
                    throw unsupported(file, "added token " + t.path("content").asText() + " with lstrip/rstrip/single_word");
                }
                var token = new AddedToken(t.path("id").asInt(), t.path("content").asText(), t.path("special").asBoolean(false));
                if (token.id() < 0) throw bad(file, "added token " + t.path("content") + " has a negative id " + token.id());
                addedTokens.add(token);
                size = Math.max(size, token.id() + 1L);
            }
        }
        // ids index one array: check them against what the file defines before allocating it
        long defined = (long) vocab.size() + addedTokens.size();
        if (size > defined) {
            throw bad(file, "token id " + (size - 1) + " lies beyond the " + defined
                    + " tokens the file defines (ids must number the tokens from 0)");
        }
        String[] tokens = new String[(int) size];
        vocab.forEach((token, id) -> {
            if (tokens[id] != null) {
                String[] two = {tokens[id], token};
                java.util.Arrays.sort(two); // the same message whatever the map's order
                throw bad(file, "token id " + id + " is given to two tokens of model.vocab, " + quote(two[0]) + " and " + quote(two[1]));
            }
            tokens[id] = token;
        });
        Map<String, Integer> addedIds = new HashMap<>();
        for (AddedToken t : addedTokens) {
            String held = tokens[t.id()];
            if (held != null && !held.equals(t.content())) {
                throw bad(file, "added token " + quote(t.content()) + " has id " + t.id() + ", which is already the id of "
                        + quote(held));
            }
            Integer other = vocab.get(t.content());
            if (other == null) other = addedIds.get(t.content());
            if (other != null && other != t.id()) {
                throw bad(file, "added token " + quote(t.content()) + " has id " + t.id() + " but the token already has id " + other);
            }
            tokens[t.id()] = t.content();
            addedIds.put(t.content(), t.id());
        }

        int n = merges.size();
        int[] lefts = new int[n], rights = new int[n], results = new int[n];
        for (int r = 0; r < n; r++) {
            String[] m = merges.get(r);
            Integer a = vocab.get(m[0]), b = vocab.get(m[1]), ab = vocab.get(m[0] + m[1]);
            if (a == null || b == null || ab == null) {
                throw bad(file, "merge #" + r + " [" + m[0] + ", " + m[1] + "] names a token missing from model.vocab");
            }
            lefts[r] = a;
            rights[r] = b;
            results[r] = ab;
        }
        for (AddedToken t : addedTokens) vocab.put(t.content(), t.id());
        return new TokenizerJson(tokens, vocab, lefts, rights, results, List.copyOf(addedTokens), nfc, marks);
    }

    private static Map<String, Integer> readVocab(JsonParser p, Path file) throws IOException {
        if (p.currentToken() != JsonToken.START_OBJECT) throw bad(file, "model.vocab must be an object of token -> id");
        Map<String, Integer> vocab = new HashMap<>(1 << 18);
        while (p.nextToken() == JsonToken.FIELD_NAME) {
            String token = p.currentName();
            if (p.nextToken() != JsonToken.VALUE_NUMBER_INT) throw bad(file, "model.vocab[" + token + "] must be an integer id");
            int id = p.getIntValue();
            if (id < 0) throw bad(file, "model.vocab[" + token + "] has a negative id " + id);
            Integer before = vocab.put(token, id);
            if (before != null) throw bad(file, "model.vocab lists " + quote(token) + " twice (ids " + before + " and " + id + ")");
        }
        return vocab;
    }

    private static List<String[]> readMerges(JsonParser p, Path file) throws IOException {
        if (p.currentToken() != JsonToken.START_ARRAY) throw bad(file, "model.merges must be an array");
        List<String[]> merges = new ArrayList<>(1 << 18);
        JsonToken t;
        while ((t = p.nextToken()) != JsonToken.END_ARRAY) {
            if (t == JsonToken.VALUE_STRING) { // older format: "left right"
                String s = p.getText();
                int space = s.indexOf(' ');
                if (space <= 0 || space == s.length() - 1 || s.indexOf(' ', space + 1) >= 0) {
                    throw bad(file, "merge #" + merges.size() + " \"" + s + "\" is not two tokens separated by one space");
                }
                merges.add(new String[] {s.substring(0, space), s.substring(space + 1)});
            } else if (t == JsonToken.START_ARRAY) { // newer format: ["left", "right"]
                String a = p.nextTextValue(), b = p.nextTextValue();
                if (a == null || b == null || p.nextToken() != JsonToken.END_ARRAY) {
                    throw bad(file, "merge #" + merges.size() + " is not a pair of strings");
                }
                merges.add(new String[] {a, b});
            } else {
                throw bad(file, "merge #" + merges.size() + " is neither \"a b\" nor [\"a\", \"b\"]");
            }
        }
        return merges;
    }

    private static boolean checkNormalizer(JsonNode n, Path file) {
        if (n == null || n.isNull()) return false;
        String type = n.path("type").asText();
        if (type.equals("NFC")) return true;
        if (type.equals("Sequence") && n.path("normalizers").size() == 1
                && n.path("normalizers").get(0).path("type").asText().equals("NFC")) return true;
        throw unsupported(file, "normalizer " + n);
    }

    /** Checks the pre-tokenizer; true for Qwen3.5's Split pattern, false for Qwen2/Qwen3's. */
    private static boolean checkPreTokenizer(JsonNode n, Path file) {
        if (n == null || !n.path("type").asText().equals("Sequence") || n.path("pretokenizers").size() != 2) {
            throw unsupported(file, "pre_tokenizer " + n);
        }
        JsonNode split = n.path("pretokenizers").get(0), byteLevel = n.path("pretokenizers").get(1);
        String pattern = split.path("pattern").path("Regex").asText();
        boolean qwenSplit = split.path("type").asText().equals("Split")
                && (QwenPreTokenizer.PATTERN.equals(pattern) || QwenPreTokenizer.PATTERN_QWEN35.equals(pattern))
                && split.path("behavior").asText().equals("Isolated")
                && !split.path("invert").asBoolean(false);
        boolean plainByteLevel = byteLevel.path("type").asText().equals("ByteLevel")
                && !byteLevel.path("add_prefix_space").asBoolean(false)
                && !byteLevel.path("use_regex").asBoolean(true);
        if (!qwenSplit || !plainByteLevel) throw unsupported(file, "pre_tokenizer " + n);
        return QwenPreTokenizer.PATTERN_QWEN35.equals(pattern);
    }

    /** A token for a message: in quotes, control and invisible characters as \\uXXXX. */
    private static String quote(String token) {
        StringBuilder b = new StringBuilder("\"");
        token.codePoints().forEach(c -> {
            if (c == '"' || c == '\\') b.append('\\').appendCodePoint(c);
            else if (Character.isISOControl(c) || !Character.isDefined(c) || Character.getType(c) == Character.FORMAT
                    || Character.getType(c) == Character.SURROGATE) b.append(String.format("\\u%04X", c));
            else b.appendCodePoint(c);
        });
        return b.append('"').toString();
    }

    private static JnextException bad(Path file, String what) {
        return new JnextException(file + ": " + what);
    }

    private static JnextException unsupported(Path file, String what) {
        return new JnextException(file + ": " + what + " is not supported; jnext implements the Qwen2/Qwen3 "
                + "and Qwen3.5 byte-level BPE (NFC, Split with the Qwen regex, ByteLevel, BPE merges)");
    }
}
