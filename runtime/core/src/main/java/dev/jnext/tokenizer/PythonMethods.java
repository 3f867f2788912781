package dev.jnext.tokenizer;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Python's str and dict methods for jinjava, which otherwise offers only Java's: chat templates call
 * {@code content.startswith('<tool_response>')}, {@code content.split('</think>')[-1].lstrip('\n')},
 * {@code tool.items()}. Resolves method calls on strings and maps with Python semantics, and
 * {@code loop.previtem} / {@code loop.nextitem} ({@link LoopNeighbours}); everything else falls through to
 * jinjava's own resolvers.
 */
final class PythonMethods extends ELResolver {
    private static final Object UNHANDLED = new Object();

    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] types, Object[] params) {
        if (method == null) return null;
        Object[] p = params == null ? new Object[0] : params;
        Object result = UNHANDLED;
        if (base instanceof String s) result = stringMethod(s, method.toString(), p);
        else if (base instanceof Map<?, ?> m) result = mapMethod(m, method.toString(), p);
        if (result == UNHANDLED) return null;
        context.setPropertyResolved(true);
        return result;
    }

    private static Object stringMethod(String s, String name, Object[] p) {
        return switch (name) {
            case "startswith" -> p.length == 1 ? anyMatch(p[0], s::startsWith) : UNHANDLED;
            case "endswith" -> p.length == 1 ? anyMatch(p[0], s::endsWith) : UNHANDLED;
            case "strip" -> p.length <= 1 ? rstrip(lstrip(s, arg(p, 0)), arg(p, 0)) : UNHANDLED;
            case "lstrip" -> p.length <= 1 ? lstrip(s, arg(p, 0)) : UNHANDLED;
            case "rstrip" -> p.length <= 1 ? rstrip(s, arg(p, 0)) : UNHANDLED;
            case "split" -> p.length <= 2 ? split(s, arg(p, 0), p.length > 1 ? ((Number) p[1]).intValue() : -1) : UNHANDLED;
            case "rsplit" -> p.length <= 2 ? rsplit(s, arg(p, 0), p.length > 1 ? ((Number) p[1]).intValue() : -1) : UNHANDLED;
            case "upper" -> p.length == 0 ? s.toUpperCase(java.util.Locale.ROOT) : UNHANDLED;
            case "lower" -> p.length == 0 ? s.toLowerCase(java.util.Locale.ROOT) : UNHANDLED;
            case "capitalize" -> p.length == 0
                    ? (s.isEmpty() ? s : s.substring(0, 1).toUpperCase(java.util.Locale.ROOT) + s.substring(1).toLowerCase(java.util.Locale.ROOT))
                    : UNHANDLED;
            case "title" -> p.length == 0 ? title(s) : UNHANDLED;
            case "replace" -> p.length == 2 ? replace(s, String.valueOf(p[0]), String.valueOf(p[1])) : UNHANDLED;
            case "find" -> p.length == 1 ? (long) s.indexOf(String.valueOf(p[0])) : UNHANDLED;
            case "rfind" -> p.length == 1 ? (long) s.lastIndexOf(String.valueOf(p[0])) : UNHANDLED;
            case "count" -> p.length == 1 ? count(s, String.valueOf(p[0])) : UNHANDLED;
            case "removeprefix" -> p.length == 1 && s.startsWith(String.valueOf(p[0])) ? s.substring(String.valueOf(p[0]).length()) : p.length == 1 ? s : UNHANDLED;
            case "removesuffix" -> p.length == 1 && s.endsWith(String.valueOf(p[0])) && !String.valueOf(p[0]).isEmpty()
                    ? s.substring(0, s.length() - String.valueOf(p[0]).length()) : p.length == 1 ? s : UNHANDLED;
            case "join" -> p.length == 1 ? join(s, p[0]) : UNHANDLED;
            case "isspace" -> p.length == 0 ? !s.isEmpty() && s.chars().allMatch(PythonMethods::isSpace) : UNHANDLED;
            case "isdigit" -> p.length == 0 ? !s.isEmpty() && s.codePoints().allMatch(Character::isDigit) : UNHANDLED;
            case "isalpha" -> p.length == 0 ? !s.isEmpty() && s.codePoints().allMatch(Character::isLetter) : UNHANDLED;
            case "isalnum" -> p.length == 0 ? !s.isEmpty() && s.codePoints().allMatch(Character::isLetterOrDigit) : UNHANDLED;
            default -> UNHANDLED;
        };
    }

    private static Object mapMethod(Map<?, ?> m, String name, Object[] p) {
        return switch (name) {
            case "items" -> p.length == 0 ? m.entrySet().stream().map(e -> List.of(e.getKey(), e.getValue())).toList() : UNHANDLED;
            case "keys" -> p.length == 0 ? new ArrayList<>(m.keySet()) : UNHANDLED;
            case "values" -> p.length == 0 ? new ArrayList<>(m.values()) : UNHANDLED;
            case "get" -> p.length == 2 ? (m.containsKey(p[0]) ? m.get(p[0]) : p[1]) : UNHANDLED;
            default -> UNHANDLED;
        };
    }

    private static String arg(Object[] p, int i) {
        return i < p.length && p[i] != null ? p[i].toString() : null;
    }

    private static boolean anyMatch(Object prefixes, java.util.function.Predicate<String> test) {
        if (prefixes instanceof Collection<?> c) return c.stream().anyMatch(x -> test.test(String.valueOf(x)));
        return test.test(String.valueOf(prefixes));
    }

    /** Python's str.isspace for one character. */
    static boolean isSpace(int c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == 0x85;
    }

    private static boolean strippable(int c, String chars) {
        return chars == null ? isSpace(c) : chars.indexOf(c) >= 0;
    }

    static String lstrip(String s, String chars) {
        int i = 0;
        while (i < s.length() && strippable(s.charAt(i), chars)) i++;
        return s.substring(i);
    }

    static String rstrip(String s, String chars) {
        int j = s.length();
        while (j > 0 && strippable(s.charAt(j - 1), chars)) j--;
        return s.substring(0, j);
    }

    static List<String> split(String s, String sep, int maxSplit) {
        List<String> out = new ArrayList<>();
        if (sep == null) {
            int i = 0, n = s.length();
            while (true) {
                while (i < n && isSpace(s.charAt(i))) i++;
                if (i >= n) break;
                if (maxSplit >= 0 && out.size() == maxSplit) {
                    out.add(rstrip(s.substring(i), null));
                    break;
                }
                int j = i;
                while (j < n && !isSpace(s.charAt(j))) j++;
                out.add(s.substring(i, j));
                i = j;
            }
            return out;
        }
        if (sep.isEmpty()) throw new IllegalArgumentException("empty separator");
        int from = 0;
        while (maxSplit < 0 || out.size() < maxSplit) {
            int at = s.indexOf(sep, from);
            if (at < 0) break;
            out.add(s.substring(from, at));
            from = at + sep.length();
        }
        out.add(s.substring(from));
        return out;
    }

    static List<String> rsplit(String s, String sep, int maxSplit) {
        if (sep == null || maxSplit < 0) return split(s, sep, -1);
        if (sep.isEmpty()) throw new IllegalArgumentException("empty separator");
        List<String> out = new ArrayList<>();
        int end = s.length();
        while (out.size() < maxSplit) {
            int at = s.lastIndexOf(sep, end - sep.length());
            if (at < 0) break;
            out.addFirst(s.substring(at + sep.length(), end));
            end = at;
        }
        out.addFirst(s.substring(0, end));
        return out;
    }

    private static String title(String s) {
        StringBuilder b = new StringBuilder(s.length());
        boolean previousCased = false;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            b.append(previousCased ? Character.toLowerCase(c) : Character.toTitleCase(c));
            previousCased = Character.isLetter(c);
        }
        return b.toString();
    }

    private static long count(String s, String sub) {
        if (sub.isEmpty()) return s.length() + 1L;
        long n = 0;
        for (int at = s.indexOf(sub); at >= 0; at = s.indexOf(sub, at + sub.length())) n++;
        return n;
    }

    private static String join(String sep, Object items) {
        List<String> parts = new ArrayList<>();
        long length = 0;
        if (items instanceof Iterable<?> it) {
            for (Object o : it) {
                String part = String.valueOf(o);
                length += part.length() + (parts.isEmpty() ? 0 : sep.length());
                checkLength(length, "str.join");
                parts.add(part);
            }
        } else {
            parts.add(String.valueOf(items));
        }
        return String.join(sep, parts);
    }

    private static String replace(String s, String old, String replacement) {
        long occurrences = count(s, old);
        checkLength(s.length() + occurrences * (replacement.length() - old.length()), "str.replace");
        return s.replace(old, replacement);
    }

    /** Strings the template builds are bounded like jinjava's own concatenation (ChatTemplate.Limits). */
    private static void checkLength(long length, String what) {
        JinjavaInterpreter interpreter = JinjavaInterpreter.getCurrent();
        long max = interpreter == null ? 0 : interpreter.getConfig().getMaxStringLength();
        if (max > 0 && length > max) {
            throw new TemplateFunctions.Refused(what + " would build a string of " + length
                    + " characters; a render may build at most " + max);
        }
    }

    @Override
    public Object getValue(ELContext context, Object base, Object property) {
        if (base instanceof com.hubspot.jinjava.util.ForLoop && property != null) {
            switch (property.toString()) {
                case "previtem" -> {
                    context.setPropertyResolved(true);
                    return LoopNeighbours.previous();
                }
                case "nextitem" -> {
                    context.setPropertyResolved(true);
                    return LoopNeighbours.next();
                }
                default -> {
                    return null;
                }
            }
        }
        return null;
    }

    @Override
    public Class<?> getType(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public void setValue(ELContext context, Object base, Object property, Object value) {}

    @Override
    public boolean isReadOnly(ELContext context, Object base, Object property) {
        return true;
    }

    @Override
    public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
        return null;
    }

    @Override
    public Class<?> getCommonPropertyType(ELContext context, Object base) {
        return null;
    }
}
