package dev.jnext.model.tp;

import dev.jnext.JnextException;
import dev.jnext.model.DType;
import dev.jnext.model.LayerType;
import dev.jnext.model.ModelConfig;
import dev.jnext.model.SyntheticCheckpoint;
import dev.jnext.model.TinyModels;
import dev.jnext.model.weights.LayerWeights;
import dev.jnext.model.weights.Matrix;
import dev.jnext.model.weights.ModelWeights;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The split of every dimension, the errors for a size the geometry cannot split, and shards that reassemble the model. */
class TpPlanTest {

    static ModelConfig next80b() {
        return SyntheticCheckpoint.preset("next-80b-a3b", null, null, DType.BF16);
    }

    static ModelConfig with(ModelConfig c, int heads, int kvHeads, int keyHeads, int valueHeads, int moeI, int sharedI,
                            int inter, List<Integer> mlpOnly) {
        return new ModelConfig(c.vocabSize(), c.hiddenSize(), inter, c.numHiddenLayers(), heads, kvHeads, c.headDim(),
                keyHeads, valueHeads, c.linearKeyHeadDim(), c.linearValueHeadDim(), c.linearConvKernelDim(),
                c.numExperts(), c.numExpertsPerTok(), moeI, sharedI, c.decoderSparseStep(), mlpOnly, c.normTopkProb(),
                c.layerTypes(), c.ropeTheta(), c.partialRotaryFactor(), c.rmsNormEps(), c.maxPositionEmbeddings(),
                c.tieWordEmbeddings(), c.dtype(), c.bosTokenId(), c.eosTokenIds());
    }

    private static String error(ModelConfig c, int n) {
        return assertThrows(JnextException.class, () -> TpPlan.of(c, n)).getMessage();
    }

    @Test
    void the80bGeometrySplitsAsSglangDoes() {
        ModelConfig c = next80b();
        for (int n : new int[]{1, 2, 4, 8, 16}) {
            TpPlan p = TpPlan.of(c, n);
            ModelConfig r = p.rankConfig();
            assertEquals(16 / n, r.numAttentionHeads());
            assertEquals(Math.max(1, 2 / n), r.numKeyValueHeads());
            assertEquals(16 / n, r.linearNumKeyHeads());
            assertEquals(32 / n, r.linearNumValueHeads());
            assertEquals(512 / n, r.moeIntermediateSize());
            assertEquals(512 / n, r.sharedExpertIntermediateSize());
            assertEquals(151936, r.vocabSize(), "the embedding stays whole");
            assertEquals(151936 / n, p.vocabPerRank());
            for (int rank = 0; rank < n; rank++) {
                // sglang: num_kv_head_replicas = tp / nkv, rank r holds KV head r / replicas; every query head of the
                // rank reads that head (query head h reads KV head h / (nh / nkv))
                TpPlan.Range q = p.attentionHeads(rank);
                TpPlan.Range kv = p.kvHeads(rank);
                for (int h = q.start(); h < q.end(); h++) {
                    int want = h / (16 / 2);
                    assertTrue(want >= kv.start() && want < kv.end(), "TP " + n + " rank " + rank + " head " + h);
                }
                if (n > 2) assertEquals(rank / (n / 2), kv.start());
                assertEquals(new TpPlan.Range(rank * 2 * (16 / n), 2 * (16 / n)), p.valueHeads(rank));
            }
        }
        assertEquals(4, TpPlan.of(c, 8).kvReplicas());
        assertTrue(error(c, 32).contains("num_attention_heads (16) is not divisible by 32"), error(c, 32));
        assertTrue(error(c, 3).startsWith("tensor parallelism over 3 ranks does not fit this model: "), error(c, 3));
    }

    @Test
    void anUnsplittableSizeNamesEveryDimension() {
        ModelConfig c = next80b();
        assertTrue(error(TinyModels.config(true, DType.F32), 4).contains(
                "linear_num_key_heads (2) is not divisible by 4 (each rank takes whole key groups"));
        assertTrue(error(with(c, 6, 3, 16, 32, 512, 512, 5120, List.of()), 2).contains(
                "num_key_value_heads (3) neither divides into 2 ranks nor replicates over them (2 is not a multiple of 3)"));
        String e = error(with(c, 16, 2, 16, 32, 502, 510, 5120, List.of()), 4);
        assertTrue(e.contains("moe_intermediate_size (502) is not divisible by 4"), e);
        assertTrue(e.contains("shared_expert_intermediate_size (510) is not divisible by 4"), e);
        // intermediate_size only matters when a layer is dense
        TpPlan.of(with(c, 16, 2, 16, 32, 512, 512, 5121, List.of()), 2);
        assertTrue(error(with(c, 16, 2, 16, 32, 512, 512, 5121, List.of(3)), 2).contains("intermediate_size (5121)"));
        assertTrue(error(c, 0).contains("must be >= 1"));
        // heads of a kind of layer the model does not have do not matter
        ModelConfig onlyGdn = new ModelConfig(64, 16, 32, 2, 3, 3, 8, 4, 8, 4, 4, 2, 0, 0, 0, 0, 1, List.of(), true,
                List.of(LayerType.LINEAR_ATTENTION, LayerType.LINEAR_ATTENTION), 1e6, 0.5, 1e-6f, 64, false, DType.F32,
                null, List.of());
        assertEquals(3, TpPlan.of(onlyGdn, 4).rankConfig().numAttentionHeads());
    }

