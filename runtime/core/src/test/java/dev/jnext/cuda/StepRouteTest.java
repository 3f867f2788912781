package dev.jnext.cuda;

import dev.jnext.JnextException;
import dev.jnext.backend.PrefillMode;
import dev.jnext.cuda.CudaModel.StepPath;
import dev.jnext.cuda.kernels.StepShape;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CUDA runner's capture sizes and its choice of executor path per step, without a GPU. */
class StepRouteTest {
    private static final CudaOptions EAGER = CudaOptions.defaults();  // 16 slots, 8,192-token steps, decode graphs on
    private static final CudaOptions PIECEWISE = CudaOptions.defaults().withMaxStepTokens(1024).withPrefill(PrefillMode.PIECEWISE)
            .withMaxPrefillBucket(512);

    @Test
    void decodeBucketsCoverTheSlotsAndTheirEntriesAndRowsFollow() {
        CapturePolicy p = CapturePolicy.of(EAGER);
        assertEquals(16, p.decode().largest());
        assertEquals(17, p.maxEntries(), "16 slots and the prefill padding entry");
        assertEquals(8192, p.maxTokens());
        CapturePolicy odd = CapturePolicy.of(EAGER.withMaxSequences(17));
        assertEquals(24, odd.decode().largest());
        assertEquals(24, odd.maxEntries(), "the largest captured decode bucket has 24 entries");
        assertEquals(18, CapturePolicy.of(EAGER.withMaxSequences(17).withDecodeGraphs(false)).maxEntries(),
                "without decode graphs the slots and the padding entry");
        assertEquals(24, CapturePolicy.of(EAGER.withMaxSequences(17).withMaxStepTokens(8)).maxTokens(),
                "a decode bucket needs as many activation rows as entries");
        assertTrue(p.decodeGraphs());
        assertFalse(p.prefillGraphs());
    }

    @Test
    void prefillBucketsAreCappedOnce() {
        assertEquals(CapturePolicy.PREFILL_CAP, CapturePolicy.of(EAGER.withMaxStepTokens(2048)).prefill().largest(),
                "eager mode pads EAGER_PREFILL_BUCKET steps to sglang's whole list");
        assertEquals(58, CapturePolicy.of(EAGER).prefill().count());
        CudaOptions pw = EAGER.withPrefill(PrefillMode.PIECEWISE);
        assertEquals(8192, CapturePolicy.of(pw.withMaxStepTokens(20000)).prefill().largest(), "default: 8,192 at most");
        assertEquals(1024, CapturePolicy.of(pw.withMaxStepTokens(1024)).prefill().largest(), "default: the step budget");
        assertEquals(512, CapturePolicy.of(pw.withMaxStepTokens(1024).withMaxPrefillBucket(512)).prefill().largest());
        assertEquals(1024, CapturePolicy.of(pw.withMaxStepTokens(1024).withMaxPrefillBucket(4096)).prefill().largest(),
                "an explicit largest bucket is capped at the activation rows");
        assertEquals(2, CapturePolicy.of(pw.withMaxStepTokens(2)).prefill().largest(), "a budget below the first bucket");
        assertTrue(CapturePolicy.of(pw.withPrefill(PrefillMode.GDN_LAYER_EAGER)).prefillGraphs());
    }

    @Test
    void theOptionsChooseThePathAndItsShape() {
        CapturePolicy eager = CapturePolicy.of(EAGER), pw = CapturePolicy.of(PIECEWISE);
        StepRoute d = StepRoute.choose(eager, null, 9, 9, true);
        assertEquals(StepPath.DECODE_GRAPH, d.path());
        assertEquals(StepShape.decode(12), d.shape());
        assertEquals(-1, d.prefillBucket());
        StepRoute off = StepRoute.choose(CapturePolicy.of(EAGER.withDecodeGraphs(false)), null, 9, 9, true);
        assertEquals(StepPath.EAGER_DECODE, off.path());
        assertEquals(StepShape.decode(9), off.shape());
        StepRoute p = StepRoute.choose(eager, null, 3, 100, false);
        assertEquals(StepPath.EAGER_PREFILL, p.path());
        assertEquals(StepShape.prefill(100, 3), p.shape());
        assertFalse(p.eagerFallback(), "no prefill graphs: nothing falls back");
        StepRoute g = StepRoute.choose(pw, null, 3, 100, false);
        assertEquals(StepPath.PIECEWISE_PREFILL, g.path());
        assertEquals(StepShape.prefill(112, 17), g.shape(), "the bucket's rows, every entry");
        assertFalse(g.eagerFallback());
        StepRoute above = StepRoute.choose(pw, null, 3, 600, false);
        assertEquals(StepPath.EAGER_PREFILL, above.path());
        assertEquals(StepShape.prefill(600, 3), above.shape());
        assertTrue(above.eagerFallback(), "above the largest bucket: eager, logged");
        assertFalse(StepRoute.choose(pw, StepPath.EAGER_PREFILL, 3, 600, false).eagerFallback(), "a forced path is not logged");
        StepRoute oneToken = StepRoute.choose(pw, null, 1, 1, true);
        assertEquals(StepPath.DECODE_GRAPH, oneToken.path(), "a step of single tokens is a decode step in any prefill mode");
    }

