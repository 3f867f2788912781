package dev.jnext.tokenizer;

/**
 * The Qwen2/Qwen3 pre-tokenizer: Hugging Face's {@code Split} with the pattern {@link #PATTERN}, and the Qwen3.5 one
 * ({@link #PATTERN_QWEN35}, transformers' {@code Qwen3_5Tokenizer}: combining marks {@code \p{M}} join the letter runs
 * and leave the symbol runs),
 * (behaviour Isolated), written as a scanner that makes the same choices as the backtracking regex
 * engine (Oniguruma) does, without backtracking costs. At each position the first alternative that
 * matches wins:
 * <ol>
 *   <li>{@code (?i:'s|'t|'re|'ve|'m|'ll|'d)} contractions, case-insensitive with Unicode case folding</li>
 *   <li>{@code [^\r\n\p{L}\p{N}]?\p{L}+} a letter run with at most one leading non-letter</li>
 *   <li>{@code \p{N}} one number character</li>
 *   <li>{@code  ?[^\s\p{L}\p{N}]+[\r\n]*} a symbol run, optional leading space, trailing line breaks</li>
 *   <li>{@code \s*[\r\n]+} whitespace up to and including the last line break of the run</li>
 *   <li>{@code \s+(?!\S)} whitespace not followed by a non-space (so a run before a word leaves its last space)</li>
 *   <li>{@code \s+} any whitespace left</li>
 * </ol>
 * {@code \s} is Oniguruma's Unicode whitespace: U+0009..U+000D, U+0085 and the separators Zs, Zl, Zp.
 * Qwen3.5 changes two alternatives: {@code [^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+} (a run of letters and marks) and
 * {@code  ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*} (a symbol run stops at a mark).
 */
final class QwenPreTokenizer {

    /** The pattern of the Qwen2/Qwen3 tokenizer.json this scanner implements, character for character. */
    static final String PATTERN =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    /** The pattern of transformers 5.17's Qwen3_5Tokenizer ({@code PRETOKENIZE_REGEX}), character for character. */
    static final String PATTERN_QWEN35 =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    /** Receives one piece [start, end) of the scanned text. */
    @FunctionalInterface
    interface PieceSink {
        void piece(int start, int end);
    }

    private static final byte LETTER = 1, NUMBER = 2, SPACE = 4, LINE_BREAK = 8, MARK = 16;
    private static final byte[] BMP_CLASS = new byte[0x10000];

    static {
        for (int c = 0; c < 0x10000; c++) BMP_CLASS[c] = computeClass(c);
    }

    private QwenPreTokenizer() {}

