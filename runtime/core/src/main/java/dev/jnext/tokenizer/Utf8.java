package dev.jnext.tokenizer;

/**
 * Lossy UTF-8 decoding the way Rust's {@code String::from_utf8_lossy} (and so Hugging Face's decoder)
 * does it: each maximal prefix of a well-formed sequence that cannot be completed becomes one U+FFFD
 * (Unicode's "substitution of maximal subparts").
 */
final class Utf8 {
    static final char REPLACEMENT = '\uFFFD';

    private Utf8() {}

    /**
     * Decodes {@code bytes[from, to)} into {@code out}. When {@code endOfInput} is false an incomplete but
     * so-far valid sequence at the end is left undecoded; the return value is where decoding stopped.
     */
    static int decode(byte[] bytes, int from, int to, StringBuilder out, boolean endOfInput) {
        int i = from;
        while (i < to) {
            int b0 = bytes[i] & 0xFF;
            if (b0 < 0x80) {
                out.append((char) b0);
                i++;
                continue;
            }
            int need, lo = 0x80, hi = 0xBF, cp;
            if (b0 >= 0xC2 && b0 <= 0xDF) { need = 1; cp = b0 & 0x1F; }
            else if (b0 >= 0xE0 && b0 <= 0xEF) {
                need = 2; cp = b0 & 0x0F;
                if (b0 == 0xE0) lo = 0xA0;
                if (b0 == 0xED) hi = 0x9F;
            } else if (b0 >= 0xF0 && b0 <= 0xF4) {
                need = 3; cp = b0 & 0x07;
                if (b0 == 0xF0) lo = 0x90;
                if (b0 == 0xF4) hi = 0x8F;
            } else {
                out.append(REPLACEMENT);
                i++;
                continue;
            }
            int j = i + 1, got = 0;
            while (got < need && j < to) {
                int b = bytes[j] & 0xFF;
                if (b < lo || b > hi) break;
                cp = (cp << 6) | (b & 0x3F);
                lo = 0x80;
                hi = 0xBF;
                j++;
                got++;
            }
            if (got == need) {
                out.appendCodePoint(cp);
            } else if (j == to && !endOfInput) {
                return i; // wait for the rest of this character
            } else {
                out.append(REPLACEMENT);
            }
            i = j;
        }
        return to;
    }
}