    @Test
    void forcedPathsPadOrRunExactly() {
        CapturePolicy eager = CapturePolicy.of(EAGER), pw = CapturePolicy.of(PIECEWISE);
        assertEquals(StepShape.decode(12), StepRoute.choose(eager, StepPath.EAGER_DECODE_BUCKET, 9, 9, true).shape());
        assertEquals(StepShape.decode(12), StepRoute.choose(CapturePolicy.of(EAGER.withDecodeGraphs(false)),
                StepPath.EAGER_DECODE_BUCKET, 9, 9, true).shape(), "the buckets exist without their graphs");
        assertEquals(StepShape.prefill(112, 17), StepRoute.choose(eager, StepPath.EAGER_PREFILL_BUCKET, 3, 100, false).shape());
        assertEquals(StepShape.prefill(112, 17), StepRoute.choose(pw, StepPath.EAGER_PREFILL_BUCKET, 3, 100, false).shape());
        StepRoute decodeAsPrefill = StepRoute.choose(eager, StepPath.EAGER_PREFILL, 4, 4, true);
        assertEquals(StepShape.prefill(4, 4), decodeAsPrefill.shape());
        assertEquals(4, decodeAsPrefill.prefillBucket());
        assertEquals(StepShape.prefill(4, 17), StepRoute.choose(pw, StepPath.PIECEWISE_PREFILL, 4, 4, true).shape());
    }

    @Test
    void refusalsNameTheCause() {
        CapturePolicy eager = CapturePolicy.of(EAGER), pw = CapturePolicy.of(PIECEWISE);
        assertEquals("a decode path needs one token per sequence",
                refusal(() -> StepRoute.choose(eager, StepPath.DECODE_GRAPH, 2, 5, false)));
        assertEquals("a decode path needs one token per sequence",
                refusal(() -> StepRoute.choose(eager, StepPath.EAGER_DECODE, 2, 5, false)));
        assertEquals("a step of 600 tokens is above the largest prefill bucket",
                refusal(() -> StepRoute.choose(pw, StepPath.PIECEWISE_PREFILL, 3, 600, false)));
        assertEquals("a step of 600 tokens is above the largest prefill bucket",
                refusal(() -> StepRoute.choose(pw, StepPath.EAGER_PREFILL_BUCKET, 3, 600, false)));
        assertEquals("prefill graphs are off (CudaOptions.prefill is EAGER)",
                refusal(() -> StepRoute.choose(eager, StepPath.PIECEWISE_PREFILL, 3, 100, false)));
        // eager mode pads to sglang's list up to 8,192, which can be above a small step budget's activation rows
        CapturePolicy small = CapturePolicy.of(EAGER.withMaxStepTokens(100));
        assertEquals("prefill bucket 112 exceeds the 100 activation rows",
                refusal(() -> StepRoute.choose(small, StepPath.EAGER_PREFILL_BUCKET, 1, 100, false)));
        assertEquals(StepShape.prefill(100, 1), StepRoute.choose(small, null, 1, 100, false).shape(), "unpadded: no limit");
        // decode graphs off: refused only by the check the runner makes after reserving the step's KV pages
        StepRoute off = StepRoute.choose(CapturePolicy.of(EAGER.withDecodeGraphs(false)), StepPath.DECODE_GRAPH, 3, 3, true);
        assertEquals(StepShape.decode(4), off.shape());
        assertEquals("decode graphs are off (CudaOptions.decodeGraphs)",
                refusal(() -> off.checkDecodeBucket(CapturePolicy.of(EAGER.withDecodeGraphs(false)))));
        StepRoute on = StepRoute.choose(eager, StepPath.DECODE_GRAPH, 3, 3, true);
        on.checkDecodeBucket(eager);
        StepRoute.choose(eager, null, 3, 30, false).checkDecodeBucket(eager);
        // more sequences than the largest bucket: the runner's slot check comes first, the route still refuses it
        StepRoute tooMany = StepRoute.choose(eager, StepPath.EAGER_DECODE_BUCKET, 17, 17, true);
        assertNull(tooMany.shape());
        assertEquals("a decode batch of 17 exceeds the largest bucket 16", refusal(() -> tooMany.checkDecodeBucket(eager)));
    }

    private static String refusal(Runnable r) {
        return assertThrows(JnextException.class, r::run).getMessage();
    }
}
