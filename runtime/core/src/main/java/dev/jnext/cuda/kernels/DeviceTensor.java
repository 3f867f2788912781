package dev.jnext.cuda.kernels;

import dev.jnext.gpu.DeviceBuffer;

import java.util.Arrays;
import java.util.Objects;

/**
 * A typed view of device memory: a name (for messages), the device address of element 0, the element type and a dense
 * row-major shape. A launcher's argument record holds these instead of bare addresses and checks them against its op's
 * contract once, on the host, before the driver is called — so a swapped pointer, a wrong dtype or a too-small buffer
 * fails loudly instead of corrupting memory. Built once (at plan-build time on the runner's hot path): the per-launch
 * checks compare a few ints and allocate nothing.
 *
 * <p>Dimensions that depend on a step's token count hold the capacity (the rows the buffer was sized for); the launch
 * checks the step's count against it. The shape array is copied in and out: a tensor is immutable.
 */
public record DeviceTensor(String name, long address, DType dtype, int[] shape) {
    public DeviceTensor {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(dtype, "dtype");
        shape = Objects.requireNonNull(shape, "shape").clone();
        if (shape.length == 0) throw new IllegalArgumentException("device tensor " + name + ": needs at least one dimension");
        for (int d : shape) {
            if (d < 0) throw new IllegalArgumentException("device tensor " + name + ": negative dimension in " + Arrays.toString(shape));
        }
    }

    public static DeviceTensor of(String name, long address, DType dtype, int... shape) {
        return new DeviceTensor(name, address, dtype, shape);
    }

    /** The whole-buffer view named by the buffer's label; its {@link #bytes()} must fit the buffer. */
    public static DeviceTensor of(DeviceBuffer buffer, DType dtype, int... shape) {
        return of(buffer, 0, buffer.label(), dtype, shape);
    }

    /** A view at {@code byteOffset} into {@code buffer}; it must end inside the buffer. */
    public static DeviceTensor of(DeviceBuffer buffer, long byteOffset, String name, DType dtype, int... shape) {
        DeviceTensor t = new DeviceTensor(name, buffer.address(byteOffset), dtype, shape);
        if (byteOffset < 0 || byteOffset + t.bytes() > buffer.bytes()) {
            throw new IllegalArgumentException("device tensor " + t + " at offset " + byteOffset + " does not fit buffer "
                    + buffer.label() + " of " + buffer.bytes() + " bytes");
        }
        return t;
    }

    /** A copy of the shape. */
    @Override
    public int[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public int dim(int i) {
        return shape[i];
    }

    public long elements() {
        long n = 1;
        for (int d : shape) n *= d;
        return n;
    }

    public long bytes() {
        return elements() * dtype.bytes();
    }

    /** The same memory under another shape of as many elements (and the same name). */
    public DeviceTensor reshape(int... dims) {
        DeviceTensor t = new DeviceTensor(name, address, dtype, dims);
        if (t.elements() != elements()) {
            throw new IllegalArgumentException("device tensor " + this + ": cannot reshape to " + Arrays.toString(dims));
        }
        return t;
    }

    /** The same memory under another name (e.g. the argument it is passed as). */
    public DeviceTensor named(String newName) {
        return new DeviceTensor(newName, address, dtype, shape);
    }

    /** {@code dtype[d0, d1, ...]}, as the contracts' messages print it. */
    public String signature() {
        return dtype + Arrays.toString(shape);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof DeviceTensor t && address == t.address && dtype == t.dtype && name.equals(t.name)
                && Arrays.equals(shape, t.shape);
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, address, dtype, Arrays.hashCode(shape));
    }

    @Override
    public String toString() {
        return name + " " + signature() + " @0x" + Long.toHexString(address);
    }
}
