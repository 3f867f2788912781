package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;

/**
 * Fine-grained FP8 weights to bf16 on the device (kernels-ptx/fp8_dequant.cu): {@code out[m, r, c] = bf16(float(q[m, r,
 * c]) · scales[m, row block of r, c / 128])}, one fp32 product rounded to nearest even — byte for byte the image the host
 * loader writes for the same checkpoint ({@code WeightImage}), so a bf16 kernel run on its output computes exactly what
 * it computes on a dequantized checkpoint. A grid-stride copy: reads one byte and writes two per weight.
 */
public final class Fp8DequantKernel {
    static final int THREADS = 256;
    static final String OP = "fp8 dequant";
    private final Kernel kernel;
    private final int maxBlocks;

    public Fp8DequantKernel(KernelLibrary lib) {
        this.kernel = lib.kernel("fp8_dequant", "fp8_dequant_bf16");
        this.maxBlocks = 16 * lib.gpu().device().smCount();
    }

    /**
     * The launch's tensors: {@code src} FP8 {@code [R, C]} or {@code [E, R, C]} with {@code C % 8 == 0}, 8-byte aligned;
     * {@code out} bf16 of the same shape, 16-byte aligned.
     */
    public record Args(DeviceWeight src, DeviceTensor out) {
        public Args {
            if (src == null || !src.fp8()) throw TensorContract.fail(OP, "src", "must be an FP8 weight, got " + src);
            if (src.dim(src.rank() - 1) % 8 != 0) throw TensorContract.fail(OP, "src", "needs a multiple of 8 columns, got " + src);
            TensorContract.aligned(OP, "src", src.values(), 8);
            TensorContract.require(OP, "out", out, DType.BF16, src.values().shape());
            TensorContract.aligned(OP, "out", out, 16);
        }

        int mats() {
            return src.rank() == 3 ? src.dim(0) : 1;
        }

        int rows() {
            return src.dim(src.rank() - 2);
        }

        int cols() {
            return src.dim(src.rank() - 1);
        }
    }

    /** Dequantizes all of {@code a.src} into {@code a.out}. */
    public void launch(Stream s, Args a) {
        long groups = a.src().values().elements() / 8;
        if (groups == 0) return;
        int blocks = (int) Math.min((groups + THREADS - 1) / THREADS, maxBlocks);
        kernel.args().ptr(a.src().values().address()).ptr(a.src().scales().address()).ptr(a.out().address()).i32(a.mats())
                .i32(a.rows()).i32(a.cols()).i32(a.src().split());
        kernel.launch(s, Dim3.of(blocks), Dim3.of(THREADS), 0);
    }
}
