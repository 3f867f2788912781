package dev.jnext.cuda.kernels;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.GpuTestSupport;
import dev.jnext.numeric.Bf16;
import dev.jnext.cpu.ops.Activations;
import dev.jnext.cpu.ops.AttentionCore;
import dev.jnext.cuda.state.AttentionBatch;
import dev.jnext.cuda.state.KvPages;
import dev.jnext.cuda.state.PageTable;

import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * A batch of sequences over a paged KV pool for the attention GPU tests: page tables reserved in turns (so no sequence's
 * pages are contiguous), every cached K/V row random bf16 in a host image of the pool whose other rows hold a NaN pattern,
 * and the CPU reference ({@link AttentionCore} on the bf16 values as floats).
 */
final class AttentionFixture implements AutoCloseable {
    /** One sequence: cached tokens before the step and new tokens in it; past −1 = a padded entry. */
    record Spec(int past, int newTokens) {}

    static final short NAN_BITS = (short) 0xffff;
    static final int LAYERS = 2;
    static final int LAYER = 1;  // the tests use the second layer, so layer offsets are exercised

    final AttentionGeometry g;
    final List<Spec> specs;
    final KvPages pages;
    final List<PageTable> tables = new ArrayList<>();
    final List<AttentionBatch.Sequence> sequences = new ArrayList<>();
    /** Host image of the whole pool (all layers, K and V), bf16 bits. */
    final short[] pool;
    final int totalTokens;
    final int[] firstRow;
    private final boolean view;

    AttentionFixture(AttentionGeometry g, List<Spec> specs, int extraPages) {
        this(g, specs, KvPages.allocate(GpuTestSupport.gpu(),
                new KvPages.Geometry(LAYERS, g.kvHeads(), g.headDim(), pagesFor(specs) + extraPages)), null, null);
        // reserve one page per sequence per round: pages interleave between sequences
        for (Spec s : specs) tables.add(s.past() >= 0 ? pages.newSequence() : null);
        for (int round = 0; ; round++) {
            boolean more = false;
            for (int i = 0; i < specs.size(); i++) {
                Spec s = specs.get(i);
                if (s.past() < 0) continue;
                int total = s.past() + s.newTokens();
                tables.get(i).reserve(Math.min(total, (round + 1) * KvPages.PAGE_TOKENS));
                more |= (round + 1) * KvPages.PAGE_TOKENS < total;
            }
            if (!more) break;
        }
        for (int i = 0; i < specs.size(); i++) {
            Spec s = specs.get(i);
            sequences.add(s.past() < 0 ? AttentionBatch.Sequence.padding(s.newTokens())
                    : new AttentionBatch.Sequence(tables.get(i), s.past(), s.newTokens()));
        }
    }

    private AttentionFixture(AttentionGeometry g, List<Spec> specs, KvPages pages, List<PageTable> tables, short[] pool) {
        this.g = g;
        this.specs = specs;
        this.pages = pages;
        if (tables != null) this.tables.addAll(tables);
        int rows = 0;
        firstRow = new int[specs.size()];
        for (int i = 0; i < specs.size(); i++) {
            firstRow[i] = rows;
            rows += specs.get(i).newTokens();
        }
        this.totalTokens = rows;
        if (pool == null) {
            pool = new short[(int) (pages.geometry().totalBytes() / 2)];
            java.util.Arrays.fill(pool, NAN_BITS);
        }
        this.pool = pool;
        this.view = tables != null;
    }

    private static int pagesFor(List<Spec> specs) {
        int need = 0;
        for (Spec s : specs) if (s.past() >= 0) need += (s.past() + s.newTokens() + KvPages.PAGE_TOKENS - 1) / KvPages.PAGE_TOKENS;
        return need;
    }

    /** The same pool and page tables seen as a batch of other (past, new) lengths, e.g. an earlier step; not to be closed. */
    AttentionFixture withSpecs(List<Spec> other) {
        return new AttentionFixture(g, other, pages, tables, pool);
    }

    /** Fills tokens [0, upTo(i)) of every sequence with random K and V (scale 1) in the host image. */
    void randomKv(Random rnd, boolean includeNew) {
        for (int i = 0; i < specs.size(); i++) {
            Spec s = specs.get(i);
            if (s.past() < 0) continue;
            int upTo = s.past() + (includeNew ? s.newTokens() : 0);
            for (int t = 0; t < upTo; t++) {
                for (int h = 0; h < g.kvHeads(); h++) {
                    for (int kv = 0; kv < 2; kv++) {
                        int base = index(i, t, h, kv);
                        for (int d = 0; d < g.headDim(); d++) pool[base + d] = Bf16.fromFloat((float) rnd.nextGaussian());
                    }
                }
            }
        }
    }

    /** Element index in {@link #pool} of (sequence i, token t, kv head h, K=0|V=1), dim 0. */
    int index(int seq, int token, int kvHead, int kOrV) {
        PageTable t = tables.get(seq);
        long off = pages.byteOffset(LAYER, kOrV, t.page(token / KvPages.PAGE_TOKENS), kvHead, token % KvPages.PAGE_TOKENS);
        return (int) (off / 2);
    }

    void uploadPool() {
        try (Arena a = Arena.ofConfined()) {
            pages.buffer().copyFromHost(a.allocateFrom(ValueLayout.JAVA_SHORT, pool));
        }
    }

    short[] downloadPool() {
        return GpuTestSupport.download(pages.buffer(), pool.length);
    }

