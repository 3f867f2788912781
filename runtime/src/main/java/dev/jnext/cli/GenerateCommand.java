package dev.jnext.cli;

import dev.jnext.JnextException;
import dev.jnext.engine.CpuSequence;
import dev.jnext.engine.EosTokens;
import dev.jnext.engine.SequenceModel;
import dev.jnext.exec.Backends;
import dev.jnext.exec.CudaModel;
import dev.jnext.exec.CudaOptions;
import dev.jnext.exec.CudaSession;
import dev.jnext.model.ModelConfig;
import dev.jnext.engine.GenerationConfig;
import dev.jnext.engine.Generator;
import dev.jnext.engine.SamplingParams;
import dev.jnext.model.Qwen3NextModel;
import dev.jnext.tokenizer.ChatMessage;
import dev.jnext.tokenizer.ChatTemplate;
import dev.jnext.tokenizer.QwenTokenizer;
import dev.jnext.tokenizer.TokenizerConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;

/** {@code jnext generate}: streams a model's continuation of a prompt (or its chat reply) to stdout. */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false, sortSynopsis = false,
        description = "Generate text from a prompt and stream it to stdout. Load time, time to first token and prefill and decode speed go to stderr. Sampling flags left out take the checkpoint's generation_config.json values, else greedy.")
public final class GenerateCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--prompt", paramLabel = "TEXT", order = 10,
            description = "The prompt (with --chat: the user message); default: stdin, without its final newline.")
    String prompt;

    @Option(names = "--chat", order = 11, description = "Format the prompt as a user message with the chat template.")
    boolean chat;

    @Option(names = "--system", paramLabel = "TEXT", order = 12, description = "System message (needs --chat).")
    String system;

    @Option(names = "--no-thinking", order = 13, description = "Pass enable_thinking=false to the chat template (Qwen3; needs --chat).")
    boolean noThinking;

    @Option(names = "--max-new-tokens", paramLabel = "N", defaultValue = "256", order = 20,
            description = "Most tokens to generate, at least 1 (default: ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @Option(names = "--stop", paramLabel = "TEXT", order = 21,
            description = "Stop when this text appears; it is not printed (repeatable).")
    List<String> stops = new ArrayList<>();

    @Mixin
    SamplingOptions samplingOptions;

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        // every option is checked before anything is read or loaded
        samplingOptions.validate();
        if (maxNewTokens < 1) throw new JnextException("--max-new-tokens must be at least 1, got " + maxNewTokens);
        for (String stop : stops) if (stop.isEmpty()) throw new JnextException("--stop needs a non-empty text");
        if (system != null && !chat) throw new JnextException("--system needs --chat");
        if (noThinking && !chat) throw new JnextException("--no-thinking needs --chat");
        Path model = modelOptions.modelDir();
        Path tokDir = modelOptions.tokenizerDir();
        if (prompt == null && Terminal.interactive()) {
            throw new JnextException("no prompt: pass --prompt TEXT or pipe it on stdin");
        }
        String text = prompt != null ? prompt : withoutFinalNewline(new String(System.in.readAllBytes(), StandardCharsets.UTF_8));
        if (text.isEmpty() && !chat) throw new JnextException("no prompt: pass --prompt TEXT or pipe it on stdin");
        GenerationConfig generationConfig = GenerationConfig.read(model);
        SamplingParams sampling = samplingOptions.resolve(generationConfig, model);

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
        ModelConfig config = ModelConfig.load(model);
        Backends.Choice choice = modelOptions.resolveDevice(config, why -> {
            err.println("jnext: --device auto: running on the CPU (" + why + ")");
            err.flush();
        });
        try (Loaded loaded = Loaded.open(choice, model, modelOptions.cudaOptions(CudaOptions.defaults().withMaxSequences(1)))) {
            SequenceModel sequence = loaded.sequence();
            long t2 = System.nanoTime();
            Set<Integer> eos = EosTokens.of(generationConfig, config, tokenizerConfig, tokenizer);
            err.printf("jnext: loaded %s in %.2f s (%s), tokenizer in %.2f s; prompt %s; %s; eos %s%n",
                    model, (t2 - t1) / 1e9, loaded.device(), (t1 - t0) / 1e9, Plural.of(ids.length, "token"),
                    SamplingOptions.describe(sampling), eos);
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
            String decode = t.decodeSteps() == 0 ? "no decode step"
                    : String.format("decode %.1f tok/s (%s)", t.decodeTokensPerSecond(), Plural.of(t.decodeSteps(), "token"));
            err.printf("jnext: time to first token %.0f ms; prefill %.1f tok/s (%s); %s; stopped: %s%n",
                    t.firstTokenNanos() / 1e6, t.prefillTokensPerSecond(), Plural.of(t.promptTokens(), "token"), decode,
                    r.finishReason().name().toLowerCase(java.util.Locale.ROOT).replace('_', ' '));
            err.flush();
        }
        return 0;
    }

    /** The model on the chosen device and one sequence on it, closed together. */
    private record Loaded(String device, SequenceModel sequence, AutoCloseable owner) implements AutoCloseable {
        static Loaded open(Backends.Choice choice, Path model, CudaOptions options) {
            if (choice == Backends.Choice.CPU) {
                Qwen3NextModel m = Qwen3NextModel.load(model);
                return new Loaded("cpu", new CpuSequence(m), m);
            }
            CudaModel m = CudaModel.load(model, options, bytes -> {});
            try {
                return new Loaded(m.deviceName(), new CudaSession(m), m);
            } catch (RuntimeException e) {
                m.close();
                throw e;
            }
        }

        @Override
        public void close() {
            try {
                if (sequence instanceof AutoCloseable c) c.close();
            } catch (Exception e) {
                throw e instanceof RuntimeException r ? r : new JnextException(e.getMessage(), e);
            } finally {
                try {
                    owner.close();
                } catch (Exception e) {
                    throw e instanceof RuntimeException r ? r : new JnextException(e.getMessage(), e);
                }
            }
        }
    }

    /** The text without one final "\n" or "\r\n": what {@code echo} and editors add to a prompt, as other CLIs drop it. */
    static String withoutFinalNewline(String text) {
        if (text.endsWith("\r\n")) return text.substring(0, text.length() - 2);
        if (text.endsWith("\n")) return text.substring(0, text.length() - 1);
        return text;
    }
}
