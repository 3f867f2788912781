package dev.jnext.cli;

import dev.jnext.JnextException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;

/** Entry point of {@code jnext.jar}: one picocli subcommand per verb. */
@Command(name = "jnext", mixinStandardHelpOptions = true, version = Main.VERSION, scope = CommandLine.ScopeType.INHERIT,
        description = "Qwen3-Next inference on NVIDIA GPUs from pure Java (FFM over the CUDA driver API).",
        subcommands = {InfoCommand.class, BenchCommand.class, SynthCommand.class, ScoreCommand.class, GenerateCommand.class, ServeCommand.class, TokenizeCommand.class, CommandLine.HelpCommand.class})
public final class Main {

    /** What {@code --version} prints, on every command. */
    public static final String VERSION = "jnext 0.1.0";

    /** Exit code for bad input or a failed CUDA call (a {@link JnextException}). */
    public static final int EXIT_USER_ERROR = 2;
    /** Exit code for an unexpected internal error. */
    public static final int EXIT_INTERNAL_ERROR = 3;

    public static void main(String[] args) {
        // slf4j-simple, this jar's logging backend (the library has none): the library's info lines on stderr, one short
        // line each; -Dorg.slf4j.simpleLogger.defaultLogLevel=debug (or warn) and the other simpleLogger keys override
        setDefault("org.slf4j.simpleLogger.showThreadName", "false");
        setDefault("org.slf4j.simpleLogger.showShortLogName", "true");
        System.exit(run(args));
    }

    private static void setDefault(String key, String value) {
        if (System.getProperty(key) == null) System.setProperty(key, value);
    }

    public static int run(String... args) {
        return commandLine().execute(args);
    }

    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Main());
        cl.setUsageHelpAutoWidth(true); // help fills a wide terminal; 80 columns when there is none
        UsageHelp.install(cl);
        // UTF-8 whatever the platform's default: generated text and JSON are rarely ASCII
        cl.setOut(new PrintWriter(new OutputStreamWriter(new FileOutputStream(FileDescriptor.out), StandardCharsets.UTF_8), true));
        cl.setErr(new PrintWriter(new OutputStreamWriter(new FileOutputStream(FileDescriptor.err), StandardCharsets.UTF_8), true));
        // a bad command line is one line too, with where to look, instead of the whole usage text
        cl.setParameterExceptionHandler((ex, args) -> {
            CommandLine cmd = ex.getCommandLine();
            PrintWriter err = cmd.getErr();
            if (args.length == 0) { // plain "jnext": the list of commands is the answer
                cmd.usage(err);
                return EXIT_USER_ERROR;
            }
            String message = ex.getMessage().startsWith("Error: ") ? ex.getMessage().substring(7) : ex.getMessage();
            String hint = ex instanceof CommandLine.UnmatchedArgumentException u && !u.getSuggestions().isEmpty()
                    ? "; did you mean " + u.getSuggestions().getFirst() + "?" : "";
            err.println("jnext: " + message + hint + " (see " + cmd.getCommandSpec().qualifiedName() + " --help)");
            err.flush();
            return EXIT_USER_ERROR;
        });
        cl.setExecutionExceptionHandler((ex, cmd, parseResult) -> {
            PrintWriter err = cmd.getErr();
            if (ex instanceof JnextException) {
                err.println("jnext: " + ex.getMessage());
                err.flush();
                return EXIT_USER_ERROR;
            }
            err.println("jnext: internal error: " + ex);
            if (Boolean.getBoolean("jnext.trace")) ex.printStackTrace(err);
            else err.println("(run with -Djnext.trace=true for the stack trace)");
            err.flush();
            return EXIT_INTERNAL_ERROR;
        });
        return cl;
    }
}
