package dev.jnext.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Rewrites the two Jinja constructs jinjava's expression grammar gets wrong into equivalents it gets right,
 * touching only expressions inside {@code {{ }}} and {@code {% %}}:
 * <ul>
 *   <li>extended slices, which it cannot parse: {@code messages[::-1]} becomes
 *       {@code jnext_slice(messages, none, none, -1)} (plain {@code [a:b]} slices are left alone);</li>
 *   <li>keyword arguments, whose value it cuts at the first operator after a filter:
 *       {@code namespace(i=messages|length - 1)} becomes {@code namespace(i=(messages|length - 1))} (not in a
 *       {@code macro} tag's signature, whose defaults jinjava's macro tag reads as written).</li>
 * </ul>
 */
final class JinjaRewriter {
    static final String FUNCTION = "jnext_slice";

    private JinjaRewriter() {}

    static String rewrite(String template) {
        StringBuilder out = new StringBuilder(template.length());
        int i = 0;
        while (i < template.length()) {
            int open = nextTagOpen(template, i);
            if (open < 0) {
                out.append(template, i, template.length());
                break;
            }
            String closer = template.charAt(open + 1) == '{' ? "}}" : template.charAt(open + 1) == '%' ? "%}" : "#}";
            int close = findClose(template, open + 2, closer);
            if (close < 0) {
                out.append(template, i, template.length());
                break;
            }
            out.append(template, i, open + 2);
            String inner = template.substring(open + 2, close);
            // a macro's signature holds parameter defaults, not call arguments: its tag parser takes them as written
            boolean signature = closer.equals("%}") && MACRO.matcher(inner).lookingAt();
            out.append(closer.equals("#}") ? inner : signature ? rewriteExpression(inner)
                    : parenthesizeKeywordArguments(rewriteExpression(inner)));
            out.append(closer);
            i = close + 2;
        }
        return out.toString();
    }

    private static int nextTagOpen(String s, int from) {
        for (int i = s.indexOf('{', from); i >= 0 && i + 1 < s.length(); i = s.indexOf('{', i + 1)) {
            char c = s.charAt(i + 1);
            if (c == '{' || c == '%' || c == '#') return i;
        }
        return -1;
    }

    private static int findClose(String s, int from, String closer) {
        char quote = 0;
        for (int i = from; i + 1 < s.length(); i++) {
            char c = s.charAt(i);
            if (quote != 0) {
                if (c == '\\') i++;
                else if (c == quote) quote = 0;
            } else if ((c == '\'' || c == '"') && !closer.equals("#}")) {
                quote = c;
            } else if (c == closer.charAt(0) && s.charAt(i + 1) == closer.charAt(1)) {
                return i;
            }
        }
        return -1;
    }

    /** Rewrites every extended slice in one tag's expression text, innermost first. */
    static String rewriteExpression(String e) {
        boolean changed = true;
        while (changed) {
            changed = false;
            char quote = 0;
            for (int i = 0; i < e.length(); i++) {
                char c = e.charAt(i);
                if (quote != 0) {
                    if (c == '\\') i++;
                    else if (c == quote) quote = 0;
                    continue;
                }
                if (c == '\'' || c == '"') {
                    quote = c;
                    continue;
                }
                if (c != '[') continue;
                int close = matchingClose(e, i, ']');
                if (close < 0) return e;
                String[] parts = topLevelColons(e.substring(i + 1, close));
                if (parts == null || parts.length != 3) continue;
                int start = primaryStart(e, i);
                if (start == i) continue; // a list literal, not a subscript
                String call = FUNCTION + "(" + e.substring(start, i) + ", " + orNone(parts[0]) + ", " + orNone(parts[1])
                        + ", " + orNone(parts[2]) + ")";
                e = e.substring(0, start) + call + e.substring(close + 1);
                changed = true;
                break;
            }
        }
        return e;
    }