    @Test
    void theVocabularySplitsIntoCeilingShards() {
        ModelConfig c = TinyModels.config(true, DType.F32);   // vocab 128
        ModelConfig odd = new ModelConfig(130, c.hiddenSize(), c.intermediateSize(), c.numHiddenLayers(), 4, 2,
                c.headDim(), 4, 8, c.linearKeyHeadDim(), c.linearValueHeadDim(), c.linearConvKernelDim(), c.numExperts(),
                c.numExpertsPerTok(), c.moeIntermediateSize(), c.sharedExpertIntermediateSize(), 1, c.mlpOnlyLayers(),
                true, c.layerTypes(), 1e6, 0.5, 1e-6f, 64, false, DType.F32, null, List.of());
        TpPlan p = TpPlan.of(odd, 2);
        assertEquals(new TpPlan.Range(0, 65), p.vocab(0));
        assertEquals(new TpPlan.Range(65, 65), p.vocab(1));
        assertEquals(new TpPlan.Range(0, 130), TpPlan.of(odd, 1).vocab(0));
        TpPlan p4 = TpPlan.of(odd, 4);   // 33, 33, 33, 31
        assertEquals(new TpPlan.Range(99, 31), p4.vocab(3));
        assertEquals(33, p4.vocabPerRank());
        assertThrows(IllegalArgumentException.class, () -> p.vocab(2));
    }

    @Test
    void shardsReassembleEveryWeight(@TempDir Path tmp) {
        // 8 heads over 2 KV heads, 4 key groups of 2 value heads, an odd vocabulary, a dense layer, fused experts
        ModelConfig base = TinyModels.config(true, DType.F32);
        ModelConfig c = new ModelConfig(130, 32, 48, 5, 8, 2, 16, 4, 8, 8, 12, 4, 6, 2, 16, 20, 1, List.of(4), true,
                base.layerTypes(), 1e6, 0.5, 1e-6f, 4096, false, DType.F32, null, List.of());
        Path dir = TinyModels.write(tmp.resolve("m"), c, 3, SyntheticCheckpoint.ExpertLayout.FUSED, 1 << 20);
        try (ModelWeights w = ModelWeights.load(dir)) {
            for (int n : new int[]{1, 2, 4}) {
                TpPlan plan = TpPlan.of(c, n);
                List<TpShard> shards = new ArrayList<>();
                for (int r = 0; r < n; r++) shards.add(TpShard.of(plan, w, r));
                assertRows(w.lmHead(), shards.stream().map(TpShard::lmHead).toList());
                for (int r = 0; r < n; r++) {
                    assertSame(w.embedTokens(), shards.get(r).embedTokens());
                    assertEquals(plan.vocab(r).start(), shards.get(r).vocabStart());
                }
                for (int l = 0; l < c.numHiddenLayers(); l++) {
                    int layer = l;
                    LayerWeights full = w.layers().get(l);
                    List<LayerWeights> parts = shards.stream().map(s -> s.layers().get(layer)).toList();
                    for (LayerWeights p : parts) {
                        assertSame(full.inputNorm(), p.inputNorm());
                        assertSame(full.postAttentionNorm(), p.postAttentionNorm());
                    }
                    switch (full.mixer()) {
                        case LayerWeights.Attention a -> {
                            List<LayerWeights.Attention> ps = parts.stream().map(p -> (LayerWeights.Attention) p.mixer()).toList();
                            assertRows(a.qProj(), ps.stream().map(LayerWeights.Attention::qProj).toList());
                            assertColumns(a.oProj(), ps.stream().map(LayerWeights.Attention::oProj).toList());
                            // KV heads: split at n ≤ 2, every rank holds head r / (n / 2) beyond
                            for (int r = 0; r < n; r++) {
                                TpPlan.Range kv = plan.kvHeads(r);
                                assertEquals(kv.count() * 16, ps.get(r).kProj().rows());
                                assertRowsEqual(a.kProj(), kv.start() * 16, ps.get(r).kProj());
                                assertRowsEqual(a.vProj(), kv.start() * 16, ps.get(r).vProj());
                                assertSame(a.qNorm(), ps.get(r).qNorm());
                            }
                        }
                        case LayerWeights.DeltaNet g -> {
                            List<LayerWeights.DeltaNet> ps = parts.stream().map(p -> (LayerWeights.DeltaNet) p.mixer()).toList();
                            assertRows(g.inProjQkvz(), ps.stream().map(LayerWeights.DeltaNet::inProjQkvz).toList());
                            assertRows(g.inProjBa(), ps.stream().map(LayerWeights.DeltaNet::inProjBa).toList());
                            assertColumns(g.outProj(), ps.stream().map(LayerWeights.DeltaNet::outProj).toList());
                            assertArrayEquals(g.aLog(), concat(ps.stream().map(LayerWeights.DeltaNet::aLog).toList()));
                            assertArrayEquals(g.dtBias(), concat(ps.stream().map(LayerWeights.DeltaNet::dtBias).toList()));
                            // conv channels [q | k | v]: each rank's three parts are the matching slices of the model's
                            int k = 4, qk = 4 * 8 / n, vw = 8 * 12 / n;
                            float[] q = new float[0], kk = new float[0], v = new float[0];
                            for (LayerWeights.DeltaNet p : ps) {
                                assertSame(g.norm(), p.norm());
                                q = join(q, Arrays.copyOfRange(p.conv1d(), 0, qk * k));
                                kk = join(kk, Arrays.copyOfRange(p.conv1d(), qk * k, 2 * qk * k));
                                v = join(v, Arrays.copyOfRange(p.conv1d(), 2 * qk * k, (2 * qk + vw) * k));
                            }
                            assertArrayEquals(g.conv1d(), join(join(q, kk), v));
                        }
                    }
                    switch (full.feedForward()) {
                        case LayerWeights.Mlp m -> assertMlp(m, parts.stream().map(p -> (LayerWeights.Mlp) p.feedForward()).toList());
                        case LayerWeights.Moe m -> {
                            List<LayerWeights.Moe> ps = parts.stream().map(p -> (LayerWeights.Moe) p.feedForward()).toList();
                            for (LayerWeights.Moe p : ps) {
                                assertSame(m.router(), p.router());
                                assertSame(m.sharedGate(), p.sharedGate());
                            }
                            assertMlp(m.sharedExpert(), ps.stream().map(LayerWeights.Moe::sharedExpert).toList());
                            for (int e = 0; e < m.experts().size(); e++) {
                                int ex = e;
                                assertMlp(m.experts().get(e), ps.stream().map(p -> p.experts().get(ex)).toList());
                            }
                        }
                    }
                }
            }
        }
    }

