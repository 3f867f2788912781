package dev.jnext.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import dev.jnext.JnextException;
import dev.jnext.json.JsonFiles;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * What jnext reads from a checkpoint's {@code tokenizer_config.json} (and {@code chat_template.jinja},
 * which newer checkpoints use instead): the chat template and the special tokens the template sees.
 *
 * @param chatTemplate   Jinja source, if the folder has one
 * @param templateSource the file the template came from (for error messages)
 * @param specialTokens  bos_token, eos_token, pad_token, unk_token, additional_special_tokens as given
 */
public record TokenizerConfig(Optional<String> chatTemplate, Path templateSource, Map<String, Object> specialTokens) {

    /** Reads the folder; a missing tokenizer_config.json gives no template and no special tokens. */
    public static TokenizerConfig read(Path dir) {
        Path configFile = dir.resolve("tokenizer_config.json");
        Map<String, Object> special = new LinkedHashMap<>();
        String template = null;
        Path source = configFile;
        if (Files.isRegularFile(configFile)) {
            JsonNode config = JsonFiles.read(configFile);
            if (!config.isObject()) throw new JnextException(configFile + ": expected a JSON object");
            for (String name : List.of("bos_token", "eos_token", "pad_token", "unk_token")) {
                JsonNode v = config.path(name);
                special.put(name, v.isTextual() ? v.asText() : v.path("content").isTextual() ? v.path("content").asText() : null);
            }
            List<String> additional = new ArrayList<>();
            config.path("additional_special_tokens").forEach(t -> additional.add(t.isTextual() ? t.asText() : t.path("content").asText()));
            special.put("additional_special_tokens", additional);
            JsonNode t = config.path("chat_template");
            if (t.isTextual()) {
                template = t.asText();
            } else if (t.isArray()) { // named templates: [{"name": "default", "template": "..."}, ...]
                for (JsonNode named : t) if (named.path("name").asText().equals("default")) template = named.path("template").asText();
                if (template == null) {
                    throw new JnextException(configFile + ": chat_template lists named templates but none is called \"default\"");
                }
            }
        }
        Path jinja = dir.resolve("chat_template.jinja");
        if (Files.isRegularFile(jinja)) { // transformers prefers this file over tokenizer_config.json's template
            template = JsonFiles.readText(jinja);
            source = jinja;
        }
        return new TokenizerConfig(Optional.ofNullable(template), source, special);
    }

    /** The EOS token named here, if any (e.g. {@code <|im_end|>}). */
    public Optional<String> eosToken() {
        return Optional.ofNullable((String) specialTokens.get("eos_token"));
    }
}
