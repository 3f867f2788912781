package dev.jnext.tokenizer;

import dev.jnext.JnextException;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * The Qwen2/Qwen3 tokenizer (byte-level BPE) read from a Hugging Face {@code tokenizer.json}; ids,
 * decoded text and added-token handling match Hugging Face {@code tokenizers}. Encoding:
 * added tokens are cut out of the raw text first; each stretch between them is NFC-normalized, split
 * by {@link QwenPreTokenizer}, spelled in the {@link ByteLevel} alphabet and merged by {@link BytePairMerges}.
 * Thread-safe; a small lock-free cache remembers the ids of recent words.
 */
public final class QwenTokenizer {
    private static final int CACHE_SIZE = 1 << 16;
    private static final int MAX_CACHED_WORD = 64;

    private final String[] tokens;
    private final byte[][] tokenBytes;
    private final boolean[] special;
    private final int[] byteIds = new int[256];
    private final BytePairMerges merges;
    private final AddedTokenMatcher addedMatcher;
    private final List<AddedToken> addedTokens;
    private final Map<String, Integer> ids;
    private final boolean nfc;
    /** Qwen3.5's pre-tokenizer (combining marks join letter runs) instead of Qwen2/Qwen3's. */
    private final boolean marks;
    private final CachedWord[] cache;

    private record CachedWord(String word, int hash, int[] ids) {}

    private QwenTokenizer(TokenizerJson json, boolean useCache) {
        tokens = json.vocab();
        nfc = json.nfc();
        marks = json.marks();
        addedTokens = json.addedTokens();
        ids = json.ids();
        special = new boolean[tokens.length];
        for (AddedToken t : addedTokens) special[t.id()] = t.special();
        tokenBytes = new byte[tokens.length][];
        for (int id = 0; id < tokens.length; id++) if (tokens[id] != null) tokenBytes[id] = ByteLevel.bytesOf(tokens[id]);
        for (int b = 0; b < 256; b++) {
            Integer id = ids.get(String.valueOf(ByteLevel.charOf(b)));
            if (id == null) {
                throw new JnextException("tokenizer.json: the vocabulary lacks the byte-level token for byte " + b
                        + " ('" + ByteLevel.charOf(b) + "'), so not every text could be encoded");
            }
            byteIds[b] = id;
        }
        merges = new BytePairMerges(json.mergeLefts(), json.mergeRights(), json.mergeResults());
        addedMatcher = new AddedTokenMatcher(addedTokens);
        cache = useCache ? new CachedWord[CACHE_SIZE] : null;
    }

    private QwenTokenizer(QwenTokenizer other, boolean useCache) {
        tokens = other.tokens;
        tokenBytes = other.tokenBytes;
        special = other.special;
        System.arraycopy(other.byteIds, 0, byteIds, 0, 256);
        merges = other.merges;
        addedMatcher = other.addedMatcher;
        addedTokens = other.addedTokens;
        ids = other.ids;
        nfc = other.nfc;
        marks = other.marks;
        cache = useCache ? new CachedWord[CACHE_SIZE] : null;
    }

    /**
     * Loads {@code tokenizer.json} from a checkpoint or tokenizer folder (or the file itself).
     *
     * @param dirOrFile the folder holding tokenizer.json, or the file
     * @return the tokenizer
     * @throws dev.jnext.JnextException when the file is missing, not JSON, or describes another kind of tokenizer (the
     *                                  message names the file and the part jnext does not support)
     */
    public static QwenTokenizer load(Path dirOrFile) {
        Path file = dirOrFile.getFileName() != null && dirOrFile.getFileName().toString().endsWith(".json")
                ? dirOrFile : dirOrFile.resolve("tokenizer.json");
        return new QwenTokenizer(TokenizerJson.read(file), true);
    }

    /** The same tokenizer without the word cache: every word goes through the merge loop (benchmarks, tests). */
    public QwenTokenizer withoutWordCache() {
        return new QwenTokenizer(this, false);
    }

    BytePairMerges merges() {
        return merges;
    }

