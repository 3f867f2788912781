package dev.jnext.engine;

import dev.jnext.JnextException;

/** Every sequence slot is busy and the queue is at its limit: try again later (HTTP 429). */
public final class EngineOverloadedException extends JnextException {
    /** Slots and queue are full: {@code message} gives the numbers. */
    public EngineOverloadedException(String message) {
        super(message);
    }
}
