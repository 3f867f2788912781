package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.PtxModule;

import java.util.LinkedHashMap;
import java.util.Map;

/** The PTX modules of kernels-ptx loaded on one {@link Gpu}, each once, on first use; closes them all. */
public final class KernelLibrary implements AutoCloseable {
    private final Gpu gpu;
    private final Map<String, PtxModule> modules = new LinkedHashMap<>();

    public KernelLibrary(Gpu gpu) {
        this.gpu = gpu;
    }

    public Gpu gpu() {
        return gpu;
    }

    /** Kernel {@code entry} of {@code module}.ptx. */
    public synchronized Kernel kernel(String module, String entry) {
        return modules.computeIfAbsent(module, gpu::loadModule).kernel(entry);
    }

    @Override
    public synchronized void close() {
        RuntimeException first = null;
        for (PtxModule m : modules.values()) {
            try {
                m.close();
            } catch (RuntimeException e) {
                if (first == null) first = e;
            }
        }
        modules.clear();
        if (first != null) throw first;
    }
}
