package dev.jnext.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.jnext.tokenizer.QwenTokenizer;
import dev.jnext.tokenizer.TestTokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TokenizeCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final String dir = TestTokenizers.qwen3Dir().toString();
    private final QwenTokenizer tok = TestTokenizers.qwen3();

    @Test
    void printsOneIdArrayPerJsonStringLine() throws Exception {
        CliRun r = CliRun.run("\"Hello world\"\n\"\"\n\"你好 <|im_end|>\\n\"\n", "tokenize", "--tokenizer", dir);
        assertEquals(0, r.exitCode(), r.err());
        String[] lines = r.out().split("\n");
        assertEquals(3, lines.length);
        assertEquals("[9707,1879]", lines[0]);
        assertEquals("[]", lines[1]);
        assertEquals(Arrays.toString(tok.encode("你好 <|im_end|>\n")).replace(" ", ""), lines[2]);
    }

    @Test
    void chatLinesGiveTheRenderedPromptAndItsIds() throws Exception {
        CliRun r = CliRun.run("[{\"role\": \"user\", \"content\": \"Hello!\"}]\n", "tokenize", "--tokenizer", dir, "--chat");
        assertEquals(0, r.exitCode(), r.err());
        JsonNode line = JSON.readTree(r.out());
        // the same conversation's Hugging Face golden (user-only, add_generation_prompt=True)
        assertEquals("<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n", line.get("prompt").asText());
        assertEquals("[151644,872,198,9707,0,151645,198,151644,77091,198]", line.get("ids").toString());
        r = CliRun.run("[{\"role\": \"user\", \"content\": \"Hello!\"}]\n", "tokenize", "--tokenizer", dir, "--chat", "--no-generation-prompt");
        assertEquals("<|im_start|>user\nHello!<|im_end|>\n", JSON.readTree(r.out()).get("prompt").asText());
    }

    @Test
    void anInvalidJsonLineStopsWithItsLineNumber() {
        CliRun r = CliRun.run("\"ok\"\n{not json\n\"never\"\n", "tokenize", "--tokenizer", dir);
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode());
        assertEquals("[562]", r.out().strip());
        assertTrue(r.err().startsWith("jnext: stdin line 2: not valid JSON"), r.err());
    }

    @Test
    void aLineThatIsNotAStringOrNotMessagesIsRefused() {
        CliRun r = CliRun.run("42\n", "tokenize", "--tokenizer", dir);
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode());
        assertTrue(r.err().contains("stdin line 1: expected a JSON string"), r.err());
        r = CliRun.run("\n", "tokenize", "--tokenizer", dir);
        assertTrue(r.err().contains("an empty line"), r.err());
        r = CliRun.run("[{\"role\": \"user\"}]\n", "tokenize", "--tokenizer", dir, "--chat");
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode());
        assertTrue(r.err().contains("message 0 needs a string \"role\" and a string \"content\""), r.err());
        r = CliRun.run("\"text\"\n", "tokenize", "--tokenizer", dir, "--chat");
        assertTrue(r.err().contains("expected a non-empty JSON array"), r.err());
    }

    @Test
    void aMissingTokenizerIsNamed(@TempDir Path empty) {
        CliRun r = CliRun.run("\"x\"\n", "tokenize", "--tokenizer", empty.toString());
        assertEquals(Main.EXIT_USER_ERROR, r.exitCode());
        assertEquals("jnext: --tokenizer " + empty + ": the folder has no tokenizer.json", r.err().strip());
    }
}
