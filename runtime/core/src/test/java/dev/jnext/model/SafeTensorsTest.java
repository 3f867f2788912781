package dev.jnext.model;

import dev.jnext.model.weights.SafeTensorsFile;
import dev.jnext.model.weights.Tensor;
import dev.jnext.numeric.Bf16;
import dev.jnext.JnextException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Strict validation of safetensors headers: every malformed case fails with a message naming what is wrong. */
class SafeTensorsTest {

    @TempDir
    Path dir;

    /** A file with the given header JSON (length-prefixed) followed by {@code dataBytes} bytes. */
    static Path file(Path path, String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        for (int i = 0; i < dataBytes; i++) b.put((byte) (i * 7 + 1));
        Files.write(path, b.array());
        return path;
    }

    String fail(String header, int dataBytes) throws IOException {
        Path f = file(dir.resolve("x.safetensors"), header, dataBytes);
        try (Arena arena = Arena.ofConfined()) {
            return assertThrows(JnextException.class, () -> SafeTensorsFile.map(f, arena)).getMessage()
                    .replace(f.toString(), "F");
        }
    }

    @Test
    void readsF32Bf16AndF16Values() throws IOException {
        ByteBuffer data = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        data.putFloat(1.5f).putFloat(-2.25f);
        data.putShort(Bf16.fromFloat(3.0f)).putShort(Bf16.fromFloat(-0.5f));
        data.putShort(Float.floatToFloat16(0.75f)).putShort(Float.floatToFloat16(-8f));
        String header = "{\"__metadata__\":{\"format\":\"pt\"},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[8,12]},"
                + "\"c\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[12,16]}}";
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer all = ByteBuffer.allocate(8 + h.length + 16).order(ByteOrder.LITTLE_ENDIAN);
        all.putLong(h.length).put(h).put(data.array());
        Path f = dir.resolve("ok.safetensors");
        Files.write(f, all.array());
        try (Arena arena = Arena.ofConfined()) {
            Map<String, Tensor> t = SafeTensorsFile.map(f, arena);
            assertArrayEquals(new float[]{1.5f, -2.25f}, t.get("a").toFloatArray());
            assertArrayEquals(new float[]{3.0f, -0.5f}, t.get("b").toFloatArray());
            assertArrayEquals(new int[]{1, 2}, t.get("b").shape());
            assertArrayEquals(new float[]{0.75f, -8f}, t.get("c").toFloatArray());
        }
        assertEquals(Map.of("format", "pt"), SafeTensorsFile.readHeader(f).metadata());
    }

    @Test
    void headerLengthOutOfBounds() throws IOException {
        Path tiny = dir.resolve("t.safetensors");
        Files.write(tiny, new byte[]{1, 2, 3});
        try (Arena arena = Arena.ofConfined()) {
            assertEquals(tiny + ": not a safetensors file (3 bytes, shorter than the 8-byte header length)",
                    assertThrows(JnextException.class, () -> SafeTensorsFile.map(tiny, arena)).getMessage());
        }
        Path big = dir.resolve("b.safetensors");
        ByteBuffer b = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putLong(1000).putInt(0);
        Files.write(big, b.array());
        try (Arena arena = Arena.ofConfined()) {
            assertEquals(big + ": header length 1000 is out of bounds (file is 12 bytes, limit 104857600)",
                    assertThrows(JnextException.class, () -> SafeTensorsFile.map(big, arena)).getMessage());
        }
        ByteBuffer huge = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(-1L);
        Files.write(big, huge.array());
        assertTrue(assertThrows(JnextException.class, () -> SafeTensorsFile.readHeader(big)).getMessage()
                .contains("header length 18446744073709551615 is out of bounds"));
    }