    /** Row views and column copies keep every value, FP8 included (its block grid cut anywhere). */
    @Test
    void matrixSplitsKeepEveryValue() {
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(9);
        byte[] fp8 = new byte[6 * 10];
        for (int i = 0; i < fp8.length; i++) fp8[i] = (byte) (rnd.nextInt(0x70) | (rnd.nextBoolean() ? 0x80 : 0));
        float[] grid = new float[3 * 3];
        for (int i = 0; i < grid.length; i++) grid[i] = 0.5f + rnd.nextFloat();
        Matrix q = new Matrix("q", java.lang.foreign.MemorySegment.ofArray(fp8), DType.F8_E4M3, 6, 10,
                new dev.jnext.model.weights.BlockScales("q_scale", grid, 3, 3, 2, 4, 0));
        float[] f = new float[60];
        for (int i = 0; i < f.length; i++) f[i] = (float) rnd.nextGaussian();
        for (Matrix m : List.of(q, Matrix.ofFloats("f", f, 6, 10))) {
            assertRows(m, List.of(m.rows(0, 1), m.rows(1, 3), m.rows(4, 2)));
            assertColumns(m, List.of(m.columns(0, 3), m.columns(3, 5), m.columns(8, 2)));
            Matrix inner = m.rows(1, 4).rows(1, 2);   // a view of a view keeps its place in the grid
            assertRowsEqual(m, 2, inner);
            float[] row = new float[10];
            inner.loadRow(1, row, new short[10]);
            for (int j = 0; j < 10; j++) assertEquals(m.get(3, j), row[j]);
        }
    }

    private static void assertMlp(LayerWeights.Mlp full, List<LayerWeights.Mlp> parts) {
        assertRows(full.gate(), parts.stream().map(LayerWeights.Mlp::gate).toList());
        assertRows(full.up(), parts.stream().map(LayerWeights.Mlp::up).toList());
        assertColumns(full.down(), parts.stream().map(LayerWeights.Mlp::down).toList());
    }

    private static void assertRows(Matrix full, List<Matrix> parts) {
        int row = 0;
        for (Matrix p : parts) {
            assertEquals(full.cols(), p.cols());
            assertRowsEqual(full, row, p);
            row += p.rows();
        }
        assertEquals(full.rows(), row);
    }

    private static void assertRowsEqual(Matrix full, int firstRow, Matrix part) {
        for (int r = 0; r < part.rows(); r++) {
            for (int j = 0; j < part.cols(); j++) assertEquals(full.get(firstRow + r, j), part.get(r, j));
        }
    }

    private static void assertColumns(Matrix full, List<Matrix> parts) {
        int col = 0;
        for (Matrix p : parts) {
            assertEquals(full.rows(), p.rows());
            for (int r = 0; r < p.rows(); r++) {
                for (int j = 0; j < p.cols(); j++) assertEquals(full.get(r, col + j), p.get(r, j));
            }
            col += p.cols();
        }
        assertEquals(full.cols(), col);
    }

    private static float[] concat(List<float[]> parts) {
        float[] out = new float[0];
        for (float[] p : parts) out = join(out, p);
        return out;
    }

    private static float[] join(float[] a, float[] b) {
        float[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
