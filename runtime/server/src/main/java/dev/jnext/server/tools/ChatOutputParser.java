package dev.jnext.server.tools;

import com.fasterxml.jackson.databind.JsonNode;

import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Splits a Qwen3-family chat answer, as it streams, into reasoning, content and tool calls.
 *
 * <ul>
 * <li><b>Reasoning.</b> A {@code <think>…</think>} block at the very start of the answer (whitespace before it
 *     allowed) is reasoning. When the prompt already opened the block (thinking checkpoints' templates end the
 *     generation prompt with {@code <think>\n}: {@link Settings#startsInReasoning()}), the answer starts inside it and
 *     has only {@code </think>}; without one (cut by max_tokens) it is all reasoning. Whitespace at the block's two
 *     ends is dropped (the templates write {@code <think>\n…\n</think>\n\n}), and so is whitespace between
 *     {@code </think>} and the content.
 * <li><b>Tool calls</b> (only when {@link Settings#callable()} is not empty): each {@code <tool_call>…</tool_call>}
 *     block outside the think block, read in the {@link ToolCallFormat} of the checkpoint. A call is delivered once its
 *     closing tag has arrived and it was checked (the JSON is one object, the function is one of {@code callable});
 *     a block that fails — bad JSON, unknown function, wrong XML, no closing tag by the end — is given back as content,
 *     exactly as written, and reported to the warning sink. Whitespace around delivered calls is dropped.
 *     {@link Settings#parallel()} false keeps the first call and drops the others (reported).
 * <li><b>Content</b>: the rest, exactly as written. Text that may be the start of a tag ({@code <tool_c}) is held
 *     back until the next text tells, so a partial tag never reaches the content; so is whitespace that may turn out
 *     to stand before a call.
 * </ul>
 *
 * The deltas of any split of the text add up to the same answer: {@link #parse} is {@link #feed} of the whole text
 * and {@link #finish}. Not thread-safe: one request's stream feeds one parser.
 */
public final class ChatOutputParser {
    static final String THINK = "<think>", THINK_END = "</think>", CALL = "<tool_call>", CALL_END = "</tool_call>";

    /**
     * What to parse.
     *
     * @param format            how the checkpoint writes calls
     * @param callable          the functions a call may name (name → the tool's function object, whose
     *                          {@code parameters} schema types XML values); empty: no call parsing, calls stay text
     * @param parallel          false: keep only the first call
     * @param startsInReasoning the prompt ends inside an open {@code <think>} block
     */
    public record Settings(ToolCallFormat format, Map<String, JsonNode> callable, boolean parallel, boolean startsInReasoning) {
        public Settings {
            callable = Map.copyOf(callable);
        }

        /** No tool calls; reasoning split off. */
        public static Settings reasoningOnly(boolean startsInReasoning) {
            return new Settings(ToolCallFormat.HERMES, Map.of(), true, startsInReasoning);
        }
    }

    private enum Mode { BEGIN, REASONING, CONTENT, CALL }

    private static final SecureRandom RANDOM = new SecureRandom();
    private static final String ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    private final Settings settings;
    private final Supplier<String> ids;
    private final Consumer<String> warnings;
    private final StringBuilder pending = new StringBuilder(); // text not yet classified
    private Mode mode;
    private boolean reasoningLeading = true;                     // drop whitespace at the reasoning's start
    private final StringBuilder reasoningSpace = new StringBuilder(); // trailing whitespace of the reasoning, held
    private boolean contentLeading;                              // drop whitespace (after </think> or a call)
    private final StringBuilder contentSpace = new StringBuilder();   // trailing whitespace of the content, held
    private String spaceBeforeCall = "";
    private int callScan;                                        // where to look for </tool_call> next
    private int calls, dropped;
    private boolean finished;
    private List<OutputDelta> out = new ArrayList<>();

    /**
     * @param ids      tool-call ids (null: {@code call_} and 24 random letters and digits)
     * @param warnings where malformed and dropped calls are reported (one line each)
     */
    public ChatOutputParser(Settings settings, Supplier<String> ids, Consumer<String> warnings) {
        this.settings = settings;
        this.ids = ids != null ? ids : ChatOutputParser::randomId;
        this.warnings = warnings != null ? warnings : w -> { };
        this.mode = settings.startsInReasoning() ? Mode.REASONING : Mode.BEGIN;
    }

    /** A whole answer, split. */
    public static ParsedOutput parse(Settings settings, String text, Supplier<String> ids, Consumer<String> warnings) {
        ChatOutputParser p = new ChatOutputParser(settings, ids, warnings);
        List<OutputDelta> all = new ArrayList<>(p.feed(text));
        all.addAll(p.finish());
        return ParsedOutput.of(all);
    }

    /** A tool-call id: {@code call_} and 24 random letters and digits. */
    public static String randomId() {
        StringBuilder s = new StringBuilder("call_");
        for (int i = 0; i < 24; i++) s.append(ID_CHARS.charAt(RANDOM.nextInt(ID_CHARS.length())));
        return s.toString();
    }

    /** The deltas that {@code text}, appended to the answer so far, completes (maybe none: held back). */
    public List<OutputDelta> feed(String text) {
        if (finished) throw new IllegalStateException("the answer has ended");
        pending.append(text);
        return run(false);
    }

    /** The answer has ended: what was held back. */
    public List<OutputDelta> finish() {
        if (finished) return List.of();
        List<OutputDelta> last = run(true);
        finished = true;
        return last;
    }

    /** Calls delivered so far. */
    public int toolCalls() {
        return calls;
    }

    /** Calls dropped because parallel_tool_calls was false. */
    public int droppedCalls() {
        return dropped;
    }

    private List<OutputDelta> run(boolean end) {
        out = new ArrayList<>();
        loop:
        while (true) {
            switch (mode) {
                case BEGIN -> {
                    int i = skipWhitespace(pending, 0);
                    int rest = pending.length() - i;
                    if (rest >= THINK.length()) {
                        if (startsWith(pending, THINK, i)) {
                            pending.delete(0, i + THINK.length());
                            mode = Mode.REASONING;
                        } else {
                            mode = Mode.CONTENT;
                        }
                    } else if (end || (rest > 0 && !THINK.startsWith(pending.substring(i)))) {
                        mode = Mode.CONTENT;
                    } else {
                        break loop; // whitespace and maybe the start of <think>: wait
                    }
                }
                case REASONING -> {
                    int i = pending.indexOf(THINK_END);
                    if (i >= 0) {
                        reasoning(0, i);
                        pending.delete(0, i + THINK_END.length());
                        reasoningSpace.setLength(0);
                        contentLeading = true;
                        mode = Mode.CONTENT;
                        continue;
                    }
                    int upTo = pending.length() - (end ? 0 : partialSuffix(pending, THINK_END));
                    reasoning(0, upTo);
                    pending.delete(0, upTo);
                    break loop;
                }
                case CONTENT -> {
                    boolean parseCalls = !settings.callable().isEmpty();
                    int i = parseCalls ? pending.indexOf(CALL) : -1;
                    if (i >= 0) {
                        content(pending, 0, i);
                        spaceBeforeCall = contentSpace.toString();
                        contentSpace.setLength(0);
                        pending.delete(0, i + CALL.length());
                        callScan = 0;
                        mode = Mode.CALL;
                        continue;
                    }
                    int upTo = pending.length() - (end || !parseCalls ? 0 : partialSuffix(pending, CALL));
                    content(pending, 0, upTo);
                    pending.delete(0, upTo);
                    if (end && !contentSpace.isEmpty()) {
                        emit(new OutputDelta.Content(contentSpace.toString()));
                        contentSpace.setLength(0);
                    }
                    break loop;
                }
                case CALL -> {
                    int i = pending.indexOf(CALL_END, callScan);
                    if (i >= 0) {
                        String body = pending.substring(0, i);
                        pending.delete(0, i + CALL_END.length());
                        mode = Mode.CONTENT;
                        resolve(body);
                        continue;
                    }
                    callScan = Math.max(0, pending.length() - CALL_END.length() + 1);
                    if (!end) break loop;
                    warnings.accept("the model's tool call has no </tool_call> (" + brief(pending) + "): returned as text");
                    String raw = spaceBeforeCall + CALL + pending;
                    pending.setLength(0);
                    spaceBeforeCall = "";
                    mode = Mode.CONTENT;
                    content(raw, 0, raw.length());
                }
            }
        }
        return out;
    }

    private void resolve(String body) {
        ToolCallBodies.Result r = ToolCallBodies.parse(settings.format(), body, settings.callable());
        switch (r) {
            case ToolCallBodies.Call c -> {
                if (!settings.parallel() && calls > 0) {
                    dropped++;
                    warnings.accept("parallel_tool_calls is false: dropped the model's call " + (calls + dropped)
                            + " (" + c.name() + ")");
                } else {
                    emit(new OutputDelta.ToolCall(calls++, ids.get(), c.name(), c.arguments()));
                }
                spaceBeforeCall = "";
                contentLeading = true;
            }
            case ToolCallBodies.Malformed m -> {
                warnings.accept("malformed tool call from the model (" + m.why() + ", " + settings.format().name().toLowerCase()
                        + " format: " + brief(body) + "): returned as text");
                String raw = spaceBeforeCall + CALL + body + CALL_END;
                spaceBeforeCall = "";
                content(raw, 0, raw.length());
            }
        }
    }

    private void reasoning(int from, int to) {
        int a = from;
        if (reasoningLeading) {
            a = skipWhitespace(pending, a);
            if (a >= to) return;
            reasoningLeading = false;
        }
        int j = to;
        while (j > a && Character.isWhitespace(pending.charAt(j - 1))) j--;
        if (j == a) {
            reasoningSpace.append(pending, a, to);
            return;
        }
        emit(new OutputDelta.Reasoning(reasoningSpace + pending.substring(a, j)));
        reasoningSpace.setLength(0);
        reasoningSpace.append(pending, j, to);
    }

    private void content(CharSequence s, int from, int to) {
        int a = from;
        if (contentLeading) {
            while (a < to && Character.isWhitespace(s.charAt(a))) a++;
            if (a >= to) return;
            contentLeading = false;
        }
        int j = to;
        // trailing whitespace waits only where a call may follow (whitespace before a call is dropped)
        if (!settings.callable().isEmpty()) while (j > a && Character.isWhitespace(s.charAt(j - 1))) j--;
        if (j == a) {
            contentSpace.append(s, a, to);
            return;
        }
        emit(new OutputDelta.Content(contentSpace + s.subSequence(a, j).toString()));
        contentSpace.setLength(0);
        contentSpace.append(s, j, to);
    }

    /** Adds a delta, joined to the previous one when both are text of the same kind. */
    private void emit(OutputDelta d) {
        if (!out.isEmpty()) {
            OutputDelta last = out.getLast();
            if (last instanceof OutputDelta.Content a && d instanceof OutputDelta.Content b) {
                out.set(out.size() - 1, new OutputDelta.Content(a.text() + b.text()));
                return;
            }
            if (last instanceof OutputDelta.Reasoning a && d instanceof OutputDelta.Reasoning b) {
                out.set(out.size() - 1, new OutputDelta.Reasoning(a.text() + b.text()));
                return;
            }
        }
        out.add(d);
    }

    /** The length of the longest end of {@code s} that is a proper start of {@code tag}. */
    static int partialSuffix(CharSequence s, String tag) {
        for (int k = Math.min(tag.length() - 1, s.length()); k > 0; k--) {
            boolean match = true;
            for (int x = 0; x < k && match; x++) match = s.charAt(s.length() - k + x) == tag.charAt(x);
            if (match) return k;
        }
        return 0;
    }

    private static boolean startsWith(CharSequence s, String prefix, int at) {
        if (s.length() - at < prefix.length()) return false;
        for (int x = 0; x < prefix.length(); x++) if (s.charAt(at + x) != prefix.charAt(x)) return false;
        return true;
    }

    private static int skipWhitespace(CharSequence s, int i) {
        while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++;
        return i;
    }

    private static String brief(CharSequence s) {
        String t = s.toString().strip().replace("\n", "\\n");
        return t.length() > 120 ? t.substring(0, 120) + "..." : t;
    }
}
