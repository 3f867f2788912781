package dev.jnext.gpu;

import dev.jnext.JnextException;

import dev.jnext.bindings.cuda.CudaDriver;
import dev.jnext.kernels.ptx.KernelSources;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A PTX module of jnext-kernels-ptx ({@code dev/jnext/kernels/ptx/<name>.ptx}, built by nvcc), JIT-compiled
 * by the driver. A compile failure raises a {@link CudaException} carrying the JIT error log.
 */
public final class PtxModule implements AutoCloseable {
    /** Where the PTX files are, as a resource path. */
    public static final String RESOURCE_DIR = KernelSources.RESOURCE_DIR;
    private static final int LOG_BYTES = 16 * 1024;

    private final Gpu gpu;
    private final String name;
    private final Map<String, List<ParamType>> entries;
    private final Map<String, Kernel> kernels = new HashMap<>();
    private MemorySegment handle;
    private final String infoLog;

    private PtxModule(Gpu gpu, String name, MemorySegment handle, Map<String, List<ParamType>> entries, String infoLog) {
        this.gpu = gpu;
        this.name = name;
        this.handle = handle;
        this.entries = entries;
        this.infoLog = infoLog;
    }

    /** The PTX text of {@code dev/jnext/kernels/ptx/<name>.ptx}. */
    public static String readPtx(String name) {
        String path = RESOURCE_DIR + name + ".ptx";
        try (InputStream in = KernelSources.open(name)) {
            if (in == null) {
                throw new JnextException("PTX resource " + path + " is not in jnext-kernels-ptx: this jnext was built "
                        + "without its CUDA kernels (mvn -Pcpu-only, or kernels-ptx not built); build it with nvcc");
            }
            return new String(in.readAllBytes(), StandardCharsets.US_ASCII);
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + path, e);
        }
    }

    static PtxModule load(Gpu gpu, String name) {
        return load(gpu, name, readPtx(name));
    }

    /** Loads PTX text under {@code name} (tests load a deliberately broken module this way). */
    static PtxModule load(Gpu gpu, String name, String ptx) {
        Map<String, List<ParamType>> entries = PtxEntries.parse(ptx);
        gpu.bindThread();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment image = a.allocateFrom(ptx, StandardCharsets.US_ASCII);
            MemorySegment errorLog = a.allocate(LOG_BYTES);
            MemorySegment infoLog = a.allocate(LOG_BYTES);
            int[] keys = {CudaDriver.CU_JIT_ERROR_LOG_BUFFER(), CudaDriver.CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES(),
                    CudaDriver.CU_JIT_INFO_LOG_BUFFER(), CudaDriver.CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES()};
            MemorySegment options = a.allocateFrom(ValueLayout.JAVA_INT, keys);
            MemorySegment values = a.allocate(ValueLayout.ADDRESS, keys.length);
            values.setAtIndex(ValueLayout.ADDRESS, 0, errorLog);
            values.setAtIndex(ValueLayout.ADDRESS, 1, MemorySegment.ofAddress(LOG_BYTES));
            values.setAtIndex(ValueLayout.ADDRESS, 2, infoLog);
            values.setAtIndex(ValueLayout.ADDRESS, 3, MemorySegment.ofAddress(LOG_BYTES));
            MemorySegment p = a.allocate(ValueLayout.ADDRESS);
            int rc = CudaDriver.cuModuleLoadDataEx(p, image, keys.length, options, values);
            if (rc != 0) {
                throw Cuda.error(rc, "cuModuleLoadDataEx(" + name + ".ptx)", "JIT log: " + errorLog.getString(0).strip());
            }
            gpu.objectCreated();
            return new PtxModule(gpu, name, p.get(ValueLayout.ADDRESS, 0), entries, infoLog.getString(0).strip());
        }
    }

    /** The kernel {@code entry} of this module (looked up once, then cached). */
    public synchronized Kernel kernel(String entry) {
        Kernel k = kernels.get(entry);
        if (k != null) return k;
        List<ParamType> signature = entries.get(entry);
        if (signature == null) {
            throw new IllegalArgumentException("no kernel '" + entry + "' in " + name + ".ptx; entries: " + entries.keySet());
        }
        gpu.bindThread();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment f = a.allocate(ValueLayout.ADDRESS);
            Cuda.check(CudaDriver.cuModuleGetFunction(f, handle(), a.allocateFrom(entry)), "cuModuleGetFunction(" + entry + ")");
            k = new Kernel(this, entry, f.get(ValueLayout.ADDRESS, 0), signature);
        }
        kernels.put(entry, k);
        return k;
    }

    /** Every entry point of the module with its parameters, parsed from the PTX. */
    public Map<String, List<ParamType>> entries() {
        return entries;
    }

    /** What the JIT said while compiling (usually empty). */
    public String infoLog() {
        return infoLog;
    }

    Gpu gpu() {
        return gpu;
    }

    private MemorySegment handle() {
        if (handle == null) throw new IllegalStateException("module " + name + " is closed");
        return handle;
    }

    @Override
    public void close() {
        if (handle == null) return;
        gpu.bindThread();
        int rc = CudaDriver.cuModuleUnload(handle);
        handle = null;
        kernels.clear();
        gpu.objectClosed();
        Cuda.check(rc, "cuModuleUnload(" + name + ")");
    }
}
