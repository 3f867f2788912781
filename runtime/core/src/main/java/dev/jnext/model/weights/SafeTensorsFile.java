package dev.jnext.model.weights;

import dev.jnext.model.DType;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jnext.JnextException;
import dev.jnext.json.JsonFiles;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reader of one {@code .safetensors} file: an 8-byte little-endian header length N, N bytes of JSON
 * ({@code name -> {dtype, shape, data_offsets}} plus optional {@code __metadata__}), then the tensor bytes.
 * The header is read onto the heap and validated strictly; the data is memory-mapped into the caller's arena.
 */
public final class SafeTensorsFile {

    /** Headers above this are rejected (the format's own limit is 100 MB). */
    public static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;

    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);

    /** A header entry: where a tensor's bytes lie relative to the start of the data section. */
    public record Entry(String name, DType dtype, int[] shape, long begin, long end) {}

    /** A validated header: entries in file order, the metadata, and where the data section starts. */
    public record Header(Path file, long dataStart, long fileSize, List<Entry> entries, Map<String, String> metadata) {}

    private SafeTensorsFile() {}

    /** Reads and validates the header of {@code file} without mapping anything. */
    public static Header readHeader(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            return readHeader(file, ch);
        } catch (NoSuchFileException e) {
            throw new JnextException(file + ": no such file");
        } catch (IOException e) {
            throw new JnextException(file + ": cannot read: " + e.getMessage(), e);
        }
    }

    /**
     * Validates the header and maps the whole file read-only into {@code arena}; returns the tensors keyed by
     * name, each a slice of the mapping. The file channel is closed before returning (the mapping stays).
     */
    public static Map<String, Tensor> map(Path file, Arena arena) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            Header h = readHeader(file, ch);
            MemorySegment whole = ch.map(FileChannel.MapMode.READ_ONLY, 0, h.fileSize(), arena);
            Map<String, Tensor> out = new LinkedHashMap<>();
            for (Entry e : h.entries()) {
                MemorySegment slice = whole.asSlice(h.dataStart() + e.begin(), e.end() - e.begin());
                out.put(e.name(), new Tensor(e.name(), e.dtype(), e.shape(), slice));
            }
            return out;
        } catch (NoSuchFileException e) {
            throw new JnextException(file + ": no such file");
        } catch (IOException e) {
            throw new JnextException(file + ": cannot read: " + e.getMessage(), e);
        }
    }

    private static Header readHeader(Path file, FileChannel ch) throws IOException {
        long size = ch.size();
        if (size < 8) {
            throw new JnextException(file + ": not a safetensors file (" + size + " bytes, shorter than the 8-byte header length)");
        }
        ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(ch, len, 0);
        long n = len.getLong(0);
        if (n < 2 || n > MAX_HEADER_BYTES || n > size - 8) {
            throw new JnextException(file + ": header length " + Long.toUnsignedString(n)
                    + " is out of bounds (file is " + size + " bytes, limit " + MAX_HEADER_BYTES + ")");
        }
        ByteBuffer hb = ByteBuffer.allocate((int) n);
        readFully(ch, hb, 8);
        JsonNode root = parseHeader(file, hb.array());
        long dataStart = 8 + n;
        long dataSize = size - dataStart;
        List<Entry> entries = new ArrayList<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            if (f.getKey().equals("__metadata__")) {
                readMetadata(file, f.getValue(), metadata);
            } else {
                entries.add(entry(file, f.getKey(), f.getValue(), dataSize));
            }
        }
        checkTiling(file, entries, dataSize);
        return new Header(file, dataStart, size, List.copyOf(entries), Map.copyOf(metadata));
    }

    /** The header: one JSON object, then nothing but the padding spaces the format allows. */
    private static JsonNode parseHeader(Path file, byte[] header) throws IOException {
        String text = JsonFiles.utf8(header, file + ": header");
        JsonNode root;
        int end;
        try (JsonParser p = JSON.createParser(text)) {
            root = JSON.readTree(p);
            end = (int) p.currentLocation().getCharOffset();
        } catch (JsonProcessingException e) {
            throw new JnextException(file + ": header is not valid JSON: " + JsonFiles.describe(e), e);
        }
        if (root == null || !root.isObject()) throw new JnextException(file + ": header is not a JSON object");
        for (int i = end; i < text.length(); i++) {
            if (text.charAt(i) != ' ') {
                throw new JnextException(file + ": header has " + describeChar(text.charAt(i)) + " at character " + i
                        + ", after its JSON object, where only padding spaces may follow");
            }
        }
        return root;
    }

    private static String describeChar(char c) {
        return c >= 0x21 && c < 0x7F ? "'" + c + "'" : String.format("character U+%04X", (int) c);
    }

    /**
     * The format's rule: the tensors tile the data section exactly, in offset order, with no hole, no overlap and
     * nothing after the last one. A header length off by a few bytes (header padding read as data, or data read as
     * padding) breaks it, so it cannot shift every tensor unnoticed.
     */
    private static void checkTiling(Path file, List<Entry> entries, long dataSize) {
        List<Entry> byOffset = new ArrayList<>(entries);
        byOffset.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        long covered = 0;
        Entry previous = null;
        for (Entry e : byOffset) {
            if (e.begin() < covered) {
                throw new JnextException(file + ": tensors '" + previous.name() + "' [" + previous.begin() + ", "
                        + previous.end() + ") and '" + e.name() + "' [" + e.begin() + ", " + e.end() + ") overlap");
            }
            if (e.begin() > covered) {
                throw new JnextException(file + ": bytes [" + covered + ", " + e.begin() + ") of the data section "
                        + "belong to no tensor (before '" + e.name() + "'); the tensors must tile it exactly");
            }
            covered = e.end();
            previous = e;
        }
        if (covered != dataSize) {
            throw new JnextException(file + ": the tensors end at byte " + covered + " of the data section but it has "
                    + dataSize + " bytes (a wrong header length, or bytes after the last tensor)");
        }
    }

    private static void readMetadata(Path file, JsonNode node, Map<String, String> out) {
        if (!node.isObject()) throw new JnextException(file + ": __metadata__ must be an object of strings");
        for (Iterator<Map.Entry<String, JsonNode>> it = node.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> m = it.next();
            if (!m.getValue().isTextual()) {
                throw new JnextException(file + ": __metadata__." + m.getKey() + " must be a string, got " + m.getValue());
            }
            out.put(m.getKey(), m.getValue().asText());
        }
    }

    private static Entry entry(Path file, String name, JsonNode node, long dataSize) {
        String where = file + ": tensor '" + name + "'";
        if (!node.isObject()) throw new JnextException(where + ": expected an object with dtype, shape, data_offsets");
        JsonNode dt = node.get("dtype");
        if (dt == null || !dt.isTextual()) throw new JnextException(where + ": missing or non-string dtype");
        DType dtype = DType.fromSafetensors(dt.asText(), where);
        JsonNode sh = node.get("shape");
        if (sh == null || !sh.isArray()) throw new JnextException(where + ": missing shape list");
        int[] shape = new int[sh.size()];
        BigInteger elements = BigInteger.ONE; // exact: a product that wraps to 0 must not match empty offsets
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = sh.get(i);
            if (!d.isIntegralNumber() || !d.canConvertToLong() || d.longValue() < 0 || d.longValue() > Integer.MAX_VALUE) {
                throw new JnextException(where + ": shape entry " + d + " is not a dimension in 0.." + Integer.MAX_VALUE);
            }
            shape[i] = d.intValue();
            elements = elements.multiply(BigInteger.valueOf(shape[i]));
        }
        JsonNode off = node.get("data_offsets");
        if (off == null || !off.isArray() || off.size() != 2 || !off.get(0).isIntegralNumber()
                || !off.get(1).isIntegralNumber() || !off.get(0).canConvertToLong() || !off.get(1).canConvertToLong()) {
            throw new JnextException(where + ": data_offsets must be [begin, end], got " + off);
        }
        long begin = off.get(0).longValue();
        long end = off.get(1).longValue();
        if (begin < 0 || end < begin || end > dataSize) {
            throw new JnextException(where + ": data_offsets [" + begin + ", " + end
                    + "] lie outside the data section of " + dataSize + " bytes");
        }
        if (node.size() != 3) {
            throw new JnextException(where + ": unexpected keys in " + node + " (expected dtype, shape, data_offsets)");
        }
        BigInteger expected = elements.multiply(BigInteger.valueOf(dtype.bytes()));
        if (!expected.equals(BigInteger.valueOf(end - begin))) {
            throw new JnextException(where + ": data_offsets [" + begin + ", " + end + "] hold " + (end - begin)
                    + " bytes but shape " + sh + " of " + dtype + " needs " + expected);
        }
        return new Entry(name, dtype, shape, begin, end);
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long position) throws IOException {
        long pos = position;
        while (buf.hasRemaining()) {
            int r = ch.read(buf, pos);
            if (r < 0) throw new IOException("unexpected end of file at byte " + pos);
            pos += r;
        }
    }
}
