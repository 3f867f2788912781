package dev.jnext.cli;

import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.Console;
import java.util.function.LongConsumer;

/** Whether a person is watching: progress bars and prompts from the keyboard only then, never into a file, pipe or test log. */
final class Terminal {
    private Terminal() {}

    /** A progress display that counts steps; {@link #close()} ends it. */
    interface Progress extends LongConsumer, AutoCloseable {
        @Override
        void close();
    }

    /** True when stdin and stdout are a terminal (Java tells no more; stderr goes where they go in practice). */
    static boolean interactive() {
        Console console = System.console();
        return console != null && console.isTerminal();
    }

    /** A progress bar on stderr in MiB when {@link #interactive()}, else one that shows nothing. */
    static Progress bytes(String task, long totalBytes) {
        if (!interactive()) {
            return new Progress() {
                @Override
                public void accept(long n) {}

                @Override
                public void close() {}
            };
        }
        ProgressBar bar = new ProgressBarBuilder().setTaskName(task).setInitialMax(totalBytes).setUnit(" MiB", 1 << 20)
                .setStyle(ProgressBarStyle.ASCII).setUpdateIntervalMillis(500).build();
        return new Progress() {
            @Override
            public void accept(long n) {
                bar.stepBy(n);
            }

            @Override
            public void close() {
                bar.close();
            }
        };
    }
}
