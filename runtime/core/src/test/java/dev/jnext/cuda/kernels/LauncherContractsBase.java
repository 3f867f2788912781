package dev.jnext.cuda.kernels;

import org.junit.jupiter.api.function.Executable;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the launcher-contract tests share: tensors at fresh, plausible fake device addresses (no GPU: a record's checks
 * run before any driver call) and the assertion that a check fails with a message holding every given part (the op,
 * the argument, the expected and the given signature).
 */
abstract class LauncherContractsBase {
    /** Experts, hidden, expert width, top-k and tokens of the MoE records; T is every record's row count. */
    static final int E = 16, H = 512, I = 128, K = 4, T = 8;

    private long next = 0x7f00_0000_0000L;

    /** A tensor at a fresh 256-byte-aligned plausible device address. */
    DeviceTensor t(String name, DType dtype, int... shape) {
        DeviceTensor d = DeviceTensor.of(name, next, dtype, shape);
        next += (d.bytes() + 255) / 256 * 256 + 256;
        return d;
    }

    static void fails(Executable e, String... parts) {
        IllegalArgumentException x = assertThrows(IllegalArgumentException.class, e);
        for (String p : parts) assertTrue(x.getMessage().contains(p), "'" + p + "' in: " + x.getMessage());
    }
}
