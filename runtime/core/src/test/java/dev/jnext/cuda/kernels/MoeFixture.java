package dev.jnext.cuda.kernels;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Gpu;
import dev.jnext.model.DType;
import dev.jnext.numeric.Bf16;
import dev.jnext.model.weights.Matrix;
import dev.jnext.cpu.ops.SparseMoe;
import dev.jnext.cpu.ops.SwiGluMlp;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * Random bf16 weights of one MoE block in the GPU layouts (router + shared gate rows, fused gate_up, down, shared
 * expert), uploaded once; CPU references at the kernels' bf16 rounding points; and the same weights as a
 * {@link SparseMoe} op. Weights are scaled so every projection output is O(1) (never zeros).
 */
final class MoeFixture implements AutoCloseable {
    final GpuSparseMoe.Shape shape;
    final short[] router, gateUp, down, sharedGateUp, sharedDown;
    final DeviceBuffer dRouter, dGateUp, dDown, dSharedGateUp, dSharedDown;

    MoeFixture(Gpu gpu, GpuSparseMoe.Shape shape, long seed) {
        this.shape = shape;
        int h = shape.hidden(), e = shape.experts(), i = shape.inter(), is = Math.max(1, shape.sharedInter());
        int rr = GpuSparseMoe.routerRows(shape);
        router = random(seed, (long) rr * h, 2.0 / Math.sqrt(h));
        for (int r = e + (shape.hasShared() ? 1 : 0); r < rr; r++) for (int c = 0; c < h; c++) router[r * h + c] = 0;
        gateUp = random(seed + 1, (long) e * 2 * i * h, 1.7 / Math.sqrt(h));
        down = random(seed + 2, (long) e * h * i, 1.7 / Math.sqrt(i));
        sharedGateUp = random(seed + 3, 2L * is * h, 1.7 / Math.sqrt(h));
        sharedDown = random(seed + 4, (long) h * is, 1.7 / Math.sqrt(is));
        dRouter = upload(gpu, router, "router");
        dGateUp = upload(gpu, gateUp, "gate_up");
        dDown = upload(gpu, down, "down");
        dSharedGateUp = upload(gpu, sharedGateUp, "shared_gate_up");
        dSharedDown = upload(gpu, sharedDown, "shared_down");
    }

    GpuSparseMoe.Weights weights() {
        return new GpuSparseMoe.Weights(dRouter.address(), dGateUp.address(), dDown.address(),
                shape.hasShared() ? dSharedGateUp.address() : 0, shape.hasShared() ? dSharedDown.address() : 0);
    }

