package dev.jnext.structured;

/**
 * A byte-level pushdown automaton for the JSON documents of a {@link JsonGrammar}: {@link #feed} advances a state by
 * one byte or says the byte leads nowhere. A state is a stack of frames kept in a {@code long[]} (two longs a frame:
 * the packed frame and a 64-bit set — an object's seen properties, a key's remaining ones), so that it can be copied,
 * compared and hashed cheaply: {@link TokenMasks} walks a trie of the vocabulary with it and caches masks by it.
 *
 * <p>The automaton accepts exactly the prefixes that can still be completed into a document of the grammar (every
 * grammar node is satisfiable, and each transition checks what is left: required keys, item counts, the nesting
 * limit), so a mask built from it never leads generation into a dead end. What it writes:
 * <ul>
 *   <li>RFC 8259 JSON; strings are checked as UTF-8 (no overlong forms, no surrogates, no control characters) and
 *       escapes; numbers by the JSON grammar ({@code integer}: no fraction, no exponent).</li>
 *   <li>Whitespace between tokens, at most {@value #MAX_WHITESPACE} bytes in one place (a model cannot pad forever),
 *       none after the document: then only the end of the sequence.</li>
 *   <li>Object keys of a schema with properties: each at most once, in any order, spelled as Jackson writes them
 *       (no {@code \\u} or {@code \/} escapes, so a key cannot be repeated under another spelling); {@code }} only once
 *       the required ones are there. Enum and const values are written as Jackson writes them.</li>
 *   <li>At most {@value JsonGrammar#MAX_NESTING} objects and arrays one inside the other.</li>
 * </ul>
 * Not thread-safe by itself: states are plain arrays owned by their caller.
 */
final class JsonAutomaton {
    private JsonAutomaton() {}

    /** Most whitespace bytes in one gap between tokens. */
    static final int MAX_WHITESPACE = 24;
    /** Most frames on the stack: the root, the containers, a key or scalar on top. */
    static final int MAX_FRAMES = JsonGrammar.MAX_NESTING + 2;

    // frame kinds
    static final int ROOT = 0, OBJECT = 1, KEY = 2, ARRAY = 3, STRING = 4, NUMBER = 5, LITERAL = 6;
    // root states
    static final int R_START = 0, R_VALUE = 1, R_DONE = 2;
    // object states
    static final int O_START = 0, O_COLON = 1, O_BEFORE_VALUE = 2, O_VALUE = 3, O_AFTER = 4, O_NEXT = 5;
    // array states
    static final int A_START = 0, A_VALUE = 1, A_AFTER = 2, A_NEXT = 3;
    // string states (STRING and KEY frames)
    static final int S_NORMAL = 0, S_ESCAPE = 1, S_HEX1 = 2, S_HEX2 = 3, S_HEX3 = 4, S_HEX4 = 5,
            S_CONT1 = 6, S_CONT2 = 7, S_CONT3 = 8, S_E0 = 9, S_ED = 10, S_F0 = 11, S_F4 = 12;
    private static final int CLOSE = -2;
    // number states
    static final int N_MINUS = 0, N_ZERO = 1, N_INT = 2, N_DOT = 3, N_FRAC = 4, N_E = 5, N_ESIGN = 6, N_EXP = 7;
    /** The property index of a key not among the listed properties. */
    static final int ADDITIONAL = 0xFFFF;

    // ---- frames: node[0,20) kind[20,24) state[24,32) whitespace[32,40) aux+1[40,64) ----

    static long frame(int node, int kind, int state, int ws, int aux) {
        return (node & 0xFFFFFL) | ((long) kind << 20) | ((long) state << 24) | ((long) ws << 32) | ((long) (aux + 1) << 40);
    }

    static int node(long f) {
        return (int) (f & 0xFFFFF);
    }

    static int kind(long f) {
        return (int) (f >>> 20) & 0xF;
    }

    static int state(long f) {
        return (int) (f >>> 24) & 0xFF;
    }

    static int ws(long f) {
        return (int) (f >>> 32) & 0xFF;
    }

    static int aux(long f) {
        return (int) (f >>> 40) - 1;
    }

    private static long withState(long f, int state) {
        return (f & ~(0xFFL << 24) & ~(0xFFL << 32)) | ((long) state << 24); // a new state starts with no whitespace
    }

    private static long withAux(long f, int aux) {
        return (f & 0xFFFFFFFFFFL) | ((long) (aux + 1) << 40);
    }