    int byteId(int b) {
        return byteIds[b & 0xFF];
    }

    /** Number of ids, added tokens included (151,669 for Qwen3). */
    public int vocabSize() {
        return tokens.length;
    }

    /** tokenizer.json's {@code added_tokens}, in id order. */
    public List<AddedToken> addedTokens() {
        return addedTokens;
    }

    /** The id of a vocabulary entry or added token, spelled as in tokenizer.json (e.g. {@code <|im_end|>}). */
    public OptionalInt idOf(String token) {
        Integer id = ids.get(token);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    /** The vocabulary entry of an id, in the byte-level alphabet (e.g. {@code Ġhello}). */
    public String tokenOf(int id) {
        checkId(id);
        return tokens[id];
    }

    /** The bytes an id decodes to (special tokens spelled out), e.g. for OpenAI's {@code logprobs.bytes}. */
    public byte[] tokenBytes(int id) {
        return bytesOf(id, false).clone();
    }

    /** Whether {@code id} is a special added token (dropped when decoding with special tokens skipped). */
    public boolean isSpecial(int id) {
        checkId(id);
        return special[id];
    }

    /** Token ids of a text; nothing is added around it (Qwen has no BOS token). */
    public int[] encode(String text) {
        String s = withoutLoneSurrogates(text);
        IdBuffer out = new IdBuffer(s.length() / 3 + 8);
        int segmentStart = 0, i = 0, n = s.length();
        while (i < n) {
            AddedToken t = addedMatcher.matchAt(s, i);
            if (t == null) {
                i++;
                continue;
            }
            encodeSegment(s, segmentStart, i, out);
            out.add(t.id());
            i += t.content().length();
            segmentStart = i;
        }
        encodeSegment(s, segmentStart, n, out);
        return out.toArray();
    }

    /** The text of ids, special tokens included; bytes that are not valid UTF-8 become U+FFFD. */
    public String decode(int[] ids) {
        return decode(ids, false);
    }

    /**
     * The text of ids; bytes that are not valid UTF-8 become U+FFFD.
     *
     * @param ids               token ids
     * @param skipSpecialTokens whether special added tokens (e.g. {@code <|im_end|>}) are left out
     * @return the text
     */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        int total = 0;
        for (int id : ids) total += bytesOf(id, skipSpecialTokens).length;
        byte[] all = new byte[total];
        int at = 0;
        for (int id : ids) {
            byte[] b = bytesOf(id, skipSpecialTokens);
            System.arraycopy(b, 0, all, at, b.length);
            at += b.length;
        }
        StringBuilder out = new StringBuilder(total);
        Utf8.decode(all, 0, total, out, true);
        return out.toString();
    }

    /** A decoder for ids arriving one at a time (generation); see {@link StreamDecoder}. */
    public StreamDecoder streamDecoder(boolean skipSpecialTokens) {
        return new StreamDecoder(this, skipSpecialTokens);
    }

    private static final byte[] NO_BYTES = new byte[0];

    byte[] bytesOf(int id, boolean skipSpecial) {
        checkId(id);
        return skipSpecial && special[id] ? NO_BYTES : tokenBytes[id];
    }

    private void checkId(int id) {
        if (id < 0 || id >= tokens.length || tokens[id] == null) {
            throw new JnextException("token id " + id + " is not in the tokenizer's vocabulary (ids 0.."
                    + (tokens.length - 1) + ")");
        }
    }

    private void encodeSegment(String s, int from, int to, IdBuffer out) {
        if (from >= to) return;
        String text = s;
        if (nfc && mayNeedNormalization(s, from, to)) {
            String segment = s.substring(from, to);
            if (!Normalizer.isNormalized(segment, Normalizer.Form.NFC)) {
                text = Normalizer.normalize(segment, Normalizer.Form.NFC);
                from = 0;
                to = text.length();
            }
        }
        int i = from;
        while (i < to) {
            int end = QwenPreTokenizer.matchAt(text, i, to, marks);
            encodeWord(text, i, end, out);
            i = end;
        }
    }

