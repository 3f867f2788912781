package dev.jnext.model.tp;

import dev.jnext.model.DType;
import dev.jnext.model.LayerType;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.SyntheticCheckpoint;
import dev.jnext.model.TinyModels;
import dev.jnext.model.weights.Checkpoint;
import dev.jnext.model.weights.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The bytes one rank holds: a small geometry by hand, a checkpoint's own size at TP 1, the 80B-A3B geometry's fit. */
class TpMemoryTest {
    static final double GIB = 1L << 30;

    /**
     * vocab 100, H 8, 4 layers [lin, lin, lin, full], layer 3 dense (intermediate 10); attention 4 heads over 2 KV heads
     * of 4; GDN 2 key heads of 2, 4 value heads of 3, conv kernel 3; 4 experts of width 6, shared expert of width 4.
     */
    static ModelConfig small() {
        return new ModelConfig(100, 8, 10, 4, 4, 2, 4, 2, 4, 2, 3, 3, 4, 2, 6, 4, 1, List.of(3), true,
                List.of(LayerType.LINEAR_ATTENTION, LayerType.LINEAR_ATTENTION, LayerType.LINEAR_ATTENTION,
                        LayerType.FULL_ATTENTION), 1e6, 0.5, 1e-6f, 64, false, DType.BF16, null, List.of());
    }

    @Test
    void aSmallGeometryByHandAtTp2() {
        TpMemory m = TpMemory.of(TpPlan.of(small(), 2));
        assertEquals(100 * 8 * 2, m.embedding());                       // replicated
        assertEquals(50 * 8 * 2, m.lmHead());                           // 50 of 100 rows
        // 2 query heads [q|gate] 2·2·4·8 = 128, 1 KV head k+v 2·4·8 = 64, o_proj 8·2·4 = 64, q/k norms 8 → 264 bf16
        assertEquals(264 * 2, m.attention());
        // one GDN layer: 1 key group: qkvz (2·2 + 2·2·3)·8 = 128, ba 2·2·8 = 32, conv (2·2 + 2·3)·3 = 30, norm 3,
        // out_proj 8·2·3 = 48 → 241 bf16, A_log + dt_bias 2·2 fp32 → 498 bytes; 3 layers
        assertEquals(3 * 498, m.deltaNet());
        assertEquals(3 * 4 * 3 * 3 * 8 * 2, m.routedExperts());         // 3 layers × 4 experts × gate/up/down × 3 × 8
        assertEquals(3 * 3 * 2 * 8 * 2, m.sharedExperts());             // width 4 → 2
        assertEquals(3 * (4 + 1) * 8 * 2, m.routers());                 // router + shared gate, replicated
        assertEquals(3 * 5 * 8 * 2, m.denseMlps());                     // layer 3: width 10 → 5
        assertEquals((2 * 4 + 1) * 8 * 2, m.norms());
        assertEquals(1600 + 800 + 528 + 1494 + 1728 + 288 + 240 + 240 + 144, m.weights());
        assertEquals(7062, m.weights());
        assertEquals(1 * 2 * 1 * 4 * 2, m.kvBytesPerToken());            // 1 layer, K and V, 1 head of 4, bf16
        // conv state 10 channels × 2 in bf16, recurrent 2 heads × 2 × 3 in fp32, 3 layers
        assertEquals(3 * (10 * 2 * 2 + 2 * 2 * 3 * 4), m.gdnBytesPerSequence());
        assertEquals(264, m.gdnBytesPerSequence());
    }

    @Test
    void splitPartsAddUpOverTheRanksAndReplicatedPartsDoNot() {
        ModelConfig c = small();
        TpMemory one = TpMemory.of(TpPlan.of(c, 1));
        TpMemory two = TpMemory.of(TpPlan.of(c, 2));
        assertEquals(one.embedding(), two.embedding());
        assertEquals(one.routers(), two.routers());
        assertEquals(one.norms(), two.norms());
        assertEquals(one.lmHead(), 2 * two.lmHead());
        assertEquals(one.routedExperts(), 2 * two.routedExperts());
        assertEquals(one.sharedExperts(), 2 * two.sharedExperts());
        assertEquals(one.denseMlps(), 2 * two.denseMlps());
        assertEquals(one.deltaNet(), 2 * two.deltaNet() - 3 * 3 * 2);  // the gated norm's weight [dv] is replicated
        assertEquals(one.attention(), 2 * two.attention() - 2 * 4 * 2); // q/k norms are replicated
        assertEquals(one.gdnBytesPerSequence(), 2 * two.gdnBytesPerSequence());
        assertEquals(one.kvBytesPerToken(), 2 * two.kvBytesPerToken());
    }