    /** The start state of a document: the root frame, before the value. Returns the stack size (1). */
    static int start(JsonGrammar g, long[] st) {
        st[0] = frame(g.root, ROOT, R_START, 0, -1);
        st[1] = 0;
        return 1;
    }

    /** A new stack array large enough for any state. */
    static long[] newStack() {
        return new long[2 * MAX_FRAMES];
    }

    private static boolean isWhitespace(int b) {
        return b == ' ' || b == '\n' || b == '\t' || b == '\r';
    }

    /** Whitespace in a gap of the top frame: the new size, or −1 past the limit. */
    private static int whitespace(long[] st, int size) {
        long f = st[2 * size - 2];
        int ws = ws(f);
        if (ws >= MAX_WHITESPACE) return -1;
        st[2 * size - 2] = (f & ~(0xFFL << 32)) | ((long) (ws + 1) << 32);
        return size;
    }

    /**
     * Advances the state {@code st[0, 2·size)} by byte {@code b} in place.
     *
     * @return the new stack size, or −1 when no document of the grammar continues this way (the array then holds garbage)
     */
    static int feed(JsonGrammar g, long[] st, int size, int b) {
        while (true) {
            int top = 2 * size - 2;
            long f = st[top];
            switch (kind(f)) {
                case ROOT -> {
                    int s = state(f);
                    if (s != R_START) return -1; // done: nothing more, not even whitespace
                    if (isWhitespace(b)) return whitespace(st, size);
                    st[top] = withState(f, R_VALUE);
                    return startValue(g, st, size, g.root, b);
                }
                case OBJECT -> {
                    return object(g, st, size, f, b);
                }
                case KEY -> {
                    return key(g, st, size, f, b);
                }
                case ARRAY -> {
                    return array(g, st, size, f, b);
                }
                case STRING -> {
                    int s = string(state(f), b, false);
                    if (s == CLOSE) return pop(st, size);
                    if (s < 0) return -1;
                    st[top] = withState(f, s);
                    return size;
                }
                case NUMBER -> {
                    int s = number(g, f, b);
                    if (s >= 0) {
                        st[top] = withState(f, s);
                        return size;
                    }
                    if (!numberComplete(state(f))) return -1;
                    size = pop(st, size); // the number ended before b: b goes to the container
                }
                case LITERAL -> {
                    ByteTrie t = g.nodes[node(f)].literals;
                    int at = aux(f);
                    int c = t.child(at, b);
                    if (c >= 0) {
                        st[top] = withAux(f, c);
                        return size;
                    }
                    if (t.value[at] < 0) return -1;
                    size = pop(st, size); // a whole literal (a number in an enum, true, ...) ended before b
                }
                default -> throw new IllegalStateException("frame kind " + kind(f));
            }
        }
    }

    /** Whether the document may end here (the root value is complete). */
    static boolean canEnd(JsonGrammar g, long[] st, int size) {
        for (int i = size - 1; i >= 0; i--) {
            long f = st[2 * i];
            switch (kind(f)) {
                case ROOT -> {
                    return state(f) == R_DONE || state(f) == R_VALUE && i < size - 1;
                }
                case NUMBER -> {
                    if (!numberComplete(state(f))) return false;
                }
                case LITERAL -> {
                    if (g.nodes[node(f)].literals.value[aux(f)] < 0) return false;
                }
                default -> {
                    return false;
                }
            }
        }
        return false;
    }

    /** Pops the top frame; the container below moves past the value it held. Returns the new size. */
    private static int pop(long[] st, int size) {
        size--;
        int top = 2 * size - 2;
        long f = st[top];
        st[top] = switch (kind(f)) {
            case ROOT -> withState(f, R_DONE);
            case OBJECT -> withState(f, O_AFTER);
            case ARRAY -> withState(f, A_AFTER);
            default -> throw new IllegalStateException("a value inside frame kind " + kind(f));
        };
        return size;
    }

    private static int push(long[] st, int size, long f, long set) {
        st[2 * size] = f;
        st[2 * size + 1] = set;
        return size + 1;
    }

