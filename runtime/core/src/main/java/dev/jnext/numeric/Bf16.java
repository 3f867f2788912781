package dev.jnext.numeric;

/**
 * bfloat16 as a 16-bit pattern in a {@code short}/{@code char}: conversion with round-to-nearest-even,
 * exactly what torch and the CUDA {@code __float2bfloat16_rn} intrinsic do.
 */
public final class Bf16 {
    private Bf16() {}

    /** Rounds a float to the nearest bfloat16 (ties to even); NaN stays a quiet NaN. */
    public static short fromFloat(float f) {
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 0x7fffffff) > 0x7f800000) {
            return (short) ((bits >>> 16) | 0x0040);
        }
        int rounding = 0x7fff + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }

    public static float toFloat(short b) {
        return Float.intBitsToFloat((b & 0xffff) << 16);
    }

    /** The value a float takes after a round trip through bfloat16. */
    public static float round(float f) {
        return toFloat(fromFloat(f));
    }

    /** Distance in units of the last place between two bfloat16 values of the same sign (NaN: max). */
    public static int ulpDistance(short a, short b) {
        if (Float.isNaN(toFloat(a)) || Float.isNaN(toFloat(b))) return Integer.MAX_VALUE;
        int ia = orderedBits(a), ib = orderedBits(b);
        return Math.abs(ia - ib);
    }

    private static int orderedBits(short v) {
        int x = v & 0xffff;
        return (x & 0x8000) != 0 ? -(x & 0x7fff) : x;
    }
}
