package dev.jnext.fuzz;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/** A small safetensors file as bytes, and the edits the fuzzer makes to one. */
final class SafeTensorsBytes {
    static final ObjectMapper JSON = new ObjectMapper();

    private SafeTensorsBytes() {}

    /** Four tensors (F32, BF16, an ignored mtp.* F16, an empty one), metadata, header padded to 8 bytes. */
    static byte[] base() {
        String header = "{\"__metadata__\":{\"format\":\"pt\"},"
                + "\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                + "\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[16,28]},"
                + "\"mtp.fc.weight\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[28,36]},"
                + "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[36,36]}}";
        byte[] data = new byte[36];
        for (int i = 0; i < data.length; i++) data[i] = (byte) (i * 37 + 11);
        return file(header.getBytes(StandardCharsets.UTF_8), true, data);
    }

    /** length + header (padded with spaces to a multiple of 8 when asked) + data. */
    static byte[] file(byte[] header, boolean pad, byte[] data) {
        int n = pad ? (header.length + 7) / 8 * 8 : header.length;
        ByteBuffer b = ByteBuffer.allocate(8 + n + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(n).put(header);
        while (b.position() < 8 + n) b.put((byte) ' ');
        return b.put(data).array();
    }

    /** The header length field, or -1 when the file is too short to hold one. */
    static long headerLength(byte[] f) {
        return f.length < 8 ? -1 : ByteBuffer.wrap(f, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    static byte[] withHeaderLength(byte[] f, long n) {
        byte[] out = f.length < 8 ? Arrays.copyOf(f, 8) : f.clone();
        ByteBuffer.wrap(out, 0, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(n);
        return out;
    }

    /** The header bytes as the length field claims them, or null when the claim does not fit the file. */
    static byte[] header(byte[] f) {
        long n = headerLength(f);
        return n < 0 || n > f.length - 8 ? null : Arrays.copyOfRange(f, 8, 8 + (int) n);
    }

    static byte[] data(byte[] f) {
        long n = headerLength(f);
        return n < 0 || n > f.length - 8 ? new byte[0] : Arrays.copyOfRange(f, 8 + (int) n, f.length);
    }

    /** The header as a JSON object, or null when it is not one. */
    static ObjectNode tree(byte[] f) {
        byte[] h = header(f);
        if (h == null) return null;
        try {
            JsonNode n = JSON.readTree(h);
            return n instanceof ObjectNode o ? o : null;
        } catch (Exception e) {
            return null;
        }
    }

    /** The file with {@code tree} as its header (padded), keeping the data bytes. */
    static byte[] withTree(byte[] f, ObjectNode tree) {
        try {
            return file(JSON.writeValueAsBytes(tree), true, data(f));
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** Inserts {@code bytes} at header offset {@code at}; the length field grows with it when {@code fixLength}. */
    static byte[] insertIntoHeader(byte[] f, int at, byte[] bytes, boolean fixLength) {
        byte[] h = header(f);
        if (h == null) return f;
        int pos = 8 + Math.floorMod(at, h.length + 1);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(f, 0, pos);
        out.writeBytes(bytes);
        out.write(f, pos, f.length - pos);
        byte[] r = out.toByteArray();
        return fixLength ? withHeaderLength(r, h.length + bytes.length) : r;
    }

    /** Offset (within the header) just after the header's JSON object, or -1. */
    static int endOfJson(byte[] f) {
        byte[] h = header(f);
        if (h == null) return -1;
        int end = h.length;
        while (end > 0 && h[end - 1] == ' ') end--;
        return end;
    }
}
