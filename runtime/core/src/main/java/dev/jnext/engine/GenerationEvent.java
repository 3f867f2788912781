package dev.jnext.engine;

import java.util.List;

/**
 * What a {@link GenerationHandle} streams: {@link Tokens} while the request runs, then exactly one terminal event,
 * {@link Finished} or {@link Failed}. {@code nanoTime} is {@link System#nanoTime()} when the engine produced it.
 */
public sealed interface GenerationEvent {

    /** {@link System#nanoTime()} when the engine produced the event. */
    long nanoTime();

    /** Whether this is the request's last event ({@link Finished} or {@link Failed}). */
    default boolean isTerminal() {
        return !(this instanceof Tokens);
    }

    /**
     * Tokens generated in one step (usually one) and the text they completed: text can lag behind its tokens (a
     * character split over tokens, a possible start of a stop string) and can come with no token at the end.
     */
    record Tokens(String text, List<GeneratedToken> tokens, long nanoTime) implements GenerationEvent {}

    /**
     * The request ended normally; {@code completionTokens} counts every generated token (an EOS one included);
     * {@code cachedPromptTokens} of the {@code promptTokens} came from the prefix cache instead of being computed.
     */
    record Finished(FinishReason reason, int promptTokens, int completionTokens, long nanoTime, int cachedPromptTokens)
            implements GenerationEvent {
        /** A request none of whose prompt tokens came from the prefix cache. */
        public Finished(FinishReason reason, int promptTokens, int completionTokens, long nanoTime) {
            this(reason, promptTokens, completionTokens, nanoTime, 0);
        }
    }

    /** The request ended without finishing: the engine was closed, or the backend failed during its step. */
    record Failed(Kind kind, String message, long nanoTime) implements GenerationEvent {
        /** Why it failed. */
        public enum Kind {
            /** The engine was closed (or its thread ended) before the request finished. */
            ENGINE_CLOSED,
            /** The backend's forward step failed. */
            BACKEND_ERROR,
            /** The request can never run (e.g. its KV need exceeds the whole pool). */
            REJECTED
        }
    }
}
