package dev.jnext.numeric;

import org.junit.jupiter.api.Test;

import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** float8 e4m3fn: all 256 codes, the NaN codes, rounding to nearest even, saturation, subnormals, signed zero. */
class Fp8E4m3Test {

    /** The format's definition, computed in BigDecimal: (-1)^s · (e == 0 ? m/8 · 2^-6 : (1 + m/8) · 2^(e-7)). */
    private static BigDecimal reference(int code) {
        int e = (code >>> 3) & 0xF, m = code & 7;
        BigDecimal frac = BigDecimal.valueOf(e == 0 ? m : 8 + m).divide(BigDecimal.valueOf(8));
        BigDecimal pow = e == 0 ? BigDecimal.ONE.divide(BigDecimal.valueOf(64))
                : e >= 7 ? BigDecimal.valueOf(2).pow(e - 7) : BigDecimal.ONE.divide(BigDecimal.valueOf(2).pow(7 - e));
        BigDecimal v = frac.multiply(pow);
        return (code & 0x80) != 0 ? v.negate() : v;
    }

    @Test
    void everyCodeDecodesToItsDefinitionAndEncodesBackToItself() {
        int nans = 0;
        for (int code = 0; code < 256; code++) {
            byte b = (byte) code;
            float v = Fp8E4m3.toFloat(b);
            if ((code & 0x7F) == 0x7F) {
                assertTrue(Float.isNaN(v), "code " + code);
                assertTrue(Fp8E4m3.isNaN(b));
                nans++;
                continue;
            }
            assertFalse(Fp8E4m3.isNaN(b), "code " + code);
            assertEquals(0, reference(code).compareTo(new BigDecimal(v)), "code 0x" + Integer.toHexString(code) + " = " + v);
            assertEquals(code, Fp8E4m3.fromFloat(v) & 0xFF, "round trip of 0x" + Integer.toHexString(code) + " = " + v);
            assertEquals((code & 0x80) != 0, (Float.floatToRawIntBits(v) & 0x80000000) != 0, "sign of code " + code);
        }
        assertEquals(2, nans, "S.1111.111 only: e4m3fn has no infinities");
        assertEquals(448f, Fp8E4m3.toFloat((byte) 0x7E));
        assertEquals(-448f, Fp8E4m3.toFloat((byte) 0xFE));
        assertEquals(0x1p-9f, Fp8E4m3.toFloat((byte) 0x01), "smallest subnormal");
        assertEquals(0x1p-6f, Fp8E4m3.toFloat((byte) 0x08), "smallest normal");
        assertEquals(7 * 0x1p-9f, Fp8E4m3.toFloat((byte) 0x07), "largest subnormal");
    }

    /** The 127 non-negative finite values in increasing order (code 0 .. 0x7E), strictly increasing. */
    private static List<Float> positives() {
        List<Float> out = new ArrayList<>();
        for (int code = 0; code <= 0x7E; code++) out.add(Fp8E4m3.toFloat((byte) code));
        for (int i = 1; i < out.size(); i++) assertTrue(out.get(i) > out.get(i - 1), "codes increase at " + i);
        return out;
    }

    @Test
    void roundsToNearestWithTiesToEvenAtEveryMidpoint() {
        List<Float> p = positives();
        for (int i = 0; i + 1 < p.size(); i++) {
            float lo = p.get(i), hi = p.get(i + 1);
            float mid = (lo + hi) / 2;                 // exact: both have few significant bits
            assertEquals(0, new BigDecimal(mid).compareTo(new BigDecimal(lo).add(new BigDecimal(hi)).divide(BigDecimal.valueOf(2))));
            int even = (i % 2 == 0) ? i : i + 1;       // code i has mantissa parity i % 2
            for (int sign : new int[]{0, 0x80}) {
                float s = sign == 0 ? 1f : -1f;
                assertEquals(sign | even, Fp8E4m3.fromFloat(s * mid) & 0xFF, "tie between codes " + i + " and " + (i + 1));
                assertEquals(sign | i, Fp8E4m3.fromFloat(s * Math.nextDown(mid)) & 0xFF, "just below the midpoint " + mid);
                assertEquals(sign | (i + 1), Fp8E4m3.fromFloat(s * Math.nextUp(mid)) & 0xFF, "just above the midpoint " + mid);
                assertEquals(sign | i, Fp8E4m3.fromFloat(s * Math.nextUp(lo)) & 0xFF);
                assertEquals(sign | (i + 1), Fp8E4m3.fromFloat(s * Math.nextDown(hi)) & 0xFF);
            }
        }
    }

    @Test
    void magnitudesBeyond448SaturateAndNaNStaysNaN() {
        for (float v : new float[]{448f, Math.nextUp(448f), 460f, 464f, 479.9f, 480f, 512f, 1e6f, Float.MAX_VALUE,
                Float.POSITIVE_INFINITY}) {
            assertEquals(0x7E, Fp8E4m3.fromFloat(v) & 0xFF, "+" + v);
            assertEquals(0xFE, Fp8E4m3.fromFloat(-v) & 0xFF, "-" + v);
        }
        assertEquals(0x7E, Fp8E4m3.fromFloat(Math.nextDown(448f)) & 0xFF, "below 448 rounds to it (quantum 32)");
        assertEquals(0x7D, Fp8E4m3.fromFloat(431.99f) & 0xFF, "below the 416|448 midpoint");
        assertEquals(Fp8E4m3.NAN, Fp8E4m3.fromFloat(Float.NaN));
        assertEquals(Fp8E4m3.NAN, Fp8E4m3.fromFloat(Float.intBitsToFloat(0xFFC00001)), "a negative NaN payload too");
    }

    @Test
    void subnormalsAndZeros() {
        assertEquals(0x00, Fp8E4m3.fromFloat(0f));
        assertEquals(0x80, Fp8E4m3.fromFloat(-0f) & 0xFF, "the sign of zero is kept");
        assertEquals(0x00, Fp8E4m3.fromFloat(0x1p-10f), "half the smallest subnormal: tie to even, 0");
        assertEquals(0x01, Fp8E4m3.fromFloat(Math.nextUp(0x1p-10f)));
        assertEquals(0x02, Fp8E4m3.fromFloat(3 * 0x1p-10f), "1.5 quanta: tie to even, 2");
        assertEquals(0x80, Fp8E4m3.fromFloat(-0x1p-11f) & 0xFF, "a tiny negative rounds to -0");
        assertEquals(0x00, Fp8E4m3.fromFloat(Float.MIN_VALUE));
        assertEquals(0x08, Fp8E4m3.fromFloat(15 * 0x1p-10f), "7.5 quanta: tie to even, the smallest normal 8");
        assertEquals(0x07, Fp8E4m3.fromFloat(Math.nextDown(15 * 0x1p-10f)));
    }
}
