package dev.jnext.engine;

import dev.jnext.JnextException;

/** A request ended with a {@link GenerationEvent.Failed} event; thrown by the blocking calls of a handle. */
public final class GenerationFailedException extends JnextException {
    /** The terminal event. */
    private final GenerationEvent.Failed event;

    /** The exception of a {@link GenerationEvent.Failed} event; its message is the event's. */
    public GenerationFailedException(GenerationEvent.Failed event) {
        super(event.message());
        this.event = event;
    }

    /** The event: why and when the request failed. */
    public GenerationEvent.Failed event() {
        return event;
    }
}
