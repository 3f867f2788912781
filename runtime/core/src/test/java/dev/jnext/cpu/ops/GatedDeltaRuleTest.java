package dev.jnext.cpu.ops;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The chunked (WY) and the recurrent delta rule compute the same outputs and final state. */
class GatedDeltaRuleTest {

    static float[] random(SplittableRandom r, int n, double lo, double hi) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (lo + (hi - lo) * r.nextDouble());
        return a;
    }

    static double maxRel(float[] a, float[] b) {
        double d = 0, m = 0;
        for (int i = 0; i < a.length; i++) {
            assertTrue(Float.isFinite(a[i]) && Float.isFinite(b[i]));
            d = Math.max(d, Math.abs(a[i] - b[i]));
            m = Math.max(m, Math.abs(b[i]));
        }
        return d / m;
    }

    void check(int hk, int hv, int dk, int dv, int rows, int chunk, double gMin) {
        GatedDeltaRule rule = new GatedDeltaRule(hk, hv, dk, dv);
        SplittableRandom r = new SplittableRandom(rows * 31L + chunk);
        int cw = 2 * hk * dk + hv * dv;
        int first = 3;                                  // the sequence starts inside a larger batch
        int total = first + rows + 2;
        float[] qkv = random(r, total * cw, -1, 1);
        float[] beta = random(r, total * hv, 0, 1);
        float[] g = random(r, total * hv, gMin, 0);
        float[] init = random(r, 2 * rule.stateSize(), -0.5, 0.5);
        float[] s1 = init.clone();
        float[] s2 = init.clone();
        float[] o1 = new float[total * hv * dv];
        float[] o2 = new float[total * hv * dv];
        int off = rule.stateSize();                     // slot 1
        rule.recurrent(qkv, first, rows, beta, g, s1, off, o1);
        rule.chunked(qkv, first, rows, beta, g, s2, off, o2, chunk);
        double eo = maxRel(o2, o1);
        double es = maxRel(s2, s1);
        assertTrue(eo < 2e-5, "outputs differ by " + eo);
        assertTrue(es < 2e-5, "states differ by " + es);
        for (int i = 0; i < off; i++) assertTrue(s1[i] == init[i] && s2[i] == init[i], "slot 0 untouched");
    }

    @Test
    void chunkedEqualsRecurrentAcrossChunkBoundaries() {
        check(2, 4, 16, 24, 150, 64, -2);
        check(2, 6, 12, 8, 70, 64, -1);
        check(1, 1, 8, 8, 33, 16, -0.5);
    }

    @Test
    void chunkedEqualsRecurrentWithStrongForgetting() {
        check(2, 4, 16, 24, 130, 64, -20);
    }

    @Test
    void singleTokenChunkIsOneRecurrentStep() {
        check(2, 4, 16, 24, 1, 64, -3);
    }
}
