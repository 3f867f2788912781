package dev.jnext.cli;

import dev.jnext.JnextException;
import dev.jnext.engine.Engine;
import dev.jnext.engine.EngineOptions;
import dev.jnext.engine.GenerationConfig;
import dev.jnext.engine.GenerationEvent;
import dev.jnext.engine.GenerationHandle;
import dev.jnext.engine.GenerationRequest;
import dev.jnext.engine.GenerationResult;
import dev.jnext.backend.SamplingParams;
import dev.jnext.tokenizer.ChatMessage;
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

    @Mixin
    EngineOptionsMixin engineOptions = new EngineOptionsMixin();

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
        EngineOptions options = engineOptions.toOptions(modelOptions.deviceOptions(), 1, tokDir, false);

        long t0 = System.nanoTime();
        try (Engine engine = Engine.open(model, options)) {
            long t1 = System.nanoTime();
            GenerationRequest.Prompt p;
            if (chat) {
                List<ChatMessage> messages = new ArrayList<>();
                if (system != null) messages.add(ChatMessage.system(system));
                messages.add(ChatMessage.user(text));
                GenerationRequest.Prompt.Chat c = GenerationRequest.Prompt.Chat.of(messages);
                p = new GenerationRequest.Prompt.Chat(c.messages(), null, noThinking ? Map.of("enable_thinking", false) : Map.of());
            } else {
                p = new GenerationRequest.Prompt.Text(text);
            }
            GenerationHandle handle = engine.submit(GenerationRequest.of(p).sampling(sampling).maxTokens(maxNewTokens).stop(stops).build());
            err.printf("jnext: loaded %s in %.2f s (%s); prompt %s; %s; eos %s%n", model, (t1 - t0) / 1e9, engine.deviceName(),
                    Plural.of(handle.promptTokens(), "token"), SamplingOptions.describe(sampling), engine.eosTokenIds());
            err.flush();
            for (GenerationEvent e : handle) {
                if (e instanceof GenerationEvent.Tokens t && !t.text().isEmpty()) {
                    out.print(t.text());
                    out.flush();
                    if (out.checkError()) {
                        handle.cancel();
                        throw new JnextException("stdout was closed; generation stopped");
                    }
                }
            }
            GenerationResult r = handle.await();
            out.println();
            out.flush();
            var t = r.timings();
            int decodeSteps = Math.max(0, t.generatedTokens() - 1);
            String decode = decodeSteps == 0 ? "no decode step"
                    : String.format("decode %.1f tok/s (%s)", t.decodeTokensPerSecond(), Plural.of(decodeSteps, "token"));
            err.printf("jnext: time to first token %.0f ms; prefill %.1f tok/s (%s); %s; stopped: %s%n",
                    t.firstToken() / 1e6, t.prefillTokensPerSecond(), Plural.of(t.promptTokens(), "token"), decode,
                    r.finishReason().name().toLowerCase(java.util.Locale.ROOT).replace('_', ' '));
            err.flush();
        }
        return 0;
    }

    /** The text without one final "\n" or "\r\n": what {@code echo} and editors add to a prompt, as other CLIs drop it. */
    static String withoutFinalNewline(String text) {
        if (text.endsWith("\r\n")) return text.substring(0, text.length() - 2);
        if (text.endsWith("\n")) return text.substring(0, text.length() - 1);
        return text;
    }
}
