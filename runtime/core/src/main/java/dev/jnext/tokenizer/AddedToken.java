package dev.jnext.tokenizer;

/**
 * A token of tokenizer.json's {@code added_tokens}: matched in the raw text before normalization and
 * pre-tokenization and never split. {@code special} ones (e.g. {@code <|im_end|>}) are dropped when
 * decoding with special tokens skipped; others (e.g. {@code <think>}) stay.
 *
 * @param id      its id
 * @param content its text
 * @param special whether it is special
 */
public record AddedToken(int id, String content, boolean special) {}
