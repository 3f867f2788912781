package dev.jnext.engine;

import dev.jnext.JnextException;
import dev.jnext.tokenizer.ChatMessage;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
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
 */
public record GenerationRequest(Prompt prompt, SamplingParams sampling, int maxTokens, List<String> stopStrings,
                                Set<Integer> stopTokenIds, boolean ignoreEos, int topLogprobs) {

    public static final int MAX_TOP_LOGPROBS = 20;

    /** What to continue. */
    public sealed interface Prompt {
        /** Plain text, tokenized as is (nothing is added around it). */
        record Text(String text) implements Prompt {
            public Text {
                if (text == null) throw new JnextException("the prompt text is null");
            }
        }

        /** Token ids of the model's vocabulary. */
        record Tokens(int[] ids) implements Prompt {
            public Tokens {
                ids = ids.clone();
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
         * optional tool schemas (null for none) and extra template variables (e.g. {@code enable_thinking}), rendered
         * with the generation prompt appended.
         */
        record Chat(List<Map<String, Object>> messages, List<Object> tools, Map<String, Object> templateVariables)
                implements Prompt {
            public Chat {
                if (messages == null || messages.isEmpty()) throw new JnextException("a chat prompt needs at least one message");
                messages = List.copyOf(messages);
                templateVariables = Map.copyOf(templateVariables);
            }

            public static Chat of(List<ChatMessage> messages) {
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

    public GenerationRequest {
        if (prompt == null) throw new JnextException("a request needs a prompt");
        if (maxTokens < 1) throw new JnextException("max tokens must be at least 1, got " + maxTokens);
        if (topLogprobs < 0 || topLogprobs > MAX_TOP_LOGPROBS) {
            throw new JnextException("top logprobs must be in 0.." + MAX_TOP_LOGPROBS + ", got " + topLogprobs);
        }
        stopStrings = List.copyOf(stopStrings);
        stopTokenIds = Set.copyOf(stopTokenIds);
    }

    public static Builder text(String text) {
        return new Builder(new Prompt.Text(text));
    }

    public static Builder tokens(int... ids) {
        return new Builder(new Prompt.Tokens(ids));
    }

    public static Builder chat(List<ChatMessage> messages) {
        return new Builder(Prompt.Chat.of(messages));
    }

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

        private Builder(Prompt prompt) {
            this.prompt = prompt;
        }

        public Builder sampling(SamplingParams s) {
            this.sampling = s;
            return this;
        }

        public Builder greedy() {
            return sampling(SamplingParams.greedy());
        }

        public Builder maxTokens(int n) {
            this.maxTokens = n;
            return this;
        }

        public Builder stop(String... texts) {
            stopStrings.addAll(Arrays.asList(texts));
            return this;
        }

        public Builder stop(List<String> texts) {
            stopStrings.addAll(texts);
            return this;
        }

        public Builder stopTokenIds(int... ids) {
            for (int id : ids) stopTokenIds.add(id);
            return this;
        }

        public Builder ignoreEos(boolean on) {
            this.ignoreEos = on;
            return this;
        }

        public Builder topLogprobs(int n) {
            this.topLogprobs = n;
            return this;
        }

        public GenerationRequest build() {
            return new GenerationRequest(prompt, sampling, maxTokens, stopStrings, stopTokenIds, ignoreEos, topLogprobs);
        }
    }
}
