package dev.jnext.engine;

import dev.jnext.JnextException;

/** The engine was closed (or failed) and takes no more requests (HTTP 503). */
public final class EngineClosedException extends JnextException {
    /** The engine cannot take the request: {@code message} says why. */
    public EngineClosedException(String message) {
        super(message);
    }
}
