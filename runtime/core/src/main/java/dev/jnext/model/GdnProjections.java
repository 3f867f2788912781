package dev.jnext.model;

/**
 * Splits the Gated DeltaNet input projections into their channels ({@code fix_query_key_value_ordering}).
 * in_proj_qkvz's output row is grouped by key head g: [q_g (dk) | k_g (dk) | v_g (r·dv) | z_g (r·dv)], r = Hv/Hk;
 * value head g·r + j takes the j-th dv slice of v_g and z_g. in_proj_ba's row is grouped the same way:
 * [b (r) | a (r)] per key head.
 *
 * <p>Outputs per token row: {@code mixed} [2·Hk·dk + Hv·dv] = [all q | all k | all v] (the conv's channel order),
 * {@code z} [Hv·dv], {@code b} and {@code a} [Hv].
 */
public record GdnProjections(int keyHeads, int valueHeads, int keyDim, int valueDim) {

    public int ratio() {
        return valueHeads / keyHeads;
    }

    public int qkvzWidth() {
        return 2 * keyHeads * keyDim + 2 * valueHeads * valueDim;
    }

    public int baWidth() {
        return 2 * valueHeads;
    }

    public int convDim() {
        return 2 * keyHeads * keyDim + valueHeads * valueDim;
    }

    public void split(float[] qkvz, float[] ba, int rows, float[] mixed, float[] z, float[] b, float[] a) {
        int r = ratio();
        int group = 2 * keyDim + 2 * r * valueDim;
        int qkvzW = qkvzWidth();
        int convW = convDim();
        int kOff = keyHeads * keyDim;
        int vOff = 2 * keyHeads * keyDim;
        int zW = valueHeads * valueDim;
        int rv = r * valueDim;
        for (int t = 0; t < rows; t++) {
            int src = t * qkvzW;
            int dst = t * convW;
            for (int g = 0; g < keyHeads; g++) {
                int s = src + g * group;
                System.arraycopy(qkvz, s, mixed, dst + g * keyDim, keyDim);
                System.arraycopy(qkvz, s + keyDim, mixed, dst + kOff + g * keyDim, keyDim);
                System.arraycopy(qkvz, s + 2 * keyDim, mixed, dst + vOff + g * rv, rv);
                System.arraycopy(qkvz, s + 2 * keyDim + rv, z, t * zW + g * rv, rv);
                int bs = t * 2 * valueHeads + g * 2 * r;
                for (int j = 0; j < r; j++) {
                    b[t * valueHeads + g * r + j] = ba[bs + j];
                    a[t * valueHeads + g * r + j] = ba[bs + r + j];
                }
            }
        }
    }
}
