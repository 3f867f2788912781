package dev.jnext.engine;

import dev.jnext.JnextException;

/** A request ended with a {@link GenerationEvent.Failed} event; thrown by the blocking calls of a handle. */
public final class GenerationFailedException extends JnextException {
    private final GenerationEvent.Failed event;

    public GenerationFailedException(GenerationEvent.Failed event) {
        super(event.message());
        this.event = event;
    }

    public GenerationEvent.Failed event() {
        return event;
    }
}