    AttentionBatch stage() {
        int maxPages = 1;
        for (PageTable t : tables) if (t != null) maxPages = Math.max(maxPages, t.pageCount() + 1);
        AttentionBatch b = new AttentionBatch(GpuTestSupport.gpu(), specs.size() + 1, maxPages);
        b.stage(sequences, GpuTestSupport.stream());
        return b;
    }

    /** Keys or values of sequence i, tokens [0, n), as floats [n, kvHeads, headDim], read from {@code image} (magnitudes if abs). */
    float[] gather(short[] image, int seq, int n, int kOrV, boolean abs) {
        int hd = g.headDim();
        float[] out = new float[n * g.kvHeads() * hd];
        for (int t = 0; t < n; t++) {
            for (int h = 0; h < g.kvHeads(); h++) {
                int base = index(seq, t, h, kOrV);
                for (int d = 0; d < hd; d++) {
                    float v = Bf16.toFloat(image[base + d]);
                    out[(t * g.kvHeads() + h) * hd + d] = abs ? Math.abs(v) : v;
                }
            }
        }
        return out;
    }

    /**
     * The reference attention of every new token: {@code o[T, heads·hd]} and, run on |V|, {@code Σ p·|v|} (the bound of the
     * error from rounding the probabilities to bf16). Padded rows stay 0.
     */
    float[][] reference(short[] image, short[] q) {
        int hd = g.headDim(), w = g.heads() * hd;
        float[] o = new float[totalTokens * w], oAbs = new float[totalTokens * w];
        AttentionCore core = new AttentionCore(g.heads(), g.kvHeads(), hd);
        for (int i = 0; i < specs.size(); i++) {
            Spec s = specs.get(i);
            if (s.past() < 0 || s.newTokens() == 0) continue;
            int n = s.past() + s.newTokens();
            float[] qf = new float[s.newTokens() * w];
            for (int j = 0; j < qf.length; j++) qf[j] = Bf16.toFloat(q[firstRow[i] * w + j]);
            float[] keys = gather(image, i, n, 0, false);
            core.forward(qf, 0, s.newTokens(), keys, gather(image, i, n, 1, false), s.past(), o, firstRow[i] * w);
            core.forward(qf, 0, s.newTokens(), keys, gather(image, i, n, 1, true), s.past(), oAbs, firstRow[i] * w);
        }
        return new float[][] {o, oAbs};
    }

    /**
     * Compares the kernel output with the reference. bf16 rounds to nearest with unit roundoff u = 2⁻⁸. The kernel rounds
     * each probability before P·V, so |Δo| ≤ u·Σp|v|; the kernel and the reference each round o to bf16 (together ≤ 2u|o|);
     * with the gate, sigmoid and the product round once more (≤ 2u|expected|). Everything else is fp32. Allowed:
     * s·(2u·Σp|v| + 2u·|o|) + 2u·|expected| (s = the rounded sigmoid, 1 without gate), i.e. a factor 2 on the P term.
     * Padded rows must be exactly 0; every row must be written (no NaN from the poison); relative L2 error < 1e-2.
     * The failure message names the worst element (largest error / tolerance) and the relative L2 error.
     */
    void assertOutput(float[][] ref, short[] gate, int gateTokenStride, int gateHeadStride, short[] got, String what) {
        int hd = g.headDim(), w = g.heads() * hd;
        double errSq = 0, refSq = 0, worst = 0;
        String worstAt = "";
        int checked = 0, over = 0;
        for (int i = 0; i < specs.size(); i++) {
            Spec s = specs.get(i);
            for (int t = firstRow[i]; t < firstRow[i] + s.newTokens(); t++) {
                for (int h = 0; h < g.heads(); h++) {
                    for (int d = 0; d < hd; d++) {
                        int at = t * w + h * hd + d;
                        float v = Bf16.toFloat(got[at]);
                        assertFalse(Float.isNaN(v), what + ": NaN at token " + t + " head " + h + " dim " + d);
                        if (s.past() < 0) {
                            if (v != 0f) fail(what + ": padded row " + t + " not zero: " + v);
                            continue;
                        }
                        float o = ref[0][at];
                        float sig = 1f, expected = Bf16.round(o);
                        if (gate != null) {
                            sig = Bf16.round(Activations.sigmoid(Bf16.toFloat(gate[t * gateTokenStride + h * gateHeadStride + d])));
                            expected = Bf16.round(expected * sig);
                        }
                        double tol = sig * 0x1p-7 * (ref[1][at] + Math.abs(o)) + 0x1p-7 * Math.abs(expected) + 1e-6;
                        double ratio = Math.abs(v - expected) / tol;
                        if (ratio > 1) over++;
                        if (ratio > worst) {
                            worst = ratio;
                            worstAt = "token " + t + " head " + h + " dim " + d + ": expected " + expected + " got " + v
                                    + " (tolerance " + (float) tol + ")";
                        }
                        errSq += (v - expected) * (double) (v - expected);
                        refSq += expected * (double) expected;
                        checked++;
                    }
                }
            }
        }
        assertTrue(checked > 0, what + ": nothing checked");
        double rel = Math.sqrt(errSq / Math.max(refSq, 1e-30));
        String stats = String.format(java.util.Locale.ROOT, "%s: %d elements, relative L2 error %.2e, worst error/tolerance %.2f at %s",
                what, checked, rel, worst, worstAt);
        System.out.println(stats);
        if (over > 0) fail(over + " elements over tolerance; " + stats);
        assertTrue(rel < 1e-2, stats);
    }

    static DeviceBuffer upload(short[] data, String label) {
        return GpuTestSupport.upload(data, label);
    }

    @Override
    public void close() {
        if (!view) pages.close();
    }
}