    /** Wraps the value of every {@code name=value} argument of a call in parentheses. */
    static String parenthesizeKeywordArguments(String e) {
        StringBuilder out = new StringBuilder(e.length() + 8);
        char quote = 0;
        for (int i = 0; i < e.length(); i++) {
            char c = e.charAt(i);
            if (quote != 0) {
                out.append(c);
                if (c == '\\' && i + 1 < e.length()) out.append(e.charAt(++i));
                else if (c == quote) quote = 0;
                continue;
            }
            if (c == '\'' || c == '"') {
                quote = c;
                out.append(c);
                continue;
            }
            boolean call = c == '(' && i > 0 && (Character.isLetterOrDigit(e.charAt(i - 1)) || e.charAt(i - 1) == '_');
            int close = call ? matchingClose(e, i, ')') : -1;
            if (close < 0) {
                out.append(c);
                continue;
            }
            out.append('(');
            List<String> args = topLevelCommas(e.substring(i + 1, close));
            for (int a = 0; a < args.size(); a++) {
                if (a > 0) out.append(',');
                String arg = parenthesizeKeywordArguments(args.get(a));
                Matcher m = KEYWORD.matcher(arg);
                if (m.lookingAt() && !arg.substring(m.end()).isBlank()) {
                    String value = arg.substring(m.end());
                    int lead = 0;
                    while (lead < value.length() && value.charAt(lead) == ' ') lead++;
                    out.append(arg, 0, m.end()).append(value, 0, lead).append('(').append(value.substring(lead).stripTrailing())
                            .append(')');
                    out.append(value.substring(value.stripTrailing().length()));
                } else {
                    out.append(arg);
                }
            }
            out.append(')');
            i = close;
        }
        return out.toString();
    }

    private static final Pattern MACRO = Pattern.compile("[-+]?\\s*macro\\s");

    private static final Pattern KEYWORD = Pattern.compile("\\s*[A-Za-z_][A-Za-z0-9_]*\\s*=(?!=)");

    /**
     * Index of the bracket that closes the one at {@code open} (quotes and nested brackets skipped), or -1 when it is
     * not {@code close} or there is none.
     */
    private static int matchingClose(String e, int open, char close) {
        int depth = 0;
        char quote = 0;
        for (int i = open; i < e.length(); i++) {
            char c = e.charAt(i);
            if (quote != 0) {
                if (c == '\\') i++;
                else if (c == quote) quote = 0;
            } else if (c == '\'' || c == '"') quote = c;
            else if (c == '(' || c == '[' || c == '{') depth++;
            else if (c == ')' || c == ']' || c == '}') {
                if (--depth == 0) return c == close ? i : -1;
            }
        }
        return -1;
    }

    private static List<String> topLevelCommas(String inside) {
        return splitTopLevel(inside, ',');
    }

    /** The parts between {@code separator}s that sit outside quotes and brackets. */
    private static List<String> splitTopLevel(String inside, char separator) {
        List<String> parts = new ArrayList<>();
        int depth = 0, last = 0;
        char quote = 0;
        for (int i = 0; i < inside.length(); i++) {
            char c = inside.charAt(i);
            if (quote != 0) {
                if (c == '\\') i++;
                else if (c == quote) quote = 0;
            } else if (c == '\'' || c == '"') quote = c;
            else if (c == '(' || c == '[' || c == '{') depth++;
            else if (c == ')' || c == ']' || c == '}') depth--;
            else if (c == separator && depth == 0) {
                parts.add(inside.substring(last, i));
                last = i + 1;
            }
        }
        parts.add(inside.substring(last));
        return parts;
    }

    private static String orNone(String part) {
        return part.isBlank() ? "none" : part.trim();
    }

    /** The parts between top-level colons, or null if there is nested bracket content we cannot see through. */
    private static String[] topLevelColons(String inside) {
        return splitTopLevel(inside, ':').toArray(String[]::new);
    }

    /** Start of the postfix expression (names, attribute access, calls, subscripts, literals) ending before {@code end}. */
    private static int primaryStart(String e, int end) {
        int j = end;
        while (j > 0) {
            char c = e.charAt(j - 1);
            if (Character.isLetterOrDigit(c) || c == '_' || c == '.') {
                j--;
            } else if (c == ')' || c == ']') {
                int depth = 0, k = j - 1;
                for (; k >= 0; k--) {
                    char d = e.charAt(k);
                    if (d == ')' || d == ']') depth++;
                    else if (d == '(' || d == '[') {
                        if (--depth == 0) break;
                    }
                }
                if (k < 0) return j;
                j = k;
            } else if (c == '\'' || c == '"') {
                int k = e.lastIndexOf(c, j - 2);
                if (k < 0) return j;
                j = k;
            } else {
                break;
            }
        }
        return j;
    }
}
