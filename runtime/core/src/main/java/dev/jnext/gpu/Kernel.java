package dev.jnext.gpu;

import dev.jnext.bindings.cuda.CudaDriver;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/** One {@code .entry} of a loaded {@link PtxModule}, launched with arguments checked against its PTX signature. */
public final class Kernel {
    private final PtxModule module;
    private final String name;
    private final MemorySegment function;
    private final List<ParamType> signature;
    private final KernelArgs defaultArgs;
    private int dynamicSmemLimit = 48 * 1024;

    Kernel(PtxModule module, String name, MemorySegment function, List<ParamType> signature) {
        this.module = module;
        this.name = name;
        this.function = function;
        this.signature = signature;
        this.defaultArgs = new KernelArgs(name, signature);
    }

    /** The kernel's PTX entry name. */
    public String name() {
        return name;
    }

    /** Its parameters as the PTX declares them. */
    public List<ParamType> signature() {
        return signature;
    }

    /** A fresh reusable argument block (one per launching thread). */
    public KernelArgs newArgs() {
        return new KernelArgs(name, signature);
    }

    /** This kernel's shared argument block: {@code kernel.args().ptr(x).i32(n)} then {@link #launch}. Not thread-safe. */
    public KernelArgs args() {
        return defaultArgs.reset();
    }

    /** Allows more than 48 KB of dynamic shared memory for this kernel. */
    public Kernel allowDynamicSharedMemory(int bytes) {
        module.gpu().bindThread();
        Cuda.check(CudaDriver.cuFuncSetAttribute(function, CudaDriver.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES(), bytes),
                "cuFuncSetAttribute(" + name + ", MAX_DYNAMIC_SHARED_SIZE_BYTES=" + bytes + ")");
        dynamicSmemLimit = Math.max(dynamicSmemLimit, bytes);
        return this;
    }

    /** Registers per thread after JIT compilation. */
    public int registersPerThread() {
        return attribute(CudaDriver.CU_FUNC_ATTRIBUTE_NUM_REGS());
    }

    /** Local (spill) memory per thread, in bytes. */
    public int localBytesPerThread() {
        return attribute(CudaDriver.CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES());
    }

    /** The largest block this kernel can be launched with. */
    public int maxThreadsPerBlock() {
        return attribute(CudaDriver.CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK());
    }

    private int attribute(int attr) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(ValueLayout.JAVA_INT);
            Cuda.check(CudaDriver.cuFuncGetAttribute(v, attr, function), "cuFuncGetAttribute(" + name + ")");
            return v.get(ValueLayout.JAVA_INT, 0);
        }
    }

    /** Enqueues the kernel on {@code stream} with the arguments packed in {@code args}. */
    public void launch(Stream stream, Dim3 grid, Dim3 block, int dynamicSmemBytes, KernelArgs args) {
        if (dynamicSmemBytes > dynamicSmemLimit) {
            throw new IllegalArgumentException(name + ": " + dynamicSmemBytes + " bytes of dynamic shared memory requested, "
                    + dynamicSmemLimit + " allowed (call allowDynamicSharedMemory)");
        }
        int rc = CudaDriver.cuLaunchKernel(function, grid.x(), grid.y(), grid.z(), block.x(), block.y(), block.z(),
                dynamicSmemBytes, stream.handle(), args.packed(), MemorySegment.NULL);
        if (rc != 0) {
            throw Cuda.error(rc, "cuLaunchKernel", name + " grid " + grid + " block " + block + " smem " + dynamicSmemBytes);
        }
    }

    /** As {@link #launch(Stream, Dim3, Dim3, int, KernelArgs)} with this kernel's shared argument block. */
    public void launch(Stream stream, Dim3 grid, Dim3 block, int dynamicSmemBytes) {
        launch(stream, grid, block, dynamicSmemBytes, defaultArgs);
    }
}
