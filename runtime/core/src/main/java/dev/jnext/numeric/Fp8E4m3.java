package dev.jnext.numeric;

/**
 * float8 e4m3fn (torch's {@code float8_e4m3fn}, safetensors' {@code F8_E4M3}) as an 8-bit pattern in a {@code byte}:
 * 1 sign bit, 4 exponent bits (bias 7), 3 mantissa bits, subnormals, no infinities; {@code S.1111.111} is NaN, so the
 * largest finite magnitude is {@code 1.75 · 2^8 = 448} and the smallest subnormal {@code 2^-9}.
 */
public final class Fp8E4m3 {
    /** The largest finite magnitude. */
    public static final float MAX = 448f;

    /** The positive NaN pattern (the negative one is {@code 0xFF}). */
    public static final byte NAN = 0x7F;

    private static final float[] DECODE = new float[256];

    static {
        for (int code = 0; code < 256; code++) {
            int exponent = (code >>> 3) & 0xF;
            int mantissa = code & 0x7;
            float magnitude;
            if (exponent == 0xF && mantissa == 0x7) {
                magnitude = Float.NaN;
            } else if (exponent == 0) {
                magnitude = Math.scalb((float) mantissa, -9);                 // m/8 · 2^-6
            } else {
                magnitude = Math.scalb((float) (8 + mantissa), exponent - 10); // (1 + m/8) · 2^(e-7)
            }
            DECODE[code] = (code & 0x80) != 0 ? -magnitude : magnitude;
        }
    }

    private Fp8E4m3() {}

    /** The value of a pattern (exact in float); NaN for {@code 0x7F} and {@code 0xFF}. */
    public static float toFloat(byte b) {
        return DECODE[b & 0xFF];
    }

    /** Whether a pattern is one of the two NaN codes. */
    public static boolean isNaN(byte b) {
        return (b & 0x7F) == 0x7F;
    }

    /**
     * Rounds a float to the nearest e4m3fn value, ties to even; magnitudes beyond {@link #MAX} (infinities included)
     * saturate to ±448 (what clamping to the format's range before the cast does); NaN becomes {@link #NAN}. The sign of
     * a zero is kept.
     */
    public static byte fromFloat(float f) {
        if (Float.isNaN(f)) return NAN;
        int sign = (Float.floatToRawIntBits(f) >>> 24) & 0x80;
        float a = Math.abs(f);
        if (a >= MAX) return (byte) (sign | 0x7E);
        if (a < 0x1p-6f) {
            // subnormal range, quantum 2^-9: code = round(a · 2^9), and 8 is exactly the smallest normal's code
            return (byte) (sign | (int) Math.rint(a * 0x1p9f));
        }
        int e = Math.getExponent(a);                       // -6 .. 8
        float quantum = Math.scalb(1f, e - 3);
        float r = (float) Math.rint(a / quantum) * quantum; // exact: a / quantum only moves the exponent
        int re = Math.getExponent(r);                       // may be e + 1 when rounding carries
        int mantissa = (int) (r / Math.scalb(1f, re - 3)) - 8;
        return (byte) (sign | ((re + 7) << 3) | mantissa);
    }
}
