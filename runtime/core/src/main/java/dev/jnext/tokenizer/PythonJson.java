package dev.jnext.tokenizer;

import java.lang.reflect.Array;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;

/**
 * JSON text exactly as Python's {@code json.dumps(x, ensure_ascii=False, indent=..., sort_keys=...)} writes
 * it, which is what Hugging Face's {@code tojson} template filter produces: {@code ", "} and {@code ": "}
 * separators, non-ASCII kept, floats in Python's repr.
 */
final class PythonJson {
    private PythonJson() {}

    static String dumps(Object value, Integer indent, boolean sortKeys) {
        StringBuilder out = new StringBuilder();
        write(out, value, indent, sortKeys, 0);
        return out.toString();
    }

    private static void write(StringBuilder out, Object v, Integer indent, boolean sortKeys, int depth) {
        if (v == null) out.append("null");
        else if (v instanceof Boolean b) out.append(b ? "true" : "false");
        else if (v instanceof Double || v instanceof Float) out.append(floatRepr(((Number) v).doubleValue()));
        else if (v instanceof BigDecimal d) out.append(floatRepr(d.doubleValue()));
        else if (v instanceof Number n) out.append(n.longValue());
        else if (v instanceof CharSequence || v instanceof Character) string(out, v.toString());
        else if (v instanceof Map<?, ?> m) {
            List<Map.Entry<?, ?>> entries = new ArrayList<>(m.entrySet());
            if (sortKeys) entries.sort((a, b) -> String.valueOf(a.getKey()).compareTo(String.valueOf(b.getKey())));
            if (entries.isEmpty()) {
                out.append("{}");
                return;
            }
            out.append('{');
            for (int i = 0; i < entries.size(); i++) {
                separator(out, i, indent, depth + 1);
                Object key = entries.get(i).getKey();
                string(out, key instanceof Boolean b ? (b ? "true" : "false") : key == null ? "null" : key.toString());
                out.append(": ");
                write(out, entries.get(i).getValue(), indent, sortKeys, depth + 1);
            }
            close(out, indent, depth);
            out.append('}');
        } else if (v instanceof Collection<?> || v.getClass().isArray()) {
            List<Object> items = new ArrayList<>();
            if (v instanceof Collection<?> c) items.addAll(c);
            else for (int i = 0; i < Array.getLength(v); i++) items.add(Array.get(v, i));
            if (items.isEmpty()) {
                out.append("[]");
                return;
            }
            out.append('[');
            for (int i = 0; i < items.size(); i++) {
                separator(out, i, indent, depth + 1);
                write(out, items.get(i), indent, sortKeys, depth + 1);
            }
            close(out, indent, depth);
            out.append(']');
        } else {
            string(out, v.toString());
        }
    }

    private static void separator(StringBuilder out, int index, Integer indent, int depth) {
        if (indent == null) {
            if (index > 0) out.append(", ");
        } else {
            if (index > 0) out.append(',');
            out.append('\n').append(" ".repeat(indent * depth));
        }
    }

    private static void close(StringBuilder out, Integer indent, int depth) {
        if (indent != null) out.append('\n').append(" ".repeat(indent * depth));
    }

    private static void string(StringBuilder out, String s) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                default -> {
                    if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
                    else out.append(c);
                }
            }
        }
        out.append('"');
    }

    /** Python's repr of a float: shortest round-trip digits, fixed notation for exponents -4..15. */
    static String floatRepr(double d) {
        if (Double.isNaN(d)) return "NaN";
        if (Double.isInfinite(d)) return d > 0 ? "Infinity" : "-Infinity";
        if (d == 0) return (1 / d < 0) ? "-0.0" : "0.0";
        BigDecimal shortest = new BigDecimal(Double.toString(d)).stripTrailingZeros();
        String digits = shortest.unscaledValue().abs().toString();
        int exponent = digits.length() - 1 - shortest.scale(); // d = 0.digits * 10^(exponent+1)
        String sign = d < 0 ? "-" : "";
        if (exponent >= -4 && exponent < 16) {
            String plain = shortest.abs().toPlainString();
            return sign + (plain.contains(".") ? plain : plain + ".0");
        }
        String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
        return sign + mantissa + "e" + (exponent < 0 ? "-" : "+") + String.format("%02d", Math.abs(exponent));
    }
}
