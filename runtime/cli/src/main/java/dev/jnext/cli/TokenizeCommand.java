package dev.jnext.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.jnext.JnextException;
import dev.jnext.tokenizer.ChatTemplate;
import dev.jnext.tokenizer.QwenTokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code jnext tokenize}: token ids of JSON strings (or chat conversations) read line by line from stdin. */
@Command(name = "tokenize", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Read stdin, one JSON string per line, and print one JSON array of token ids per line. With --chat each line is a JSON array of {\"role\": ..., \"content\": ...} messages and the output is {\"prompt\": the rendered chat template, \"ids\": [...]}.")
public final class TokenizeCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Spec
    CommandSpec spec;

    @Option(names = "--tokenizer", required = true, paramLabel = "DIR",
            description = "Folder with tokenizer.json (and tokenizer_config.json for --chat).")
    Path tokenizerDir;

    @Option(names = "--chat", description = "Lines are message arrays; render each with the chat template.")
    boolean chat;

    @Option(names = "--no-generation-prompt", description = "Do not end the rendered prompt with the opening of the assistant's turn (needs --chat).")
    boolean noGenerationPrompt;

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        ModelOptions.folderWith("--tokenizer", tokenizerDir, "tokenizer.json", "");
        if (chat) ModelOptions.folderWith("--tokenizer", tokenizerDir, "tokenizer_config.json", ", which holds the chat template --chat needs");
        QwenTokenizer tokenizer = QwenTokenizer.load(tokenizerDir);
        ChatTemplate template = chat ? ChatTemplate.load(tokenizerDir) : null;
        var in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        int lineNumber = 0;
        for (String line; (line = in.readLine()) != null; ) {
            lineNumber++;
            JsonNode node;
            try {
                node = JSON.readTree(line);
            } catch (JsonProcessingException e) {
                throw new JnextException("stdin line " + lineNumber + ": not valid JSON: " + e.getOriginalMessage());
            }
            if (chat) {
                List<Map<String, Object>> messages = messages(node, lineNumber);
                String prompt;
                try {
                    prompt = template.render(messages, null, !noGenerationPrompt, Map.of());
                } catch (JnextException e) {
                    throw new JnextException("stdin line " + lineNumber + ": " + e.getMessage(), e);
                }
                ObjectNode result = JSON.createObjectNode();
                result.put("prompt", prompt);
                result.set("ids", ids(tokenizer.encode(prompt)));
                out.println(JSON.writeValueAsString(result));
            } else {
                if (node == null || !node.isTextual()) {
                    throw new JnextException("stdin line " + lineNumber + ": expected a JSON string such as \"Hello\", got "
                            + (line.isBlank() ? "an empty line" : abbreviate(line)));
                }
                out.println(JSON.writeValueAsString(ids(tokenizer.encode(node.asText()))));
            }
            out.flush();
        }
        return 0;
    }

    private static List<Map<String, Object>> messages(JsonNode node, int lineNumber) {
        String where = "stdin line " + lineNumber + ": ";
        if (node == null || !node.isArray() || node.isEmpty()) {
            throw new JnextException(where + "expected a non-empty JSON array of {\"role\": ..., \"content\": ...} messages");
        }
        for (int i = 0; i < node.size(); i++) {
            JsonNode m = node.get(i);
            if (!m.isObject() || !m.path("role").isTextual() || !m.path("content").isTextual()) {
                throw new JnextException(where + "message " + i + " needs a string \"role\" and a string \"content\", got " + m);
            }
        }
        return JSON.convertValue(node, new com.fasterxml.jackson.core.type.TypeReference<>() {});
    }

    private static ArrayNode ids(int[] ids) {
        ArrayNode a = JSON.createArrayNode();
        for (int id : ids) a.add(id);
        return a;
    }

    private static String abbreviate(String s) {
        return s.length() <= 60 ? s : s.substring(0, 57) + "...";
    }
}
