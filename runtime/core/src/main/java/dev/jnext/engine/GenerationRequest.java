package dev.jnext.engine;

import dev.jnext.backend.SamplingParams;

import dev.jnext.JnextException;
import dev.jnext.tokenizer.ChatMessage;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * One generation job for {@link Engine#submit}.
 *
 * @param prompt           text, token ids, or chat messages rendered with the checkpoint's chat template
 * @param sampling         how tokens are chosen (seed included); null: the checkpoint's generation_config.json, else greedy
 * @param maxTokens        most tokens to generate (the context length also ends generation)
 * @param stopStrings      texts that end generation; the text returned stops before the first one
 * @param stopTokenIds     ids that end generation besides the checkpoint's EOS ids (not shown in the text)
 * @param ignoreEos        keep generating past the EOS ids (benchmarks with a fixed output length)
 * @param topLogprobs      how many of the most likely tokens to report with each generated token (0 to
 *                         {@link #MAX_TOP_LOGPROBS}); the sampled token's log-probability is always reported
 * @param responseFormat   what the answer must be: free text, or JSON enforced by constrained decoding (null: text)
 */
public record GenerationRequest(Prompt prompt, SamplingParams sampling, int maxTokens, List<String> stopStrings,
                                Set<Integer> stopTokenIds, boolean ignoreEos, int topLogprobs, ResponseFormat responseFormat) {

    /** Most top log-probabilities a request may ask for (OpenAI's limit). */
    public static final int MAX_TOP_LOGPROBS = 20;

    /** What to continue. */
    public sealed interface Prompt {
        /** Plain text, tokenized as is (nothing is added around it). */
        record Text(String text) implements Prompt {
            /** @throws NullPointerException naming {@code text} when it is null */
            public Text {
                Objects.requireNonNull(text, "text");
            }
        }

        /** Token ids of the model's vocabulary. */
        record Tokens(int[] ids) implements Prompt {
            /** Copies the ids. @throws NullPointerException naming {@code ids} when it is null */
            public Tokens {
                ids = Objects.requireNonNull(ids, "ids").clone();
            }

            @Override
            public boolean equals(Object o) {
                return o instanceof Tokens t && Arrays.equals(ids, t.ids);
            }

            @Override
            public int hashCode() {
                return Arrays.hashCode(ids);
            }

            @Override
            public String toString() {
                return "Tokens" + Arrays.toString(ids);
            }
        }

        /**
         * Chat messages (role, content and whatever else the template reads: reasoning_content, tool_calls, ...),
         * optional tool schemas (null or empty for none) and extra template variables (e.g. {@code enable_thinking};
         * null or empty for none), rendered with the generation prompt appended.
         */
        record Chat(List<Map<String, Object>> messages, List<Object> tools, Map<String, Object> templateVariables)
                implements Prompt {
            /**
             * Checks that there is a message and copies the collections.
             *
             * @throws NullPointerException naming {@code messages} when it is null
             * @throws JnextException       when there is no message
             */
            public Chat {
                Objects.requireNonNull(messages, "messages");
                if (messages.isEmpty()) throw new JnextException("a chat prompt needs at least one message");
                messages = List.copyOf(messages);
                tools = tools == null ? null : java.util.Collections.unmodifiableList(new ArrayList<>(tools));
                templateVariables = templateVariables == null ? Map.of() : java.util.Collections.unmodifiableMap(new LinkedHashMap<>(templateVariables));
            }

            /** Plain role/content messages, no tools, no template variables. */
            public static Chat of(List<ChatMessage> messages) {
                Objects.requireNonNull(messages, "messages");
                List<Map<String, Object>> maps = new ArrayList<>();
                for (ChatMessage m : messages) {
                    Map<String, Object> map = new LinkedHashMap<>();
                    map.put("role", m.role());
                    map.put("content", m.content());
                    maps.add(map);
                }
                return new Chat(maps, null, Map.of());
            }
        }
    }

    /**
     * Checks the prompt, the token budget and the number of top log-probabilities.
     *
     * @throws NullPointerException naming {@code prompt}, {@code stopStrings}, {@code stopTokenIds} or a null stop
     *                              string; {@code sampling} may be null (the checkpoint's defaults)
     * @throws JnextException       for a value out of its range
     */
    public GenerationRequest {
        Objects.requireNonNull(prompt, "prompt");
        Objects.requireNonNull(stopStrings, "stopStrings");
        Objects.requireNonNull(stopTokenIds, "stopTokenIds");
        for (String t : stopStrings) Objects.requireNonNull(t, "a stop string");
        if (maxTokens < 1) throw new JnextException("max tokens must be at least 1, got " + maxTokens);
        if (topLogprobs < 0 || topLogprobs > MAX_TOP_LOGPROBS) {
            throw new JnextException("top logprobs must be in 0.." + MAX_TOP_LOGPROBS + ", got " + topLogprobs);
        }
        stopStrings = List.copyOf(stopStrings);
        stopTokenIds = Set.copyOf(stopTokenIds);
        if (responseFormat == null) responseFormat = ResponseFormat.TEXT;
        if (ignoreEos && responseFormat.constrains()) {
            throw new JnextException("ignoring the end-of-sequence tokens cannot be combined with a JSON response format: "
                    + "a JSON answer ends with them once the document is whole");
        }
    }

    /** A free-text request (the record without a response format). */
    public GenerationRequest(Prompt prompt, SamplingParams sampling, int maxTokens, List<String> stopStrings,
                             Set<Integer> stopTokenIds, boolean ignoreEos, int topLogprobs) {
        this(prompt, sampling, maxTokens, stopStrings, stopTokenIds, ignoreEos, topLogprobs, ResponseFormat.TEXT);
    }

    /** This request with another prompt (every other field kept). */
    public GenerationRequest withPrompt(Prompt other) {
        return new GenerationRequest(other, sampling, maxTokens, stopStrings, stopTokenIds, ignoreEos, topLogprobs, responseFormat);
    }

    /** This request with another response format (every other field kept). */
    public GenerationRequest withResponseFormat(ResponseFormat format) {
        return new GenerationRequest(prompt, sampling, maxTokens, stopStrings, stopTokenIds, ignoreEos, topLogprobs, format);
    }

    /** A request for a plain text prompt. */
    public static Builder text(String text) {
        return new Builder(new Prompt.Text(text));
    }

    /** A request for a prompt given as token ids. */
    public static Builder tokens(int... ids) {
        return new Builder(new Prompt.Tokens(ids));
    }

    /** A request for a conversation, rendered with the checkpoint's chat template (generation prompt added). */
    public static Builder chat(List<ChatMessage> messages) {
        return new Builder(Prompt.Chat.of(messages));
    }

    /** A request for any prompt (a chat with tools or template variables, say). */
    public static Builder of(Prompt prompt) {
        return new Builder(prompt);
    }

    /** Defaults: the checkpoint's sampling, 256 tokens, no stop strings or extra stop ids, no top log-probs. */
    public static final class Builder {
        private final Prompt prompt;
        private SamplingParams sampling;
        private int maxTokens = 256;
        private final List<String> stopStrings = new ArrayList<>();
        private final Set<Integer> stopTokenIds = new LinkedHashSet<>();
        private boolean ignoreEos;
        private int topLogprobs;
        private ResponseFormat responseFormat = ResponseFormat.TEXT;

        private Builder(Prompt prompt) {
            this.prompt = Objects.requireNonNull(prompt, "prompt");
        }

        /** How tokens are chosen (default: the checkpoint's generation_config.json, else greedy). */
        public Builder sampling(SamplingParams s) {
            this.sampling = s;
            return this;
        }

        /** Greedy decoding. */
        public Builder greedy() {
            return sampling(SamplingParams.greedy());
        }

        /** Most tokens to generate (default 256). */
        public Builder maxTokens(int n) {
            this.maxTokens = n;
            return this;
        }

        /** Adds stop strings: generation ends where one appears, and it is not part of the text. */
        public Builder stop(String... texts) {
            Objects.requireNonNull(texts, "texts");
            for (String t : texts) stopStrings.add(Objects.requireNonNull(t, "a stop string"));
            return this;
        }

        /** Adds stop strings. */
        public Builder stop(List<String> texts) {
            Objects.requireNonNull(texts, "texts");
            for (String t : texts) stopStrings.add(Objects.requireNonNull(t, "a stop string"));
            return this;
        }

        /** Adds ids that end generation besides the checkpoint's end-of-sequence ids. */
        public Builder stopTokenIds(int... ids) {
            Objects.requireNonNull(ids, "ids");
            for (int id : ids) stopTokenIds.add(id);
            return this;
        }

        /** Whether to go on past the checkpoint's end-of-sequence ids (benchmarks). */
        public Builder ignoreEos(boolean on) {
            this.ignoreEos = on;
            return this;
        }

        /** How many of the most likely tokens to report at each step, 0 to {@value GenerationRequest#MAX_TOP_LOGPROBS}. */
        public Builder topLogprobs(int n) {
            this.topLogprobs = n;
            return this;
        }

        /** What the answer must be (default free text); see {@link ResponseFormat}. */
        public Builder responseFormat(ResponseFormat format) {
            this.responseFormat = format;
            return this;
        }

        /** The request; its values are checked here. */
        public GenerationRequest build() {
            return new GenerationRequest(prompt, sampling, maxTokens, stopStrings, stopTokenIds, ignoreEos, topLogprobs,
                    responseFormat);
        }
    }
}
