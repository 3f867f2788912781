package dev.jnext.kernels.ptx;

import java.io.InputStream;

/**
 * The PTX files of this artifact. They live in this class's package, so this module is the one that can read them
 * whether jnext runs on the class path, on the module path (resources of a named module are encapsulated) or from
 * the runnable jar.
 */
public final class KernelSources {
    /** Where the PTX files are, as a resource path (for messages). */
    public static final String RESOURCE_DIR = "dev/jnext/kernels/ptx/";

    private KernelSources() {}

    /** The PTX of kernel family {@code name} ({@code <name>.ptx}), or null when this build carries no such file. */
    public static InputStream open(String name) {
        return KernelSources.class.getResourceAsStream(name + ".ptx");
    }
}
