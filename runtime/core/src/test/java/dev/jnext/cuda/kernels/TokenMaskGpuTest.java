package dev.jnext.cuda.kernels;

import dev.jnext.backend.TokenMask;
import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.GpuTestSupport;
import dev.jnext.gpu.Stream;
import dev.jnext.numeric.Bf16;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.Random;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import static dev.jnext.gpu.GpuTestSupport.upload;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Issue 18.3 on the device: {@code mask_logits} sets exactly the logits a row's {@link TokenMask} does not allow to −Inf
 * (bf16 0xff80) and leaves every other bit — and every row without a mask — as it was; then the sampler picks only
 * allowed ids: greedy the CPU rule's argmax over the masked row ({@link TokenMask#apply}), stochastic rows never an id
 * outside the mask (a one-id mask draws that id).
 */
@Tag("gpu")
class TokenMaskGpuTest {
    private static final int VOCAB = 151_936;
    private static final int STRIDE = 151_936;

    private static TokenMask randomMask(SplittableRandom rnd, int size, double density) {
        return TokenMask.of(size, IntStream.range(0, size).filter(i -> rnd.nextDouble() < density).toArray());
    }

    /** Masks for 8 rows: none, one id, 1%, 30%, all, a shorter mask (ids past it not allowed), none, two ids. */
    private static TokenMask[] masks(SplittableRandom rnd) {
        return new TokenMask[]{null, TokenMask.of(VOCAB, 4242), randomMask(rnd, VOCAB, 0.01), randomMask(rnd, VOCAB, 0.3),
                randomMask(rnd, VOCAB, 1.0), randomMask(rnd, 1000, 0.5), null, TokenMask.of(VOCAB, 7, 151_935)};
    }

    @Test
    void disallowedLogitsBecomeMinusInfinityAndNothingElseChanges() {
        SplittableRandom rnd = new SplittableRandom(18);
        TokenMask[] masks = masks(rnd);
        int rows = masks.length;
        short[] l = GpuTestSupport.randomBf16(new Random(3), rows * STRIDE, 4.0);
        Stream s = GpuTestSupport.stream();
        try (TokenMaskKernel k = new TokenMaskKernel(GpuTestSupport.kernels(), 16, VOCAB); DeviceBuffer dl = upload(l, "logits")) {
            TokenMaskKernel.Args a = new TokenMaskKernel.Args(Tensors.of(dl, DType.BF16, rows, STRIDE));
            assertFalse(k.apply(s, a, new TokenMask[rows], VOCAB, rows), "no mask: nothing launched");
            assertTrue(k.apply(s, a, masks, VOCAB, rows));
            s.synchronize();
            short[] got = GpuTestSupport.download(dl, rows * STRIDE);
            for (int r = 0; r < rows; r++) {
                for (int i = 0; i < VOCAB; i++) {
                    short want = masks[r] == null || masks[r].allows(i) ? l[r * STRIDE + i] : (short) 0xff80;
                    if (got[r * STRIDE + i] != want) {
                        throw new AssertionError("row " + r + " id " + i + ": " + Integer.toHexString(got[r * STRIDE + i] & 0xffff)
                                + ", expected " + Integer.toHexString(want & 0xffff));
                    }
                }
            }
        }
    }

    @Test
    void theSamplerPicksOnlyAllowedIds() {
        SplittableRandom rnd = new SplittableRandom(19);
        TokenMask[] masks = masks(rnd);
        int rows = masks.length;
        short[] l = GpuTestSupport.randomBf16(new Random(4), rows * STRIDE, 4.0);
        Gpu gpu = GpuTestSupport.gpu();
        Stream s = GpuTestSupport.stream();
        for (float temperature : new float[]{0f, 0.7f, 1.5f}) {
            SamplingKernel.RowParams[] p = new SamplingKernel.RowParams[rows];
            for (int r = 0; r < rows; r++) p[r] = new SamplingKernel.RowParams(temperature, r % 2 == 0 ? 0 : 40, r % 3 == 0 ? 1f : 0.9f, 0f);
            for (long seed = 1; seed <= (temperature == 0 ? 1 : 20); seed++) {
                try (TokenMaskKernel k = new TokenMaskKernel(GpuTestSupport.kernels(), rows, VOCAB);
                     SamplingKernel sk = new SamplingKernel(GpuTestSupport.kernels(), rows); DeviceBuffer dl = upload(l, "logits");
                     DeviceBuffer dp = SamplingFixture.params(p); DeviceBuffer dr = SamplingFixture.rng(rows, seed); DeviceBuffer ids = gpu.allocate(4L * rows, "ids")) {
                    k.apply(s, new TokenMaskKernel.Args(Tensors.of(dl, DType.BF16, rows, STRIDE)), masks, VOCAB, rows);
                    SamplingKernel.Args a = Tensors.sampling(dl, STRIDE, dp, dr, null, null, ids);
                    if (temperature == 0) sk.greedy(s, a, VOCAB, rows);
                    else sk.sample(s, a, VOCAB, rows);
                    s.synchronize();
                    int[] got = MoeFixture.downloadInts(ids, rows);
                    for (int r = 0; r < rows; r++) {
                        float[] row = new float[VOCAB];
                        for (int i = 0; i < VOCAB; i++) row[i] = Bf16.toFloat(l[r * STRIDE + i]);
                        if (masks[r] != null) masks[r].apply(row, VOCAB);
                        String what = "T " + temperature + " seed " + seed + " row " + r;
                        assertTrue(masks[r] == null || masks[r].allows(got[r]), what + " drew " + got[r] + ", not allowed");
                        if (temperature == 0) assertEquals(SamplingKernelReference.referenceArgmax(row, VOCAB), got[r], what);
                        if (masks[r] != null && masks[r].count() == 1) assertEquals(4242, got[r], what + ": the one allowed id");
                    }
                }
            }
        }
    }


}
