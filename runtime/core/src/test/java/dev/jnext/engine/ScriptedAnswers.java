package dev.jnext.engine;

import dev.jnext.backend.ModelBackend;
import dev.jnext.backend.SamplingParams;

import dev.jnext.JnextException;
import dev.jnext.tokenizer.QwenTokenizer;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * Test-only: a backend whose every new sequence "generates" the tokens of the answer text set last, then EOS, and
 * which records each sequence's prompt; and an engine over it, for server tests that need a given model output
 * (tool calls, think blocks) through the real tokenizer, chat template and streaming path.
 */
public final class ScriptedAnswers implements ModelBackend {
    private final QwenTokenizer tokenizer;
    private final int eos;
    private final int slots;
    private volatile int[] answer;
    private final int[][] script;
    private final int[] next;
    private final boolean[] open;
    private final List<List<Integer>> prompts = new ArrayList<>();
    private final int[] promptOf;

    public ScriptedAnswers(QwenTokenizer tokenizer, int slots) {
        this.tokenizer = tokenizer;
        this.eos = tokenizer.idOf("<|im_end|>").orElseThrow();
        this.slots = slots;
        this.script = new int[slots][];
        this.next = new int[slots];
        this.open = new boolean[slots];
        this.promptOf = new int[slots];
        answer("");
    }

    /** An engine over a new backend of {@code slots} slots, with the tokenizer (and chat template) of {@code tokenizerDir}. */
    public static Engine engine(ScriptedAnswers backend, Path tokenizerDir, String modelName) {
        EngineOptions options = EngineOptions.defaults().withMaxSequences(backend.slots).withMaxStepTokens(4096).withQueueLimit(16);
        return new Engine(backend, backend.tokenizer, tokenizerDir, GenerationConfig.none(), Set.of(backend.eos), options, modelName);
    }

    /** The text that requests opened from now on answer (then EOS). */
    public void answer(String text) {
        int[] ids = tokenizer.encode(text);
        int[] withEos = Arrays.copyOf(ids, ids.length + 1);
        withEos[ids.length] = eos;
        this.answer = withEos;
    }

    /** The prompt of the last request opened, decoded. */
    public synchronized String lastPrompt() {
        if (prompts.isEmpty()) return null;
        List<Integer> p = prompts.getLast();
        return tokenizer.decode(p.stream().mapToInt(Integer::intValue).toArray(), false);
    }

    @Override public String device() { return "scripted"; }
    @Override public int vocabSize() { return 151936; }
    @Override public int contextLength() { return 32768; }
    @Override public int maxSequences() { return slots; }
    @Override public int maxStepTokens() { return 4096; }

    @Override
    public synchronized int freeSequences() {
        int n = 0;
        for (boolean o : open) if (!o) n++;
        return n;
    }

    @Override
    public synchronized int openSequence(SamplingParams sampling, int vocabLimit) {
        for (int s = 0; s < slots; s++) {
            if (!open[s]) {
                open[s] = true;
                script[s] = answer;
                next[s] = 0;
                prompts.add(new ArrayList<>());
                promptOf[s] = prompts.size() - 1;
                return s;
            }
        }
        throw new JnextException("no free slot");
    }

    @Override
    public boolean reserve(int slot, int totalTokens) {
        return totalTokens <= contextLength();
    }

    @Override
    public synchronized void closeSequence(int slot) {
        open[slot] = false;
    }

    @Override
    public synchronized List<StepOutput> step(List<StepInput> inputs) {
        List<StepOutput> out = new ArrayList<>();
        for (StepInput in : inputs) {
            if (next[in.slot()] == 0) for (int t : in.tokens()) prompts.get(promptOf[in.slot()]).add(t); // the prompt, not the echo
            if (!in.sample()) {
                out.add(StepOutput.NONE);
                continue;
            }
            int[] s = script[in.slot()];
            int id = s[Math.min(next[in.slot()]++, s.length - 1)];
            out.add(new StepOutput(id, -0.25f, new int[]{id}, new float[]{-0.25f}));
        }
        return out;
    }

    @Override
    public void close() { }
}
