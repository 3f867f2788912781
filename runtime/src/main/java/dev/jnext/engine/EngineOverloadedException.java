package dev.jnext.engine;

import dev.jnext.JnextException;

/** Every sequence slot is busy and the queue is at its limit: try again later (HTTP 429). */
public final class EngineOverloadedException extends JnextException {
    public EngineOverloadedException(String message) {
        super(message);
    }
}
