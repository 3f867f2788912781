package dev.jnext.cli;

import picocli.CommandLine;
import picocli.CommandLine.Help;
import picocli.CommandLine.Help.Ansi.Text;
import picocli.CommandLine.Help.ColorScheme;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Model.PositionalParamSpec;

import java.text.BreakIterator;
import java.util.List;
import java.util.Map;

/**
 * Usage help whose lines break at spaces only. picocli wraps where {@link java.text.BreakIterator} allows, and that
 * includes inside "config.json", "*.safetensors" or "next-80b-a3b"; a zero-width no-break space (U+FEFF) at each such
 * place holds the word together while picocli wraps, and is removed from the finished text.
 */
final class UsageHelp {
    private static final String GLUE = "\uFEFF";

    private UsageHelp() {}

    /** Installs the rule on {@code root} and every subcommand. */
    static void install(CommandLine root) {
        root.setHelpFactory(UsageHelp::help);
        glueDescriptions(root);
    }

    private static void glueDescriptions(CommandLine cl) {
        CommandSpec spec = cl.getCommandSpec();
        String[] description = spec.usageMessage().description();
        for (int i = 0; i < description.length; i++) description[i] = glue(description[i]);
        spec.usageMessage().description(description);
        Map<String, CommandLine.IHelpSectionRenderer> sections = cl.getHelpSectionMap();
        sections.replaceAll((key, renderer) -> help -> renderer.render(help).replace(GLUE, ""));
        cl.setHelpSectionMap(sections);
        for (CommandLine sub : cl.getSubcommands().values()) {
            if (sub.getParent() == cl) glueDescriptions(sub); // aliases list a subcommand twice; its parent is this one
        }
    }

    /** {@code text} with the glue at every line-break opportunity that is not after a space. */
    static String glue(String text) {
        BreakIterator breaks = BreakIterator.getLineInstance();
        breaks.setText(text);
        StringBuilder out = new StringBuilder(text.length() + 8);
        int start = breaks.first();
        for (int end = breaks.next(); end != BreakIterator.DONE; start = end, end = breaks.next()) {
            out.append(text, start, end);
            if (end < text.length() && !Character.isWhitespace(text.charAt(end - 1)) && !text.startsWith(GLUE, end)) out.append(GLUE);
        }
        return out.toString();
    }

    private static Help help(CommandSpec spec, ColorScheme scheme) {
        return new Help(spec, scheme) {
            @Override
            public Layout createDefaultLayout(List<OptionSpec> options, List<PositionalParamSpec> positionals, ColorScheme colors) {
                Layout layout = super.createDefaultLayout(options, positionals, colors);
                return new Layout(colors, layout.textTable(),
                        (option, labels, cs) -> glueLastColumn(layout.optionRenderer().render(option, labels, cs), cs),
                        (param, labels, cs) -> glueLastColumn(layout.parameterRenderer().render(param, labels, cs), cs));
            }

            @Override
            public Layout createDefaultLayout() {
                Layout layout = super.createDefaultLayout();
                return new Layout(colorScheme(), layout.textTable(),
                        (option, labels, cs) -> glueLastColumn(layout.optionRenderer().render(option, labels, cs), cs),
                        (param, labels, cs) -> glueLastColumn(layout.parameterRenderer().render(param, labels, cs), cs));
            }
        };
    }

    /** The description is the last column of each row an option or parameter renders to. */
    private static Text[][] glueLastColumn(Text[][] rows, ColorScheme colors) {
        for (Text[] row : rows) {
            int last = row.length - 1;
            if (last >= 0 && row[last] != null) row[last] = colors.ansi().new Text(glue(row[last].plainString()), colors);
        }
        return rows;
    }
}
