package dev.jnext.tokenizer;

import java.lang.reflect.Array;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;

/**
 * Python's {@code str(x)} and {@code repr(x)} of the values a chat template sees (JSON values: None, bool, int, float,
 * str, list, dict), which jinja2's {@code string} filter and {@code ~} produce: {@code True}, {@code None},
 * {@code 1.0}, {@code ['a', 1]}, {@code {'k': False}}.
 */
final class PythonStr {
    private PythonStr() {}

    /** str(x). */
    static String str(Object v) {
        if (v instanceof CharSequence || v instanceof Character) return v.toString();
        return repr(v);
    }

    /** repr(x). */
    static String repr(Object v) {
        StringBuilder out = new StringBuilder();
        repr(out, v);
        return out.toString();
    }

    private static void repr(StringBuilder out, Object v) {
        if (v == null) out.append("None");
        else if (v instanceof Boolean b) out.append(b ? "True" : "False");
        else if (v instanceof Double || v instanceof Float) out.append(floatStr(((Number) v).doubleValue()));
        else if (v instanceof BigDecimal d) out.append(floatStr(d.doubleValue()));
        else if (v instanceof Number n) out.append(n.toString());
        else if (v instanceof CharSequence || v instanceof Character) string(out, v.toString());
        else if (v instanceof Map<?, ?> m) {
            out.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (!first) out.append(", ");
                first = false;
                repr(out, e.getKey());
                out.append(": ");
                repr(out, e.getValue());
            }
            out.append('}');
        } else if (v instanceof Collection<?> || v.getClass().isArray()) {
            List<Object> items = new ArrayList<>();
            if (v instanceof Collection<?> c) items.addAll(c);
            else for (int i = 0; i < Array.getLength(v); i++) items.add(Array.get(v, i));
            out.append('[');
            for (int i = 0; i < items.size(); i++) {
                if (i > 0) out.append(", ");
                repr(out, items.get(i));
            }
            out.append(']');
        } else {
            out.append(v);
        }
    }

    /** Python's float str/repr: nan, inf, else the shortest round-trip digits ({@link PythonJson#floatRepr}). */
    private static String floatStr(double d) {
        if (Double.isNaN(d)) return "nan";
        if (Double.isInfinite(d)) return d > 0 ? "inf" : "-inf";
        return PythonJson.floatRepr(d);
    }

    /** repr of a str: single quotes unless it holds ' and no ", backslash escapes for the rest as Python writes them. */
    private static void string(StringBuilder out, String s) {
        char q = s.indexOf('\'') >= 0 && s.indexOf('"') < 0 ? '"' : '\'';
        out.append(q);
        for (int i = 0; i < s.length(); ) {
            int c = s.codePointAt(i);
            i += Character.charCount(c);
            if (c == q || c == '\\') out.append('\\').append((char) c);
            else if (c == '\n') out.append("\\n");
            else if (c == '\r') out.append("\\r");
            else if (c == '\t') out.append("\\t");
            else if (!printable(c)) {
                if (c < 0x100) out.append(String.format("\\x%02x", c));
                else if (c < 0x10000) out.append(String.format("\\u%04x", c));
                else out.append(String.format("\\U%08x", c));
            } else out.appendCodePoint(c);
        }
        out.append(q);
    }

    /** Python's str.isprintable for one character (space is printable; other separators and Cc/Cf/Cs/Co/Cn are not). */
    private static boolean printable(int c) {
        if (c == ' ') return true;
        return switch (Character.getType(c)) {
            case Character.CONTROL, Character.FORMAT, Character.SURROGATE, Character.PRIVATE_USE, Character.UNASSIGNED,
                 Character.SPACE_SEPARATOR, Character.LINE_SEPARATOR, Character.PARAGRAPH_SEPARATOR -> false;
            default -> true;
        };
    }
}
