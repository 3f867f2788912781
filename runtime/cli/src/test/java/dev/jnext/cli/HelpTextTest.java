package dev.jnext.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Help.Ansi;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.OptionSpec;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every command's --help says whole sentences, and lines break between words only, at any width. */
class HelpTextTest {

    @Test
    void everyCommandHasHelpWithOneWholeDescription() {
        CommandLine root = Main.commandLine();
        String rootHelp = flat(CliRun.run("", "--help").out());
        for (var e : commands(root).entrySet()) {
            String name = e.getKey();
            CliRun r = CliRun.run("", name, "--help");
            assertEquals(0, r.exitCode(), name + ": " + r.err());
            assertTrue(r.out().startsWith("Usage: jnext " + name + " "), r.out());
            assertEquals(r.out(), CliRun.run("", "help", name).out());
            assertEquals(Main.VERSION, CliRun.run("", name, "--version").out().strip());
            String[] description = e.getValue().getCommandSpec().usageMessage().description();
            assertEquals(1, description.length, name + ": one string, wrapped by picocli, not lines broken by hand");
            String text = plain(description[0]);
            assertTrue(text.endsWith("."), name + ": a whole sentence: " + text);
            assertTrue(rootHelp.contains(flat(text)), "jnext --help lists all of " + name + "'s description: " + rootHelp);
            for (ArgSpec arg : e.getValue().getCommandSpec().args()) {
                if (arg.hidden()) continue;
                String what = name + " " + (arg instanceof OptionSpec o ? o.longestName() : arg.paramLabel());
                assertEquals(1, arg.description().length, what);
                assertTrue(arg.description()[0].endsWith("."), what + ": " + arg.description()[0]);
                if (arg.typeInfo().isBoolean()) continue;
                assertFalse(arg.paramLabel().startsWith("<"), what + " names its value (DIR, N, TEXT), not the Java field: " + arg.paramLabel());
            }
        }
    }

    @Test
    void linesBreakBetweenWordsOnlyAtEveryWidth() {
        for (int width = 55; width <= 160; width += 3) {
            CommandLine root = Main.commandLine();
            List<String> failures = new ArrayList<>();
            for (var e : commands(root).entrySet()) {
                CommandLine cl = e.getValue();
                cl.setUsageHelpAutoWidth(false);
                cl.setUsageHelpWidth(width);
                String help = cl.getUsageMessage(Ansi.OFF);
                assertFalse(help.contains("\uFEFF"), "no glue left in the text");
                String flatHelp = flat(help);
                List<String> texts = new ArrayList<>();
                texts.add(plain(cl.getCommandSpec().usageMessage().description()[0]));
                for (ArgSpec arg : cl.getCommandSpec().args()) if (!arg.hidden()) texts.add(interpolated(arg));
                for (String text : texts) {
                    if (!flatHelp.contains(flat(text))) failures.add(e.getKey() + " at width " + width + ": \"" + text + "\"\n" + help);
                }
                for (String line : help.split("\n")) {
                    if (line.length() > width) failures.add(e.getKey() + " at width " + width + ": too long: " + line);
                }
            }
            assertTrue(failures.isEmpty(), String.join("\n", failures));
        }
    }

    private static Map<String, CommandLine> commands(CommandLine root) {
        Map<String, CommandLine> commands = new java.util.LinkedHashMap<>(root.getSubcommands());
        commands.remove("help");
        return commands;
    }

    private static String interpolated(ArgSpec arg) {
        String d = arg.description()[0].replace("${DEFAULT-VALUE}", String.valueOf(arg.defaultValue()));
        if (arg.completionCandidates() != null) {
            List<String> c = new ArrayList<>();
            arg.completionCandidates().forEach(c::add);
            d = d.replace("${COMPLETION-CANDIDATES}", String.join(", ", c));
        }
        return d;
    }

    /** Descriptions as written (the help renderer's glue removed). */
    private static String plain(String s) {
        return s.replace("\uFEFF", "");
    }

    /** Line breaks and indentation collapsed to single spaces. */
    private static String flat(String s) {
        return s.replaceAll("\\s+", " ").strip();
    }
}
