package com.example.jnextsample;

import dev.jnext.JnextException;
import dev.jnext.engine.CpuSequence;
import dev.jnext.engine.EosTokens;
import dev.jnext.engine.Generator;
import dev.jnext.engine.SamplingParams;
import dev.jnext.engine.SequenceModel;
import dev.jnext.exec.Backends;
import dev.jnext.exec.CudaModel;
import dev.jnext.exec.CudaOptions;
import dev.jnext.exec.CudaSession;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.Qwen3NextModel;
import dev.jnext.tokenizer.ChatMessage;
import dev.jnext.tokenizer.ChatTemplate;
import dev.jnext.tokenizer.QwenTokenizer;

import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * Answers one chat message with a Qwen3-Next checkpoint through jnext's text API: tokenizer, chat template, end-of-
 * sequence ids, greedy sampling and streaming generation, on the GPU when jnext can use one, else on the CPU.
 *
 * <pre>
 *   java --enable-native-access=dev.jnext,dev.jnext.bindings -p LIBS -m com.example.jnextsample/com.example.jnextsample.Chat \
 *       MODEL_DIR TOKENIZER_DIR "message" [MAX_NEW_TOKENS]
 * </pre>
 *
 * The reply goes to stdout as it is generated, then one line with the token count and why generation stopped.
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
        QwenTokenizer tokenizer = QwenTokenizer.load(tokenizerDir);
        String prompt = ChatTemplate.load(tokenizerDir).render(List.of(ChatMessage.user(message)), true);
        Set<Integer> eos = EosTokens.of(modelDir, tokenizerDir, tokenizer);
        Generator.Options options = new Generator.Options(SamplingParams.greedy(), maxNewTokens, eos, List.of());

        // the GPU when a driver, a Hopper GPU and a geometry the kernels take are there; else the CPU reference
        ModelConfig config = ModelConfig.load(modelDir);
        boolean gpu = Backends.resolve("auto", config, why -> System.out.println("(on the CPU: " + why + ")"))
                == Backends.Choice.CUDA;
        Generator.Result result;
        if (gpu) {
            try (CudaModel model = CudaModel.load(modelDir, CudaOptions.defaults().withMaxSequences(1), bytes -> {});
                 CudaSession sequence = new CudaSession(model)) {
                result = generate(tokenizer, sequence, prompt, options);
            }
        } else {
            try (Qwen3NextModel model = Qwen3NextModel.load(modelDir);
                 CpuSequence sequence = new CpuSequence(model)) {
                result = generate(tokenizer, sequence, prompt, options);
            }
        }
        System.out.println();
        System.out.println("[" + result.tokenIds().length + " tokens on the " + (gpu ? "GPU" : "CPU") + ", stopped: "
                + result.finishReason() + "]");
    }

    private static Generator.Result generate(QwenTokenizer tokenizer, SequenceModel sequence, String prompt,
                                             Generator.Options options) {
        return new Generator(tokenizer).generate(sequence, tokenizer.encode(prompt), options, piece -> {
            System.out.print(piece);
            System.out.flush();
        });
    }
}
