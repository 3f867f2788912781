package dev.jnext.json;

import dev.jnext.JnextException;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.regex.Pattern;

/**
 * Strict reading of the JSON and text files of a checkpoint or tokenizer folder (config.json, the shard index,
 * tokenizer_config.json, chat_template.jinja): UTF-8 only, exactly one JSON value with nothing after it but
 * whitespace, no duplicate keys. Every failure is a one-line {@link JnextException} naming the file and where in
 * it the problem is.
 */
public final class JsonFiles {
    private static final ObjectMapper STRICT = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    /** Larger files are refused before anything is read (configs, indexes and templates are kilobytes to megabytes). */
    public static final long MAX_BYTES = 256L << 20;

    private JsonFiles() {}

    /** The file's text, which must be valid UTF-8. */
    public static String readText(Path file) {
        return utf8(readBytes(file), file.toString());
    }

    /** The file's bytes, which must be valid UTF-8 (checked, not decoded: for parsers that read bytes). */
    public static byte[] readUtf8Bytes(Path file) {
        byte[] bytes = readBytes(file);
        CharsetDecoder decoder = strictDecoder();
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(8192);
        while (true) {
            CoderResult r = decoder.decode(in, out, true);
            if (r.isError()) throw malformed(file.toString(), bytes, in.position());
            if (r.isUnderflow()) break;
            out.clear();
        }
        return bytes;
    }

    private static byte[] readBytes(Path file) {
        try {
            long size = Files.size(file);
            if (size > MAX_BYTES) {
                throw new JnextException(file + ": " + size + " bytes is too large (at most " + MAX_BYTES + ")");
            }
            return Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new JnextException(file + ": no such file");
        } catch (IOException e) {
            throw new JnextException(file + ": cannot read: " + oneLine(String.valueOf(e.getMessage())), e);
        }
    }

    /** The file's JSON value (see the class comment for what is accepted). */
    public static JsonNode read(Path file) {
        return parse(readText(file), file.toString());
    }

    /** Parses JSON text; {@code source} names it in error messages. */
    public static JsonNode parse(String text, String source) {
        try {
            JsonNode root = STRICT.readTree(text);
            if (root == null || root.isMissingNode()) throw new JnextException(source + ": not valid JSON: the file is empty");
            return root;
        } catch (JsonProcessingException e) {
            throw new JnextException(source + ": not valid JSON: " + describe(e), e);
        }
    }

    /** Decodes {@code bytes} as UTF-8, failing with the offset of the first malformed byte. */
    public static String utf8(byte[] bytes, String source) {
        CharsetDecoder decoder = strictDecoder();
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length);
        CoderResult r = decoder.decode(in, out, true);
        if (!r.isError()) r = decoder.flush(out);
        if (r.isError()) throw malformed(source, bytes, in.position());
        return out.flip().toString();
    }

    private static CharsetDecoder strictDecoder() {
        return StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
    }

    private static JnextException malformed(String source, byte[] bytes, int at) {
        return new JnextException(source + ": not valid UTF-8 (byte 0x" + String.format("%02X", bytes[at] & 0xFF)
                + " at offset " + at + ")");
    }

    /** Jackson's complaint and its place as one line: "Unexpected character ... (line 3, column 7)". */
    public static String describe(JsonProcessingException e) {
        JsonLocation at = e.getLocation();
        String where = at == null || at.getLineNr() < 1 ? "" : " (line " + at.getLineNr() + ", column " + at.getColumnNr() + ")";
        // Jackson names a second place (an unclosed object's start) inside the message as "[Source: ...; line: L, column: C]"
        String message = SOURCE.matcher(String.valueOf(e.getOriginalMessage())).replaceAll("line $1, column $2");
        return oneLine(message) + where;
    }

    private static final Pattern SOURCE = Pattern.compile("\\[Source: .*?; line: (\\d+), column: (\\d+)]");

    private static String oneLine(String s) {
        return s.replaceAll("\\s*\\R\\s*", " ").strip();
    }
}
