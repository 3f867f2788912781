package dev.jnext.engine;

/** Why a generation ended normally. */
public enum FinishReason {
    /** the model produced one of the checkpoint's end-of-sequence ids */
    EOS,
    /** the model produced one of the request's stop token ids */
    STOP_TOKEN,
    /** one of the request's stop strings appeared */
    STOP_STRING,
    /** the request's token budget was used up */
    MAX_TOKENS,
    /** the sequence reached the model's context length */
    CONTEXT_FULL,
    /** the caller cancelled it (or its client went away) */
    CANCELLED;

    /** OpenAI's {@code finish_reason}: "stop", "length", or null for a cancelled request. */
    public String openAiName() {
        return switch (this) {
            case EOS, STOP_TOKEN, STOP_STRING -> "stop";
            case MAX_TOKENS, CONTEXT_FULL -> "length";
            case CANCELLED -> null;
        };
    }
}
