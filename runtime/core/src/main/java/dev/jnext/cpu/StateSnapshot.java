package dev.jnext.cpu;

/**
 * The Gated DeltaNet state of one sequence at one position, every linear-attention layer: {@code conv[layer]} is the
 * layer's conv state {@code [convDim, K−1]} and {@code recurrent[layer]} its recurrent state {@code [Hv, dk, dv]} (as
 * {@link SsmSlots} lays them out for a slot); null at full-attention layers. What the prefix cache stores at a node.
 */
public record StateSnapshot(float[][] conv, float[][] recurrent) {

    /** An empty snapshot of a model with {@code layers} layers, to be filled by the GDN layers. */
    public static StateSnapshot empty(int layers) {
        return new StateSnapshot(new float[layers][], new float[layers][]);
    }

    /** The state of {@code slot} now. */
    public static StateSnapshot of(CpuState state, int slot) {
        int layers = state.layers();
        StateSnapshot s = empty(layers);
        for (int l = 0; l < layers; l++) {
            SsmSlots ssm = state.ssm(l);
            if (ssm != null) s.capture(ssm, slot, l);
        }
        return s;
    }

    /** Copies layer {@code layer}'s state of {@code slot} from {@code ssm} into this snapshot. */
    void capture(SsmSlots ssm, int slot, int layer) {
        conv[layer] = java.util.Arrays.copyOfRange(ssm.conv(), ssm.convOffset(slot), ssm.convOffset(slot) + ssm.convSize());
        recurrent[layer] = java.util.Arrays.copyOfRange(ssm.recurrent(), ssm.recurrentOffset(slot),
                ssm.recurrentOffset(slot) + ssm.recurrentSize());
    }

    /** Writes this snapshot into {@code slot} of {@code state}. */
    public void restore(CpuState state, int slot) {
        for (int l = 0; l < conv.length; l++) {
            SsmSlots ssm = state.ssm(l);
            if (ssm == null) continue;
            if (conv[l] == null || recurrent[l] == null) throw new IllegalStateException("the snapshot lacks layer " + l);
            System.arraycopy(conv[l], 0, ssm.conv(), ssm.convOffset(slot), ssm.convSize());
            System.arraycopy(recurrent[l], 0, ssm.recurrent(), ssm.recurrentOffset(slot), ssm.recurrentSize());
        }
    }
}
