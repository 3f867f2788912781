package dev.jnext.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class QwenPreTokenizerTest {

    static List<String> pieces(String text) {
        List<String> out = new ArrayList<>();
        QwenPreTokenizer.split(text, 0, text.length(), (s, e) -> out.add(text.substring(s, e)));
        return out;
    }

    @Test
    void piecesMatchHuggingFaceSplitOnTheWholeCorpus() {
        List<String> failures = new ArrayList<>();
        for (JsonNode row : Goldens.lines("encode.jsonl")) {
            String normalized = Normalizer.normalize(row.get("text").asText(), Normalizer.Form.NFC);
            List<String> expected = new ArrayList<>();
            row.get("pieces").forEach(p -> expected.add(p.asText()));
            List<String> actual = pieces(normalized).stream()
                    .map(p -> ByteLevel.spell(p.getBytes(StandardCharsets.UTF_8))).toList();
            if (!expected.equals(actual)) failures.add(row.get("id").asText() + ": hf " + expected + " jnext " + actual);
        }
        assertTrue(failures.isEmpty(), String.join("\n", failures));
    }

    @Test
    void contractionsFoldCaseIncludingLongS() {
        assertEquals(List.of("I", "'M", " here"), pieces("I'M here"));
        assertEquals(List.of("we", "'lL"), pieces("we'lL"));
        assertEquals(List.of("'ſ", "t"), pieces("'ſt")); // U+017F folds to s, as in Oniguruma
        assertEquals(List.of("it", "’s"), pieces("it’s")); // a curly apostrophe is no contraction
    }

    @Test
    void whitespaceRunsLeaveTheirLastSpaceToTheNextWord() {
        assertEquals(List.of("a", "  ", " b"), pieces("a   b"));
        assertEquals(List.of("a", "  \n\n", " b"), pieces("a  \n\n b"));
        assertEquals(List.of("x", "   "), pieces("x   "));
        assertEquals(List.of("\r\n"), pieces("\r\n"));
        assertEquals(List.of(" !!!\n\n", "ok"), pieces(" !!!\n\nok"));
    }

    /** The scanner agrees with java.util.regex running the same pattern where both define it the same way. */
    @Test
    void agreesWithJavaRegexOnRandomAsciiAndLatinText() {
        // On this alphabet Java's (?U) classes equal Oniguruma's; the long-s fold is left out on purpose.
        Pattern javaRegex = Pattern.compile(QwenPreTokenizer.PATTERN, Pattern.UNICODE_CHARACTER_CLASS);
        String alphabet = "ab Z9'sStTlLdDmMrReEvV \t\n\r!?.,-_()[]{}\"#é中😀١²\u00a0\u3000";
        var rnd = new java.util.Random(7);
        for (int trial = 0; trial < 3000; trial++) {
            StringBuilder b = new StringBuilder();
            int len = 1 + rnd.nextInt(24);
            for (int i = 0; i < len; i++) b.appendCodePoint(alphabet.codePointAt(alphabet.offsetByCodePoints(0, rnd.nextInt(alphabet.codePointCount(0, alphabet.length())))));
            String text = b.toString();
            List<String> expected = new ArrayList<>();
            Matcher m = javaRegex.matcher(text);
            while (m.find()) expected.add(m.group());
            assertEquals(expected, pieces(text), TokenizerParityTest.quote(text));
        }
    }
}
