package com.example.jnextsample;

import dev.jnext.JnextException;
import dev.jnext.engine.Engine;
import dev.jnext.engine.EngineOptions;
import dev.jnext.engine.GenerationEvent;
import dev.jnext.engine.GenerationHandle;
import dev.jnext.engine.GenerationRequest;
import dev.jnext.tokenizer.ChatMessage;

import java.nio.file.Path;
import java.util.List;

/**
 * Answers one chat message with a Qwen3-Next checkpoint through jnext's {@link Engine}: the checkpoint's tokenizer,
 * chat template, end-of-sequence ids and sampling defaults (greedy when it has none), streamed as it is generated, on
 * the GPU when jnext can use one, else on the CPU.
 *
 * <pre>
 *   java --enable-native-access=dev.jnext,dev.jnext.bindings -p LIBS -m com.example.jnextsample/com.example.jnextsample.Chat \
 *       MODEL_DIR TOKENIZER_DIR "message" [MAX_NEW_TOKENS]
 * </pre>
 *
 * The reply goes to stdout, then one line with the token count, the device and why generation stopped.
 */
public final class Chat {
    private Chat() {}

    public static void main(String[] args) {
        if (args.length < 3 || args.length > 4) {
            System.err.println("usage: Chat MODEL_DIR TOKENIZER_DIR MESSAGE [MAX_NEW_TOKENS]");
            System.exit(2);
        }
        try {
            run(Path.of(args[0]), Path.of(args[1]), args[2], args.length == 4 ? Integer.parseInt(args[3]) : 64);
        } catch (JnextException | NumberFormatException e) {
            System.err.println("jnext-sample: " + e.getMessage());  // every jnext error is one line naming the cause
            System.exit(2);
        }
    }

    static void run(Path modelDir, Path tokenizerDir, String message, int maxNewTokens) {
        // a real checkpoint folder holds its tokenizer: withTokenizer is for synthetic checkpoints, which have none
        EngineOptions options = EngineOptions.defaults().withTokenizer(tokenizerDir).withMaxSequences(1);
        try (Engine engine = Engine.open(modelDir, options)) {
            GenerationHandle reply = engine.submit(GenerationRequest.chat(List.of(ChatMessage.user(message)))
                    .maxTokens(maxNewTokens).build());
            for (GenerationEvent event : reply) {
                switch (event) {
                    case GenerationEvent.Tokens t -> {
                        System.out.print(t.text());
                        System.out.flush();
                    }
                    case GenerationEvent.Finished f -> System.out.println(System.lineSeparator() + "["
                            + f.completionTokens() + " tokens on " + engine.device() + ", stopped: " + f.reason() + "]");
                    case GenerationEvent.Failed f -> throw new JnextException("generation failed: " + f.message());
                }
            }
        }
    }
}