    @Test
    void headerMustBeValidJsonObject() throws IOException {
        assertTrue(fail("{\"a\": {", 0).startsWith("F: header is not valid JSON"));
        assertEquals("F: header is not a JSON object", fail("[1, 2]", 0));
        assertTrue(fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8)
                .startsWith("F: header is not valid JSON: Duplicate field 'a'"));
        assertEquals("F: __metadata__.format must be a string, got 1", fail("{\"__metadata__\":{\"format\":1}}", 0));
    }

    @Test
    void unsupportedDtypeIsRejectedByName() throws IOException {
        assertEquals("F: tensor 'ids': unsupported dtype \"I64\" (jnext reads F32, BF16, F16 and F8_E4M3)",
                fail("{\"ids\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8));
    }

    @Test
    void offsetsAndShapesAreChecked() throws IOException {
        assertEquals("F: tensor 'w': data_offsets [0, 16] lie outside the data section of 8 bytes",
                fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8));
        assertEquals("F: tensor 'w': data_offsets [8, 4] lie outside the data section of 8 bytes",
                fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8));
        assertEquals("F: tensor 'w': data_offsets [0, 8] hold 8 bytes but shape [3] of F32 needs 12",
                fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8));
        assertEquals("F: tensors 'a' [0, 8) and 'b' [4, 12) overlap",
                fail("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12));
        assertEquals("F: tensor 'w': data_offsets must be [begin, end], got null",
                fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4));
        assertEquals("F: tensor 'w': shape entry -1 is not a dimension in 0..2147483647",
                fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4));
        assertEquals("F: tensor 'w': missing shape list",
                fail("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4));
        assertTrue(fail("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4)
                .startsWith("F: tensor 'w': unexpected keys"));
    }

    // ---- issue 12: the tensors tile the data section; the header is one object padded with spaces; exact sizes ----

    /** Length field, header JSON padded with {@code pad} spaces, then {@code data}. */
    static byte[] padded(String json, int pad, byte[] data, long lengthDelta) {
        byte[] h = (json + " ".repeat(pad)).getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        return b.putLong(h.length + lengthDelta).put(h).put(data).array();
    }

    String fail(byte[] file) throws IOException {
        Path f = dir.resolve("y.safetensors");
        Files.write(f, file);
        try (Arena arena = Arena.ofConfined()) {
            return assertThrows(JnextException.class, () -> SafeTensorsFile.map(f, arena)).getMessage().replace(f.toString(), "F");
        }
    }

    static final String TWO = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";

    @Test
    void aHeaderLengthShortByTheHeaderPaddingIsRejected() throws IOException {
        byte[] data = new byte[12];
        for (int k = 1; k <= 7; k++) {
            assertEquals("F: the tensors end at byte 12 of the data section but it has " + (12 + k)
                    + " bytes (a wrong header length, or bytes after the last tensor)", fail(padded(TWO, 7, data, -k)));
        }
        assertEquals("F: the tensors end at byte 12 of the data section but it has 16 bytes (a wrong header length, or "
                + "bytes after the last tensor)", fail(padded(TWO, 0, new byte[16], 0)));
    }

    @Test
    void onlyPaddingSpacesMayFollowTheHeaderObject() throws IOException {
        byte[] data = new byte[12];
        assertEquals("F: header has 'x' at character " + TWO.length() + ", after its JSON object, where only padding "
                + "spaces may follow", fail(padded(TWO + "xyz!", 0, data, 0)));
        assertTrue(fail(padded(TWO + "{}", 2, data, 0)).startsWith("F: header has '{' at character"));
        assertTrue(fail(padded(TWO + "\u0000\u0000\u0000", 0, data, 0)).startsWith("F: header has character U+0000 at character"));
    }

    @Test
    void theTensorsMustTileTheDataSection() throws IOException {
        assertEquals("F: bytes [8, 12) of the data section belong to no tensor (before 'b'); the tensors must tile it exactly",
                fail(padded(TWO.replace("[8,12]", "[12,16]"), 0, new byte[16], 0)));
        assertEquals("F: bytes [0, 4) of the data section belong to no tensor (before 'a'); the tensors must tile it exactly",
                fail(padded(TWO.replace("[0,8]", "[4,12]").replace("[8,12]", "[12,16]"), 0, new byte[16], 0)));
    }

    @Test
    void shapesWhoseByteCountWrapsAroundAreRejected() throws IOException {
        String mtp = TWO.substring(0, TWO.length() - 1)
                + ",\"mtp.x\":{\"dtype\":\"F32\",\"shape\":[1073741824,1073741824,4],\"data_offsets\":[0,0]}}";
        assertEquals("F: tensor 'mtp.x': data_offsets [0, 0] hold 0 bytes but shape [1073741824,1073741824,4] of F32 needs "
                + "18446744073709551616", fail(padded(mtp, 0, new byte[12], 0)));
    }

    @Test
    void anInvalidUtf8HeaderIsNamed() throws IOException {
        byte[] file = padded(TWO.replace("\"b\"", "\"\u00e9\""), 0, new byte[12], 0);
        int at = new String(file, StandardCharsets.ISO_8859_1).indexOf('\u00c3');
        file[at] = (byte) 0xff;
        assertEquals("F: header: not valid UTF-8 (byte 0xFF at offset " + (at - 8) + ")", fail(file));
    }
}
