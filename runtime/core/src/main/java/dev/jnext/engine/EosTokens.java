package dev.jnext.engine;

import dev.jnext.model.ModelConfig;
import dev.jnext.tokenizer.QwenTokenizer;
import dev.jnext.tokenizer.TokenizerConfig;

import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.Set;

/**
 * The token ids that end generation for a checkpoint, gathered as Hugging Face's {@code generate} does: {@code
 * eos_token_id} of {@code generation_config.json} (an id or a list), then of {@code config.json}, then the id of the
 * tokenizer's {@code eos_token} ({@code tokenizer_config.json}). Qwen3 chat checkpoints name {@code <|im_end|>} and
 * {@code <|endoftext|>} this way; the engine stops on them.
 *
 * <pre>{@code
 * Set<Integer> eos = EosTokens.of(modelDir, tokenizerDir, tokenizer);
 * }</pre>
 */
public final class EosTokens {
    private EosTokens() {}

    /**
     * Reads the three files of a checkpoint (the first two from {@code modelDir}, {@code tokenizer_config.json} from
     * {@code tokenizerDir}, often the same folder); a missing generation_config.json or tokenizer_config.json adds no
     * ids.
     *
     * @param modelDir     the checkpoint folder (config.json, generation_config.json)
     * @param tokenizerDir the folder of tokenizer.json and tokenizer_config.json
     * @param tokenizer    the tokenizer of {@code tokenizerDir}, to turn {@code eos_token} into its id
     * @return the ids in the order found, without repeats; possibly empty
     * @throws dev.jnext.JnextException when one of the files is malformed (the message names it)
     */
    public static Set<Integer> of(Path modelDir, Path tokenizerDir, QwenTokenizer tokenizer) {
        return of(GenerationConfig.read(modelDir), ModelConfig.load(modelDir), TokenizerConfig.read(tokenizerDir), tokenizer);
    }

    /**
     * The same from files already read.
     *
     * @param generation the checkpoint's generation_config.json ({@link GenerationConfig#none()} when absent)
     * @param config     the checkpoint's config.json
     * @param tokenizerConfig the tokenizer folder's tokenizer_config.json
     * @param tokenizer  the tokenizer, to turn {@code eos_token} into its id (a token it does not know adds nothing)
     * @return the ids in the order found, without repeats; possibly empty
     */
    public static Set<Integer> of(GenerationConfig generation, ModelConfig config, TokenizerConfig tokenizerConfig,
                                  QwenTokenizer tokenizer) {
        Set<Integer> eos = new LinkedHashSet<>(generation.eosTokenIds());
        eos.addAll(config.eosTokenIds());
        tokenizerConfig.eosToken().ifPresent(t -> tokenizer.idOf(t).ifPresent(eos::add));
        return Collections.unmodifiableSet(eos);
    }
}
