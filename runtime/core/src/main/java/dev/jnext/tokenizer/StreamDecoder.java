package dev.jnext.tokenizer;

import java.util.Arrays;

/**
 * Turns generated token ids into text as they arrive. A character whose UTF-8 bytes span several
 * tokens is held back until it is complete, so the pieces never contain broken characters and their
 * concatenation (after {@link #finish()}) equals {@link QwenTokenizer#decode(int[], boolean)} of all ids.
 * Not thread-safe: one per generated sequence.
 */
public final class StreamDecoder {
    private final QwenTokenizer tokenizer;
    private final boolean skipSpecial;
    private byte[] pending = new byte[8];
    private int pendingLength;

    StreamDecoder(QwenTokenizer tokenizer, boolean skipSpecial) {
        this.tokenizer = tokenizer;
        this.skipSpecial = skipSpecial;
    }

    /** The text completed by this token; empty while a character is still incomplete. */
    public String next(int id) {
        byte[] bytes = tokenizer.bytesOf(id, skipSpecial);
        if (bytes.length == 0) return "";
        if (pendingLength + bytes.length > pending.length) {
            pending = Arrays.copyOf(pending, Math.max(pending.length * 2, pendingLength + bytes.length));
        }
        System.arraycopy(bytes, 0, pending, pendingLength, bytes.length);
        pendingLength += bytes.length;
        StringBuilder out = new StringBuilder(pendingLength);
        int stopped = Utf8.decode(pending, 0, pendingLength, out, false);
        System.arraycopy(pending, stopped, pending, 0, pendingLength - stopped);
        pendingLength -= stopped;
        return out.toString();
    }

    /** Whatever is still held back (an unfinished character decodes to U+FFFD); the decoder is then empty. */
    public String finish() {
        StringBuilder out = new StringBuilder();
        Utf8.decode(pending, 0, pendingLength, out, true);
        pendingLength = 0;
        return out.toString();
    }

    /** True while bytes of an unfinished character are held back. */
    public boolean hasPending() {
        return pendingLength > 0;
    }
}