    /** Every character below U+0300 is unchanged by NFC and composes with nothing before it. */
    private static boolean mayNeedNormalization(String s, int from, int to) {
        for (int i = from; i < to; i++) if (s.charAt(i) >= 0x300) return true;
        return false;
    }

    private void encodeWord(String s, int start, int end, IdBuffer out) {
        int length = end - start;
        int hash = 0;
        CachedWord[] c = cache;
        if (c != null && length <= MAX_CACHED_WORD) {
            for (int i = start; i < end; i++) hash = 31 * hash + s.charAt(i);
            hash ^= hash >>> 16;
            CachedWord hit = c[hash & (CACHE_SIZE - 1)];
            if (hit != null && hit.hash == hash && hit.word.length() == length && hit.word.regionMatches(0, s, start, length)) {
                out.addAll(hit.ids);
                return;
            }
        }
        int[] symbols = new int[length * 3 + 1];
        int n = 0;
        for (int i = start; i < end; i++) {
            char ch = s.charAt(i);
            if (ch < 0x80) {
                symbols[n++] = byteIds[ch];
            } else if (ch < 0x800) {
                symbols[n++] = byteIds[0xC0 | (ch >> 6)];
                symbols[n++] = byteIds[0x80 | (ch & 0x3F)];
            } else if (Character.isHighSurrogate(ch) && i + 1 < end && Character.isLowSurrogate(s.charAt(i + 1))) {
                int cp = Character.toCodePoint(ch, s.charAt(++i));
                if (n + 4 > symbols.length) symbols = Arrays.copyOf(symbols, symbols.length * 2);
                symbols[n++] = byteIds[0xF0 | (cp >> 18)];
                symbols[n++] = byteIds[0x80 | ((cp >> 12) & 0x3F)];
                symbols[n++] = byteIds[0x80 | ((cp >> 6) & 0x3F)];
                symbols[n++] = byteIds[0x80 | (cp & 0x3F)];
            } else {
                symbols[n++] = byteIds[0xE0 | (ch >> 12)];
                symbols[n++] = byteIds[0x80 | ((ch >> 6) & 0x3F)];
                symbols[n++] = byteIds[0x80 | (ch & 0x3F)];
            }
        }
        n = merges.merge(symbols, n);
        if (c != null && length <= MAX_CACHED_WORD) {
            int[] result = Arrays.copyOf(symbols, n);
            c[hash & (CACHE_SIZE - 1)] = new CachedWord(s.substring(start, end), hash, result);
        }
        out.addAll(symbols, n);
    }

    /** Java strings may hold unpaired surrogates, which UTF-8 cannot; they become U+FFFD. */
    static String withoutLoneSurrogates(String s) {
        char[] fixed = null;
        for (int i = 0; i < s.length(); i++) {
            char ch = s.charAt(i);
            if (!Character.isSurrogate(ch)) continue;
            if (Character.isHighSurrogate(ch) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                i++;
                continue;
            }
            if (fixed == null) fixed = s.toCharArray();
            fixed[i] = Utf8.REPLACEMENT;
        }
        return fixed == null ? s : new String(fixed);
    }

    /** UTF-8 length of a text as this tokenizer sees it (benchmarks report bytes per second). */
    public static int utf8Length(String s) {
        return withoutLoneSurrogates(s).getBytes(StandardCharsets.UTF_8).length;
    }

    /** A growable int array for the ids of one encode call. */
    private static final class IdBuffer {
        private int[] a;
        private int size;

        IdBuffer(int capacity) {
            a = new int[Math.max(8, capacity)];
        }

        void add(int v) {
            if (size == a.length) a = Arrays.copyOf(a, a.length * 2);
            a[size++] = v;
        }

        void addAll(int[] vs) {
            addAll(vs, vs.length);
        }

        void addAll(int[] vs, int n) {
            if (size + n > a.length) a = Arrays.copyOf(a, Math.max(a.length * 2, size + n));
            System.arraycopy(vs, 0, a, size, n);
            size += n;
        }

        int[] toArray() {
            return Arrays.copyOf(a, size);
        }
    }
}
