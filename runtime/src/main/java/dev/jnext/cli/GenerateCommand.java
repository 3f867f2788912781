package dev.jnext.cli;

import dev.jnext.JnextException;
import dev.jnext.engine.Engine;
import dev.jnext.engine.EngineOptions;
import dev.jnext.engine.GenerationEvent;
import dev.jnext.engine.GenerationHandle;
import dev.jnext.engine.GenerationRequest;
import dev.jnext.engine.GenerationResult;
import dev.jnext.engine.SamplingParams;
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
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = {"Generate text from a prompt, streamed to stdout; load time, time to first token and",
                "prefill/decode speed go to stderr. Sampling defaults come from the checkpoint's",
                "generation_config.json, else greedy."})
public final class GenerateCommand implements Callable<Integer> {

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

    @Option(names = "--presence-penalty", description = "0 = off (default: 0)")
    Float presencePenalty;

    @Option(names = "--seed", defaultValue = "0", description = "sampling seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--stop", description = "stop when this text appears (repeatable)")
    List<String> stops = new ArrayList<>();

    @Mixin
    EngineOptionsMixin engineOptions = new EngineOptionsMixin();

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        if (system != null && !chat) throw new JnextException("--system needs --chat");
        if (noThinking && !chat) throw new JnextException("--no-thinking needs --chat");
        EngineOptions options = engineOptions.toOptions(1, tokenizerDir);
        if (prompt == null && System.console() != null && System.console().isTerminal()) {
            throw new JnextException("no prompt: pass --prompt TEXT or pipe it on stdin");
        }
        long t0 = System.nanoTime();
        try (Engine engine = Engine.open(model, options)) {
            long t1 = System.nanoTime();
            String text = prompt != null ? prompt : readStdin();
            if (text.isEmpty() && !chat) throw new JnextException("no prompt: pass --prompt TEXT or pipe it on stdin");
            GenerationRequest.Prompt p;
            if (chat) {
                List<ChatMessage> messages = new ArrayList<>();
                if (system != null) messages.add(ChatMessage.system(system));
                messages.add(ChatMessage.user(text));
                GenerationRequest.Prompt.Chat c = GenerationRequest.Prompt.Chat.of(messages);
                p = new GenerationRequest.Prompt.Chat(c.messages(), null,
                        noThinking ? Map.of("enable_thinking", false) : Map.of());
            } else {
                p = new GenerationRequest.Prompt.Text(text);
            }
            SamplingParams sampling = engine.generationConfig().sampling(temperature, topK, topP, minP, repetitionPenalty,
                    presencePenalty, seed);
            GenerationHandle handle = engine.submit(GenerationRequest.of(p).sampling(sampling).maxTokens(maxNewTokens)
                    .stop(stops).build());
            err.printf("jnext: loaded %s in %.2f s (%s); prompt %d tokens; %s; eos %s%n",
                    model, (t1 - t0) / 1e9, engine.device(), handle.promptTokens(), describe(sampling), engine.eosTokenIds());
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
            err.printf("jnext: time to first token %.0f ms; prefill %.1f tok/s (%d tokens); decode %.1f tok/s (%d tokens); stopped: %s%n",
                    t.firstToken() / 1e6, t.prefillTokensPerSecond(), t.promptTokens(), t.decodeTokensPerSecond(),
                    Math.max(0, t.generatedTokens() - 1), r.finishReason().name().toLowerCase(java.util.Locale.ROOT).replace('_', ' '));
            err.flush();
        }
        return 0;
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