    private static byte computeClass(int cp) {
        if (cp == '\r' || cp == '\n') return SPACE | LINE_BREAK;
        if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x85) return SPACE;
        return switch (Character.getType(cp)) {
            case Character.UPPERCASE_LETTER, Character.LOWERCASE_LETTER, Character.TITLECASE_LETTER,
                 Character.MODIFIER_LETTER, Character.OTHER_LETTER -> LETTER;
            case Character.DECIMAL_DIGIT_NUMBER, Character.LETTER_NUMBER, Character.OTHER_NUMBER -> NUMBER;
            case Character.SPACE_SEPARATOR, Character.LINE_SEPARATOR, Character.PARAGRAPH_SEPARATOR -> SPACE;
            case Character.NON_SPACING_MARK, Character.ENCLOSING_MARK, Character.COMBINING_SPACING_MARK -> MARK;
            default -> 0;
        };
    }

    /** The character's class; without {@code marks} (Qwen2/Qwen3) a mark is an ordinary symbol (class 0). */
    private static int classOf(int cp, boolean marks) {
        int c = cp < 0x10000 ? BMP_CLASS[cp] : computeClass(cp);
        return marks ? c : c & ~MARK;
    }

    /** Splits {@code s[from, to)} into Qwen2/Qwen3 pieces, in order, covering every character. */
    static void split(String s, int from, int to, PieceSink sink) {
        split(s, from, to, false, sink);
    }

    /** Splits {@code s[from, to)} into pieces (Qwen3.5's when {@code marks}), in order, covering every character. */
    static void split(String s, int from, int to, boolean marks, PieceSink sink) {
        int i = from;
        while (i < to) {
            int end = matchAt(s, i, to, marks);
            sink.piece(i, end);
            i = end;
        }
    }

    /** The end of the Qwen2/Qwen3 piece starting at {@code i} (always greater than {@code i}). */
    static int matchAt(String s, int i, int to) {
        return matchAt(s, i, to, false);
    }

    /** The end of the piece starting at {@code i} (always greater than {@code i}); Qwen3.5's when {@code marks}. */
    static int matchAt(String s, int i, int to, boolean marks) {
        int cp = s.codePointAt(i);
        int next = i + Character.charCount(cp);
        int cls = classOf(cp, marks);
        int word = LETTER | MARK;   // MARK is never set without marks

        // 1. contractions
        if (cp == '\'' && next < to) {
            int m = contraction(s, next, to);
            if (m > 0) return m;
        }
        // 2. [^\r\n\p{L}\p{N}]?\p{L}+ (Qwen3.5: [^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+; a mark is a possible first character
        //    either way, and the run it starts ends where the letters and marks end)
        if ((cls & word) != 0) return letterRun(s, next, to, marks);
        if ((cls & (LINE_BREAK | NUMBER)) == 0 && next < to && (classOf(s.codePointAt(next), marks) & word) != 0) {
            return letterRun(s, next, to, marks);
        }
        // 3. \p{N}
        if ((cls & NUMBER) != 0) return next;
        // 4.  ?[^\s\p{L}\p{N}]+[\r\n]* (Qwen3.5: [^\s\p{L}\p{M}\p{N}])
        int symbolStart = -1;
        if (cls == 0) symbolStart = i;
        else if (cp == ' ' && next < to && classOf(s.codePointAt(next), marks) == 0) symbolStart = next;
        if (symbolStart >= 0) {
            int j = symbolStart;
            while (j < to) {
                int c = s.codePointAt(j);
                if (classOf(c, marks) != 0) break;
                j += Character.charCount(c);
            }
            while (j < to && (s.charAt(j) == '\r' || s.charAt(j) == '\n')) j++;
            return j;
        }
        // Here cp is whitespace; every \s character is a single UTF-16 unit.
        int runEnd = i + 1;
        int lastBreak = (cls & LINE_BREAK) != 0 ? i : -1;
        while (runEnd < to) {
            int c = classOf(s.charAt(runEnd), marks);
            if ((c & SPACE) == 0) break;
            if ((c & LINE_BREAK) != 0) lastBreak = runEnd;
            runEnd++;
        }
        // 5. \s*[\r\n]+
        if (lastBreak >= 0) return lastBreak + 1;
        // 6. \s+(?!\S), else 7. \s+
        if (runEnd == to || runEnd - i == 1) return runEnd;
        return runEnd - 1;
    }

    private static int letterRun(String s, int j, int to, boolean marks) {
        while (j < to) {
            int c = s.codePointAt(j);
            if ((classOf(c, marks) & (LETTER | MARK)) == 0) break;
            j += Character.charCount(c);
        }
        return j;
    }

    /** End of {@code 's|'t|'re|'ve|'m|'ll|'d} (any case) whose letters start at {@code j}, or -1. */
    private static int contraction(String s, int j, int to) {
        char a = s.charAt(j);
        if (isFold(a, 's') || isFold(a, 't') || isFold(a, 'm') || isFold(a, 'd')) return j + 1;
        if (j + 1 < to) {
            char b = s.charAt(j + 1);
            if ((isFold(a, 'r') || isFold(a, 'v')) && isFold(b, 'e')) return j + 2;
            if (isFold(a, 'l') && isFold(b, 'l')) return j + 2;
        }
        return -1;
    }

    /** Case-insensitive equality with an ASCII lower-case letter under Unicode simple case folding. */
    private static boolean isFold(char c, char lower) {
        if (c == lower || c == lower - 32) return true;
        return lower == 's' && c == '\u017F'; // LATIN SMALL LETTER LONG S folds to s
    }
}