    /** Uniform values in ±scale·√3 (unit variance times scale), rounded to bf16; generated in parallel, deterministic. */
    static short[] random(long seed, long n, double scale) {
        if (n > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("too large for one array: " + n);
        short[] a = new short[(int) n];
        int chunk = 1 << 20;
        double span = scale * Math.sqrt(3);
        IntStream.range(0, (int) ((n + chunk - 1) / chunk)).parallel().forEach(c -> {
            SplittableRandom r = new SplittableRandom(seed * 1_000_003L + c);
            int end = (int) Math.min(n, (long) (c + 1) * chunk);
            for (int j = c * chunk; j < end; j++) {
                short v;
                do v = Bf16.fromFloat((float) ((r.nextDouble() * 2 - 1) * span)); while (v == 0 || v == (short) 0x8000);
                a[j] = v;
            }
        });
        return a;
    }

    static DeviceBuffer upload(Gpu gpu, short[] data, String label) {
        DeviceBuffer b = gpu.allocate(2L * Math.max(1, data.length), label);
        try (Arena a = Arena.ofConfined()) {
            b.copyFromHost(a.allocateFrom(ValueLayout.JAVA_SHORT, data));
        }
        return b;
    }

    static DeviceBuffer uploadInts(Gpu gpu, int[] data, String label) {
        DeviceBuffer b = gpu.allocate(4L * Math.max(1, data.length), label);
        try (Arena a = Arena.ofConfined()) {
            b.copyFromHost(a.allocateFrom(ValueLayout.JAVA_INT, data));
        }
        return b;
    }

    static int[] downloadInts(DeviceBuffer b, int n) {
        dev.jnext.gpu.GpuTestSupport.stream().synchronize();
        try (Arena a = Arena.ofConfined()) {
            MemorySegment host = a.allocate(4L * n);
            b.copyToHost(host.asSlice(0, Math.min(4L * n, b.bytes())));
            return host.toArray(ValueLayout.JAVA_INT);
        }
    }

    /** The block's output for one token at the kernels' rounding points, given the routing and the shared-gate logit. */
    float[] referenceToken(short[] x, int t, int[] ids, short[] weights, float gateLogit, float[] scaleOut) {
        int h = shape.hidden(), i = shape.inter(), k = shape.topK();
        float[] acc = new float[h];
        float[] scale = new float[h];
        for (int j = 0; j < k; j++) {
            float[] c = MoeExpertGemmReference.referenceExpert(x, t * h, gateUp, down, ids[t * k + j], h, i, Bf16.toFloat(weights[t * k + j]));
            for (int o = 0; o < h; o++) {
                acc[o] += c[o];
                scale[o] += Math.abs(c[o]);
            }
        }
        float[] out = new float[h];
        if (!shape.hasShared()) {
            for (int o = 0; o < h; o++) out[o] = Bf16.round(acc[o]);
        } else {
            // shared expert: cuBLASLt gate_up (bf16 out) → SiluMul → cuBLASLt down (bf16 out)
            float[] sh = MoeExpertGemmReference.referenceExpert(x, t * h, sharedGateUp, sharedDown, 0, h, shape.sharedInter(), 1f);
            float sg = Bf16.round((float) (1.0 / (1.0 + Math.exp(-gateLogit))));
            for (int o = 0; o < h; o++) {
                float term = Bf16.round(sg * sh[o]);
                out[o] = Bf16.round(Bf16.round(acc[o]) + term);
                scale[o] += Math.abs(term);
            }
        }
        if (scaleOut != null) System.arraycopy(scale, 0, scaleOut, 0, h);
        return out;
    }

    /** The same weights as the CPU reference op (bf16 matrices viewed in place). */
    SparseMoe op() {
        int h = shape.hidden(), e = shape.experts(), i = shape.inter(), is = Math.max(1, shape.sharedInter());
        MemorySegment gu = MemorySegment.ofArray(gateUp), dn = MemorySegment.ofArray(down);
        List<SwiGluMlp> experts = new ArrayList<>();
        for (int x = 0; x < e; x++) {
            long base = 2L * x * 2 * i * h;
            experts.add(new SwiGluMlp(
                    new Matrix("gate" + x, gu.asSlice(base, 2L * i * h), DType.BF16, i, h),
                    new Matrix("up" + x, gu.asSlice(base + 2L * i * h, 2L * i * h), DType.BF16, i, h),
                    new Matrix("down" + x, dn.asSlice(2L * x * h * i, 2L * h * i), DType.BF16, h, i)));
        }
        MemorySegment r = MemorySegment.ofArray(router), sgu = MemorySegment.ofArray(sharedGateUp);
        SwiGluMlp shared = new SwiGluMlp(new Matrix("sg", sgu.asSlice(0, 2L * is * h), DType.BF16, is, h),
                new Matrix("su", sgu.asSlice(2L * is * h, 2L * is * h), DType.BF16, is, h),
                new Matrix("sd", MemorySegment.ofArray(sharedDown), DType.BF16, h, is));
        Matrix gate = new Matrix("shared_gate", r.asSlice(2L * e * h, 2L * h), DType.BF16, 1, h);
        return new SparseMoe(new Matrix("router", r.asSlice(0, 2L * e * h), DType.BF16, e, h), experts, shape.topK(),
                shape.normTopkProb(), shared, gate);
    }

    @Override
    public void close() {
        for (DeviceBuffer b : new DeviceBuffer[]{dRouter, dGateUp, dDown, dSharedGateUp, dSharedDown}) b.close();
    }
}
