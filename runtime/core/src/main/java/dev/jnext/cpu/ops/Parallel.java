package dev.jnext.cpu.ops;

import java.util.concurrent.ForkJoinPool;

/** How many threads the CPU ops may keep busy (the common fork-join pool plus the caller). */
final class Parallel {
    private Parallel() {}

    static int threads() {
        return ForkJoinPool.getCommonPoolParallelism() + 1;
    }
}