    /** The first byte of a value of {@code nodeIndex}; the container (on top) is already in its value state. */
    private static int startValue(JsonGrammar g, long[] st, int size, int nodeIndex, int b) {
        JsonGrammar.Node n = g.nodes[nodeIndex];
        if (n.isEnum) {
            int c = n.literals.child(0, b);
            return c < 0 ? -1 : push(st, size, frame(nodeIndex, LITERAL, 0, 0, c), 0);
        }
        switch (b) {
            case '{' -> {
                if ((n.types & JsonGrammar.T_OBJECT) == 0 || size > JsonGrammar.MAX_NESTING) return -1;
                return push(st, size, frame(nodeIndex, OBJECT, O_START, 0, -1), 0);
            }
            case '[' -> {
                if ((n.types & JsonGrammar.T_ARRAY) == 0 || size > JsonGrammar.MAX_NESTING) return -1;
                return push(st, size, frame(nodeIndex, ARRAY, A_START, 0, 0), 0);
            }
            case '"' -> {
                if ((n.types & JsonGrammar.T_STRING) == 0) return -1;
                return push(st, size, frame(nodeIndex, STRING, S_NORMAL, 0, -1), 0);
            }
            case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9' -> {
                if ((n.types & (JsonGrammar.T_NUMBER | JsonGrammar.T_INTEGER)) == 0) return -1;
                int s = b == '-' ? N_MINUS : b == '0' ? N_ZERO : N_INT;
                return push(st, size, frame(nodeIndex, NUMBER, s, 0, -1), 0);
            }
            default -> {
                if (n.literals == null) return -1;
                int c = n.literals.child(0, b);
                return c < 0 ? -1 : push(st, size, frame(nodeIndex, LITERAL, 0, 0, c), 0);
            }
        }
    }

    private static int object(JsonGrammar g, long[] st, int size, long f, int b) {
        JsonGrammar.Node n = g.nodes[node(f)];
        int top = 2 * size - 2;
        long seen = st[top + 1];
        int s = state(f);
        if (isWhitespace(b)) return s == O_VALUE ? -1 : whitespace(st, size);
        switch (s) {
            case O_START, O_NEXT -> {
                if (b == '}' && s == O_START) return n.required == 0 ? pop(st, size) : -1;
                if (b != '"' || !n.canTakeKey(seen)) return -1;
                st[top] = withState(f, O_VALUE); // the key frame on top; it sets O_COLON when it closes
                return push(st, size, frame(node(f), KEY, S_NORMAL, 0, n.keys != null ? 0 : -1), n.listed & ~seen);
            }
            case O_COLON -> {
                if (b != ':') return -1;
                st[top] = withState(f, O_BEFORE_VALUE);
                return size;
            }
            case O_BEFORE_VALUE -> {
                int key = aux(f);
                st[top] = withState(f, O_VALUE);
                return startValue(g, st, size, key == ADDITIONAL ? n.additional : n.propertyNodes[key], b);
            }
            case O_AFTER -> {
                if (b == ',') {
                    if (!n.canTakeKey(seen)) return -1;
                    st[top] = withState(f, O_NEXT);
                    return size;
                }
                if (b == '}') return (n.required & ~seen) == 0 ? pop(st, size) : -1;
                return -1;
            }
            default -> {
                return -1;
            }
        }
    }

    private static int key(JsonGrammar g, long[] st, int size, long f, int b) {
        JsonGrammar.Node n = g.nodes[node(f)];
        int top = 2 * size - 2;
        long remaining = st[top + 1];
        int at = aux(f);
        int s = string(state(f), b, n.keys != null);
        if (s == CLOSE) {
            int property;
            int c = at >= 0 ? n.keys.child(at, '"') : -1;
            if (c >= 0) {
                property = n.keys.value[c];
                if ((remaining & (1L << property)) == 0) return -1; // already written
            } else {
                if (n.additional < 0) return -1;
                property = ADDITIONAL;
            }
            size--; // the object below takes the key
            int o = top - 2;
            long of = st[o];
            st[o] = withAux(withState(of, O_COLON), property);
            if (property != ADDITIONAL) st[o + 1] |= 1L << property;
            return size;
        }
        if (s < 0) return -1;
        if (at >= 0) {
            int c = n.keys.child(at, b);
            if (c >= 0 && (n.keys.below[c] & remaining) != 0) at = c;
            else if (n.additional >= 0) at = c; // another key; a listed one is still followed to refuse writing it twice
            else return -1;
        } else if (n.additional < 0) {
            return -1;
        }
        st[top] = withAux(withState(f, s), at);
        return size;
    }

    private static int array(JsonGrammar g, long[] st, int size, long f, int b) {
        JsonGrammar.Node n = g.nodes[node(f)];
        int top = 2 * size - 2;
        int s = state(f);
        int count = aux(f);
        if (isWhitespace(b)) return s == A_VALUE ? -1 : whitespace(st, size);
        switch (s) {
            case A_START, A_NEXT -> {
                if (b == ']' && s == A_START) return n.minItems == 0 ? pop(st, size) : -1;
                if (n.maxItems >= 0 && count >= n.maxItems) return -1;
                st[top] = withAux(withState(f, A_VALUE), Math.min(count + 1, n.countBound()));
                return startValue(g, st, size, n.items, b);
            }
            case A_AFTER -> {
                if (b == ',') {
                    if (n.maxItems >= 0 && count >= n.maxItems) return -1;
                    st[top] = withState(f, A_NEXT);
                    return size;
                }
                if (b == ']') return count >= n.minItems ? pop(st, size) : -1;
                return -1;
            }
            default -> {
                return -1;
            }
        }
    }

    /**
     * One byte inside a string: the next string state, {@link #CLOSE} for the closing quote, or −1. Keys of objects with
     * listed properties take no {@code \\u} and no {@code \/} (one spelling per key).
     */
    static int string(int s, int b, boolean canonical) {
        switch (s) {
            case S_NORMAL -> {
                if (b == '"') return CLOSE;
                if (b == '\\') return S_ESCAPE;
                if (b < 0x20) return -1;
                if (b < 0x80) return S_NORMAL;
                if (b >= 0xC2 && b <= 0xDF) return S_CONT1;
                if (b == 0xE0) return S_E0;
                if (b == 0xED) return S_ED;
                if (b >= 0xE1 && b <= 0xEF) return S_CONT2;
                if (b == 0xF0) return S_F0;
                if (b == 0xF4) return S_F4;
                if (b >= 0xF1 && b <= 0xF3) return S_CONT3;
                return -1;
            }
            case S_ESCAPE -> {
                return switch (b) {
                    case '"', '\\', 'b', 'f', 'n', 'r', 't' -> S_NORMAL;
                    case '/' -> canonical ? -1 : S_NORMAL;
                    case 'u' -> canonical ? -1 : S_HEX1;
                    default -> -1;
                };
            }
            case S_HEX1, S_HEX2, S_HEX3, S_HEX4 -> {
                boolean hex = b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F';
                return !hex ? -1 : s == S_HEX4 ? S_NORMAL : s + 1;
            }
            case S_CONT1 -> {
                return b >= 0x80 && b <= 0xBF ? S_NORMAL : -1;
            }
            case S_CONT2 -> {
                return b >= 0x80 && b <= 0xBF ? S_CONT1 : -1;
            }
            case S_CONT3 -> {
                return b >= 0x80 && b <= 0xBF ? S_CONT2 : -1;
            }
            case S_E0 -> {
                return b >= 0xA0 && b <= 0xBF ? S_CONT1 : -1;
            }
            case S_ED -> {
                return b >= 0x80 && b <= 0x9F ? S_CONT1 : -1;
            }
            case S_F0 -> {
                return b >= 0x90 && b <= 0xBF ? S_CONT2 : -1;
            }
            case S_F4 -> {
                return b >= 0x80 && b <= 0x8F ? S_CONT2 : -1;
            }
            default -> {
                return -1;
            }
        }
    }

    /** The next number state for byte {@code b}, or −1 when {@code b} is not part of the number. */
    private static int number(JsonGrammar g, long f, int b) {
        boolean digit = b >= '0' && b <= '9';
        boolean fraction = (g.nodes[node(f)].types & JsonGrammar.T_NUMBER) != 0;
        return switch (state(f)) {
            case N_MINUS -> b == '0' ? N_ZERO : digit ? N_INT : -1;
            case N_ZERO -> fraction && b == '.' ? N_DOT : fraction && (b == 'e' || b == 'E') ? N_E : -1;
            case N_INT -> digit ? N_INT : fraction && b == '.' ? N_DOT : fraction && (b == 'e' || b == 'E') ? N_E : -1;
            case N_DOT, N_FRAC -> digit ? N_FRAC : state(f) == N_FRAC && (b == 'e' || b == 'E') ? N_E : -1;
            case N_E -> b == '+' || b == '-' ? N_ESIGN : digit ? N_EXP : -1;
            case N_ESIGN, N_EXP -> digit ? N_EXP : -1;
            default -> -1;
        };
    }

    private static boolean numberComplete(int s) {
        return s == N_ZERO || s == N_INT || s == N_FRAC || s == N_EXP;
    }

    /** Whether the top frame is inside a string where any run of plain characters keeps it alive (the fast mask path). */
    static boolean inFreeString(JsonGrammar g, long[] st, int size) {
        long f = st[2 * size - 2];
        int k = kind(f);
        if (state(f) != S_NORMAL) return false;
        if (k == STRING) return true;
        return k == KEY && g.nodes[node(f)].additional >= 0;
    }
}
