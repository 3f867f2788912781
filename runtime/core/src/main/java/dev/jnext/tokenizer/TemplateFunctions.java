package dev.jnext.tokenizer;

import java.math.BigInteger;
import java.time.ZonedDateTime;
import java.time.format.TextStyle;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Functions Hugging Face's template environment provides, registered as jinjava functions by {@link ChatTemplate}.
 * Public only because jinjava calls them reflectively; applications have no use for them.
 */
public final class TemplateFunctions {
    private TemplateFunctions() {}

    /** Raised by a template's {@code raise_exception(message)} (e.g. "Conversation roles must alternate"). */
    public static final class TemplateRaised extends RuntimeException {
        TemplateRaised(String message) {
            super(message);
        }
    }

    /**
     * A function or method of the template environment refused its arguments (Python's TypeError or ValueError), or
     * a template asked for more than a render may build (a range, a string); the render fails with this message.
     */
    public static final class Refused extends RuntimeException {
        Refused(String message) {
            super(message);
        }
    }

    /** jinja2's sandbox refuses ranges longer than this (MAX_RANGE). */
    static final int MAX_RANGE = 100_000;

    /**
     * jinja2's {@code raise_exception(message)}: fails the render with the template's message.
     *
     * @param message what the template says
     * @return never
     */
    public static Object raiseException(Object message) {
        throw new TemplateRaised(String.valueOf(message));
    }

    /**
     * Python's {@code range(stop)} / {@code range(start, stop[, step])} as jinja2's sandbox offers it: integer
     * arguments only, at most {@link #MAX_RANGE} items (jinjava's own range silently stops at 1000).
     */
    public static List<Long> range(Object first, Object... rest) {
        if (rest.length > 2) throw new Refused("range expected at most 3 arguments, got " + (rest.length + 1));
        long start = rest.length == 0 ? 0 : integer(first);
        long stop = rest.length == 0 ? integer(first) : integer(rest[0]);
        long step = rest.length == 2 ? integer(rest[1]) : 1;
        if (step == 0) throw new Refused("range() arg 3 must not be zero");
        BigInteger span = BigInteger.valueOf(stop).subtract(BigInteger.valueOf(start));
        BigInteger st = BigInteger.valueOf(step);
        // len = ceil(span / step) when it has the step's sign, else 0
        BigInteger len = span.signum() * st.signum() <= 0 ? BigInteger.ZERO
                : span.abs().add(st.abs()).subtract(BigInteger.ONE).divide(st.abs());
        if (len.compareTo(BigInteger.valueOf(MAX_RANGE)) > 0) {
            throw new Refused("range of " + len + " items; a chat template may build at most " + MAX_RANGE
                    + " (as jinja2's sandbox)");
        }
        int n = len.intValue();
        List<Long> out = new ArrayList<>(n);
        for (int i = 0; i < n; i++) out.add(start + i * step);
        return out;
    }

    private static long integer(Object v) {
        if (v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte) return ((Number) v).longValue();
        if (v instanceof BigInteger b && b.bitLength() < 64) return b.longValue();
        String type = v == null ? "NoneType" : v instanceof Number ? "float" : v instanceof CharSequence ? "str"
                : v.getClass().getSimpleName();
        throw new Refused("range: '" + type + "' object cannot be interpreted as an integer");
    }

    /** Python's {@code seq[start:stop:step]} for lists and strings ({@link JinjaRewriter} calls it). */
    public static Object slice(Object seq, Object start, Object stop, Object step) {
        int st = step == null ? 1 : ((Number) step).intValue();
        if (st == 0) throw new Refused("slice step cannot be zero");
        List<Object> items = new ArrayList<>();
        String text = seq instanceof CharSequence cs ? cs.toString() : null;
        if (text != null) text.codePoints().forEach(items::add);
        else if (seq instanceof Iterable<?> it) for (Object o : it) items.add(o);
        else throw new Refused("cannot slice " + (seq == null ? "none" : seq.getClass().getSimpleName()));
        int n = items.size();
        int lo, hi;
        if (st > 0) {
            lo = bound(start, n, 0, 0, n);
            hi = bound(stop, n, n, 0, n);
        } else {
            lo = bound(start, n, n - 1, -1, n - 1);
            hi = bound(stop, n, -1, -1, n - 1);
        }
        List<Object> out = new ArrayList<>();
        for (int i = lo; st > 0 ? i < hi : i > hi; i += st) out.add(items.get(i));
        if (text == null) return out;
        StringBuilder b = new StringBuilder();
        for (Object cp : out) b.appendCodePoint((Integer) cp);
        return b.toString();
    }

    private static int bound(Object v, int n, int dflt, int min, int max) {
        if (v == null) return dflt;
        int i = ((Number) v).intValue();
        if (i < 0) i += n;
        return Math.max(min, Math.min(max, i));
    }

    /** Python's {@code datetime.now().strftime(format)} for the directives chat templates use. */
    public static String strftimeNow(String format) {
        ZonedDateTime t = ZonedDateTime.now();
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                b.append(c);
                continue;
            }
            char d = format.charAt(++i);
            boolean noPad = d == '-' && i + 1 < format.length();
            if (noPad) d = format.charAt(++i);
            String pad2 = noPad ? "%d" : "%02d";
            switch (d) {
                case 'Y' -> b.append(t.getYear());
                case 'y' -> b.append(String.format("%02d", t.getYear() % 100));
                case 'm' -> b.append(String.format(pad2, t.getMonthValue()));
                case 'd' -> b.append(String.format(pad2, t.getDayOfMonth()));
                case 'H' -> b.append(String.format(pad2, t.getHour()));
                case 'I' -> b.append(String.format(pad2, (t.getHour() + 11) % 12 + 1));
                case 'M' -> b.append(String.format(pad2, t.getMinute()));
                case 'S' -> b.append(String.format(pad2, t.getSecond()));
                case 'p' -> b.append(t.getHour() < 12 ? "AM" : "PM");
                case 'j' -> b.append(String.format(noPad ? "%d" : "%03d", t.getDayOfYear()));
                case 'B' -> b.append(t.getMonth().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'b' -> b.append(t.getMonth().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'A' -> b.append(t.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'a' -> b.append(t.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case '%' -> b.append('%');
                default -> b.append('%').append(d);
            }
        }
        return b.toString();
    }
}
