package dev.jnext.engine;

import java.util.List;

/**
 * What a {@link GenerationHandle} streams: {@link Tokens} while the request runs, then exactly one terminal event,
 * {@link Finished} or {@link Failed}. {@code nanoTime} is {@link System#nanoTime()} when the engine produced it.
 */
public sealed interface GenerationEvent {

    long nanoTime();

    default boolean isTerminal() {
        return !(this instanceof Tokens);
    }

    /**
     * Tokens generated in one step (usually one) and the text they completed: text can lag behind its tokens (a
     * character split over tokens, a possible start of a stop string) and can come with no token at the end.
     */
    record Tokens(String text, List<GeneratedToken> tokens, long nanoTime) implements GenerationEvent {}

    /** The request ended normally; {@code completionTokens} counts every generated token (an EOS one included). */
    record Finished(FinishReason reason, int promptTokens, int completionTokens, long nanoTime) implements GenerationEvent {}

    /** The request ended without finishing: the engine was closed, or the backend failed during its step. */
    record Failed(Kind kind, String message, long nanoTime) implements GenerationEvent {
        public enum Kind { ENGINE_CLOSED, BACKEND_ERROR, REJECTED }
    }
}
