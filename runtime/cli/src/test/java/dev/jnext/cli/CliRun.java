package dev.jnext.cli;

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;

/**
 * Runs the jnext CLI in-process with a given stdin and captures stdout, stderr, the exit code and how many bytes of
 * stdin were left unread.
 */
record CliRun(int exitCode, String out, String err, int stdinUnread) {

    static synchronized CliRun run(String stdin, String... args) {
        InputStream savedIn = System.in;
        StringWriter out = new StringWriter(), err = new StringWriter();
        try {
            var in = new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8));
            System.setIn(in);
            var cl = Main.commandLine();
            cl.setOut(new PrintWriter(out, true));
            cl.setErr(new PrintWriter(err, true));
            int code = cl.execute(args);
            return new CliRun(code, out.toString(), err.toString(), in.available());
        } finally {
            System.setIn(savedIn);
        }
    }
}
