package dev.jnext.tokenizer;

/**
 * The GPT-2 byte-level alphabet: every byte 0..255 is spelled by one printable code point, so a
 * vocabulary of strings can hold arbitrary bytes. Printable Latin-1 bytes stand for themselves;
 * the others (controls, space, DEL, NBSP, soft hyphen) map to U+0100 onwards, in byte order.
 */
final class ByteLevel {
    private static final char[] BYTE_TO_CHAR = new char[256];
    private static final short[] CHAR_TO_BYTE = new short[0x200];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, (short) -1);
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) next++;
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = (short) b;
        }
    }

    private ByteLevel() {}

    static char charOf(int b) {
        return BYTE_TO_CHAR[b & 0xFF];
    }

    /** The byte a code point of the byte-level alphabet stands for, or -1 if it is not in the alphabet. */
    static int byteOf(int codePoint) {
        return codePoint >= 0 && codePoint < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[codePoint] : -1;
    }

    /**
     * The bytes a vocabulary entry stands for. As Hugging Face's ByteLevel decoder does, an entry with
     * any code point outside the alphabet (an added token such as one with a space) is taken as its own UTF-8.
     */
    static byte[] bytesOf(String token) {
        byte[] out = new byte[token.length()];
        for (int i = 0; i < token.length(); i++) {
            int b = byteOf(token.charAt(i));
            if (b < 0) return token.getBytes(java.nio.charset.StandardCharsets.UTF_8);
            out[i] = (byte) b;
        }
        return out;
    }

    /** The alphabet spelling of UTF-8 bytes, as the vocabulary and merges write them. */
    static String spell(byte[] bytes) {
        char[] cs = new char[bytes.length];
        for (int i = 0; i < bytes.length; i++) cs[i] = BYTE_TO_CHAR[bytes[i] & 0xFF];
        return new String(cs);
    }
}
