package dev.jnext.engine;

import dev.jnext.tokenizer.QwenTokenizer;
import dev.jnext.tokenizer.TestTokenizers;

import java.util.Set;

/** Engines over a {@link ScriptedBackend}, for tests outside this package (the engine's constructor is package-private). */
public final class ScriptedEngines {
    private ScriptedEngines() {}

    /** An engine (2 slots, the Qwen3 tokenizer) whose every forward step throws an OutOfMemoryError. */
    public static Engine failingOnEveryStep() {
        QwenTokenizer tok = TestTokenizers.qwen3();
        ScriptedBackend backend = new ScriptedBackend(tok.encode("one two"), 151936, 1000, 2, 64);
        backend.throwAtStep = i -> new OutOfMemoryError("Java heap space");
        EngineOptions options = EngineOptions.defaults().withMaxSequences(2).withMaxStepTokens(64).withQueueLimit(16);
        return new Engine(backend, tok, TestTokenizers.qwen3Dir(), GenerationConfig.none(), Set.of(), options, "scripted");
    }
}