    /** At TP 1 the weights are the checkpoint's bf16 bytes, but A_log and dt_bias, which the GPU keeps in fp32. */
    @Test
    void tp1IsTheCheckpointsOwnSize(@TempDir Path tmp) {
        ModelConfig c = TinyModels.config(true, DType.BF16);
        Path dir = TinyModels.write(tmp, c, 1, SyntheticCheckpoint.ExpertLayout.HUB, 1 << 20);
        long stored = 0;
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            for (Tensor t : ckpt.tensors().values()) stored += t.data().byteSize();
        }
        int gdnLayers = c.countLayers(LayerType.LINEAR_ATTENTION);
        long fp32Extra = (long) gdnLayers * 2 * c.linearNumValueHeads() * 2;
        assertEquals(stored + fp32Extra, TpMemory.of(TpPlan.of(c, 1)).weights());
    }

    /**
     * Qwen3-Next-80B-A3B in bf16: TP 2 leaves an 80 GB H100 (about 78 GiB free) no room beyond the weights, TP 4 does;
     * TP 2 fits an H200 (about 139 GiB free).
     */
    @Test
    void the80bGeometryPerRank() {
        ModelConfig c = SyntheticCheckpoint.preset("next-80b-a3b", null, null, DType.BF16);
        double h100 = 78 * GIB, h200 = 139 * GIB;
        double[] weights = new double[9];
        for (int n : new int[]{1, 2, 4, 8}) {
            TpMemory m = TpMemory.of(TpPlan.of(c, n));
            weights[n] = m.weights();
            System.out.printf(Locale.ROOT, "[tp-memory] 80B-A3B TP%d: weights %.2f GiB per rank %s; KV %d B/token, GDN %.2f MiB/sequence;"
                            + " headroom H100 %.1f GiB, H200 %.1f GiB%n", n, m.weights() / GIB, parts(m), m.kvBytesPerToken(),
                    m.gdnBytesPerSequence() / (double) (1 << 20), m.headroom((long) h100) / GIB, m.headroom((long) h200) / GIB);
        }
        assertTrue(weights[1] > 148 * GIB && weights[1] < 150 * GIB, "the whole model: " + weights[1] / GIB);
        assertTrue(weights[2] > 74 * GIB && weights[2] < 76 * GIB, "TP 2: " + weights[2] / GIB);
        assertTrue(weights[4] > 37 * GIB && weights[4] < 39 * GIB, "TP 4: " + weights[4] / GIB);
        assertTrue(h100 - weights[2] < 4 * GIB, "TP 2 on H100: weights alone nearly fill the card");
        assertTrue(h100 - weights[4] > 35 * GIB, "TP 4 on H100");
        assertTrue(h200 - weights[2] > 60 * GIB, "TP 2 on H200");
        TpMemory tp4 = TpMemory.of(TpPlan.of(c, 4));
        // 12 full-attention layers: TP 4 holds half a KV head each (replicated: one whole head) → 12 · 2 · 256 · 2 B
        assertEquals(12L * 2 * 256 * 2, tp4.kvBytesPerToken());
        // 36 GDN layers, 8 value heads and 4 key groups a rank: conv (2·4·128 + 8·128)·3 bf16, recurrent 8·128·128 fp32
        assertEquals(36L * ((2 * 4 * 128 + 8 * 128) * 3 * 2 + 8L * 128 * 128 * 4), tp4.gdnBytesPerSequence());
    }

    private static String parts(TpMemory m) {
        StringBuilder sb = new StringBuilder("(");
        m.weightParts().forEach((k, v) -> sb.append(String.format(Locale.ROOT, "%s %.2f, ", k, v / GIB)));
        return sb.replace(sb.length() - 2, sb.length(), ")").toString();
    }
}
