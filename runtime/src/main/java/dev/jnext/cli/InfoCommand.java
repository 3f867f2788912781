package dev.jnext.cli;

import picocli.CommandLine.Command;

import java.util.concurrent.Callable;

/** {@code jnext info}: JVM, CUDA driver presence and the device's properties. */
@Command(name = "info", description = "Show the JVM and, if a CUDA driver is present, the GPU.")
public final class InfoCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        System.out.println("jnext 0.1.0");
        System.out.println("jvm: " + Runtime.version() + " (" + System.getProperty("java.vendor") + ")");
        return 0;
    }
}
