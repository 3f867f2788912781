package dev.jnext.gpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * The {@code void** kernelParams} of one launch, packed into off-heap memory that is reused for every
 * launch (cuLaunchKernel copies the values when it is called, so reuse is safe). Each value occupies an
 * 8-byte slot; the pointer array points at the slots once and for all. Not thread-safe: one per
 * launching thread. Every put is checked against the kernel's PTX signature.
 */
public final class KernelArgs {
    /** Most parameters a kernel may take. */
    public static final int MAX_PARAMS = 32;
    private static final int SLOT = 8;

    private final String kernel;
    private final List<ParamType> signature;
    private final MemorySegment values;
    private final MemorySegment pointers;
    private int count;

    /** An argument block for {@code kernel} with the given PTX signature. */
    public KernelArgs(String kernel, List<ParamType> signature) {
        if (signature.size() > MAX_PARAMS) throw new IllegalArgumentException(kernel + ": more than " + MAX_PARAMS + " parameters");
        this.kernel = kernel;
        this.signature = List.copyOf(signature);
        Arena arena = Arena.ofAuto();
        this.values = arena.allocate((long) SLOT * Math.max(1, signature.size()), SLOT);
        this.pointers = arena.allocate(ValueLayout.ADDRESS, Math.max(1, signature.size()));
        for (int i = 0; i < signature.size(); i++) {
            pointers.setAtIndex(ValueLayout.ADDRESS, i, values.asSlice((long) i * SLOT, SLOT));
        }
    }

    /** Starts a new argument list. */
    public KernelArgs reset() {
        count = 0;
        return this;
    }

    /** A device pointer (or any 64-bit parameter). */
    public KernelArgs ptr(long address) {
        values.set(ValueLayout.JAVA_LONG, (long) next(ParamType.U64) * SLOT, address);
        return this;
    }

    /** The buffer's device address. */
    public KernelArgs ptr(DeviceBuffer buffer) {
        return ptr(buffer.address());
    }

    /** A 64-bit integer. */
    public KernelArgs i64(long value) {
        return ptr(value);
    }

    /** A 32-bit integer. */
    public KernelArgs i32(int value) {
        values.set(ValueLayout.JAVA_INT, (long) next(ParamType.U32) * SLOT, value);
        return this;
    }

    /** A 32-bit float. */
    public KernelArgs f32(float value) {
        values.set(ValueLayout.JAVA_FLOAT, (long) next(ParamType.F32) * SLOT, value);
        return this;
    }

    private int next(ParamType type) {
        if (count >= signature.size()) {
            throw new IllegalArgumentException(kernel + " takes " + signature.size() + " parameters; got more");
        }
        ParamType expected = signature.get(count);
        if (expected != type) {
            throw new IllegalArgumentException(kernel + " parameter " + count + " is " + expected + ", got " + type);
        }
        return count++;
    }

    /** The packed pointer array, after checking that every parameter was given. */
    MemorySegment packed() {
        if (count != signature.size()) {
            throw new IllegalArgumentException(kernel + " takes " + signature.size() + " parameters; got " + count);
        }
        return pointers;
    }

    /** For tests: the raw value slot of parameter {@code i}. */
    MemorySegment slot(int i) {
        return values.asSlice((long) i * SLOT, SLOT);
    }

    int count() {
        return count;
    }
}
