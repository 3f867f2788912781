package dev.jnext.cli;

import dev.jnext.JnextException;
import dev.jnext.engine.CpuSequence;
import dev.jnext.engine.GenerationConfig;
import dev.jnext.engine.Generator;
import dev.jnext.engine.SamplingParams;
import dev.jnext.model.Qwen3NextModel;
import dev.jnext.tokenizer.ChatMessage;
import dev.jnext.tokenizer.ChatTemplate;
import dev.jnext.tokenizer.QwenTokenizer;
import dev.jnext.tokenizer.TokenizerConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;

/** {@code jnext generate}: streams a model's continuation of a prompt (or its chat reply) to stdout. */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = {"Generate text from a prompt, streamed to stdout; load time, time to first token and",
                "prefill/decode speed go to stderr. Sampling defaults come from the checkpoint's",
                "generation_config.json, else greedy."})
public final class GenerateCommand implements Callable<Integer> {

    enum Device { auto, cpu, cuda }

    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, description = "Hugging Face checkpoint folder (config.json + safetensors)")
    Path model;

    @Option(names = "--tokenizer", description = "folder with tokenizer.json (+ tokenizer_config.json); default: --model")
    Path tokenizerDir;

    @Option(names = "--prompt", description = "the prompt (with --chat: the user message); default: read stdin")
    String prompt;

    @Option(names = "--chat", description = "format the prompt as a user message with the chat template")
    boolean chat;

    @Option(names = "--system", description = "system message (with --chat)")
    String system;

    @Option(names = "--no-thinking", description = "with --chat: pass enable_thinking=false to the template (Qwen3)")
    boolean noThinking;

    @Option(names = "--max-new-tokens", defaultValue = "256", description = "most tokens to generate (default: ${DEFAULT-VALUE})")
    int maxNewTokens;

    @Option(names = "--temperature", description = "0 = greedy (default: generation_config.json, else 0)")
    Float temperature;

    @Option(names = "--top-k", description = "0 = off (default: generation_config.json, else 0)")
    Integer topK;

    @Option(names = "--top-p", description = "1 = off (default: generation_config.json, else 1)")
    Float topP;

    @Option(names = "--min-p", description = "0 = off (default: generation_config.json, else 0)")
    Float minP;

    @Option(names = "--repetition-penalty", description = "1 = off (default: generation_config.json, else 1)")
    Float repetitionPenalty;

    @Option(names = "--presence-penalty", defaultValue = "0", description = "0 = off (default: ${DEFAULT-VALUE})")
    float presencePenalty;

    @Option(names = "--seed", defaultValue = "0", description = "sampling seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--stop", description = "stop when this text appears (repeatable)")
    List<String> stops = new ArrayList<>();

    @Option(names = "--device", defaultValue = "auto", description = "auto, cpu or cuda (default: ${DEFAULT-VALUE}; auto = cpu for now)")
    Device device;

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        if (device == Device.cuda) {
            throw new JnextException("--device cuda: the CUDA runner is not available yet; use --device cpu (or auto)");
        }
        if (system != null && !chat) throw new JnextException("--system needs --chat");
        if (noThinking && !chat) throw new JnextException("--no-thinking needs --chat");
        if (!Files.isRegularFile(model.resolve("config.json"))) {
            throw new JnextException(model + "/config.json is missing: --model must be a Hugging Face checkpoint folder");
        }
        Path tokDir = tokenizerDir != null ? tokenizerDir : model;
        if (!Files.isRegularFile(tokDir.resolve("tokenizer.json"))) {
            throw new JnextException(tokDir.resolve("tokenizer.json") + " is missing"
                    + (tokenizerDir == null ? ": this checkpoint has no tokenizer (synthetic ones have none); pass --tokenizer DIR" : ""));
        }
        if (prompt == null && System.console() != null && System.console().isTerminal()) {
            throw new JnextException("no prompt: pass --prompt TEXT or pipe it on stdin");
        }
        String text = prompt != null ? prompt : readStdin();
        if (text.isEmpty() && !chat) throw new JnextException("no prompt: pass --prompt TEXT or pipe it on stdin");

        long t0 = System.nanoTime();
        QwenTokenizer tokenizer = QwenTokenizer.load(tokDir);
        TokenizerConfig tokenizerConfig = TokenizerConfig.read(tokDir);
        String promptText = text;
        if (chat) {
            List<ChatMessage> messages = new ArrayList<>();
            if (system != null) messages.add(ChatMessage.system(system));
            messages.add(ChatMessage.user(text));
            ChatTemplate template = ChatTemplate.load(tokDir);
            promptText = template.render(messages, true, noThinking ? Map.of("enable_thinking", false) : Map.of());
        }
        int[] ids = tokenizer.encode(promptText);
        long t1 = System.nanoTime();
        GenerationConfig generationConfig = GenerationConfig.read(model);
        try (Qwen3NextModel m = Qwen3NextModel.load(model); CpuSequence sequence = new CpuSequence(m)) {
            long t2 = System.nanoTime();
            Set<Integer> eos = new LinkedHashSet<>(generationConfig.eosTokenIds());
            eos.addAll(m.config().eosTokenIds());
            tokenizerConfig.eosToken().ifPresent(t -> tokenizer.idOf(t).ifPresent(eos::add));
            SamplingParams sampling = sampling(generationConfig);
            err.printf("jnext: loaded %s in %.2f s (cpu), tokenizer in %.2f s; prompt %d tokens; %s; eos %s%n",
                    model, (t2 - t1) / 1e9, (t1 - t0) / 1e9, ids.length, describe(sampling), eos);
            err.flush();
            Generator.Options options = new Generator.Options(sampling, maxNewTokens, eos, stops);
            Generator.Result r = new Generator(tokenizer).generate(sequence, ids, options, piece -> {
                out.print(piece);
                out.flush();
                if (out.checkError()) throw new JnextException("stdout was closed; generation stopped");
            });
            out.println();
            out.flush();
            var t = r.timings();
            err.printf("jnext: time to first token %.0f ms; prefill %.1f tok/s (%d tokens); decode %.1f tok/s (%d tokens); stopped: %s%n",
                    t.firstTokenNanos() / 1e6, t.prefillTokensPerSecond(), t.promptTokens(), t.decodeTokensPerSecond(),
                    t.decodeSteps(), r.finishReason().name().toLowerCase(java.util.Locale.ROOT).replace('_', ' '));
            err.flush();
        }
        return 0;
    }

    private SamplingParams sampling(GenerationConfig g) {
        boolean sample = g.doSample().orElse(true);
        float t = temperature != null ? temperature : sample ? g.temperature().orElse(0f) : 0f;
        return new SamplingParams(t,
                topK != null ? topK : g.topK().orElse(0),
                topP != null ? topP : g.topP().orElse(1f),
                minP != null ? minP : g.minP().orElse(0f),
                repetitionPenalty != null ? repetitionPenalty : g.repetitionPenalty().orElse(1f),
                presencePenalty, seed);
    }

    private static String describe(SamplingParams s) {
        if (s.isGreedy()) return "greedy" + (s.repetitionPenalty() != 1 ? " repetition-penalty=" + s.repetitionPenalty() : "");
        return String.format("temperature=%s top-k=%d top-p=%s min-p=%s repetition-penalty=%s presence-penalty=%s seed=%d",
                s.temperature(), s.topK(), s.topP(), s.minP(), s.repetitionPenalty(), s.presencePenalty(), s.seed());
    }

    private static String readStdin() throws IOException {
        return new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
    }
}
