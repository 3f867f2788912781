package dev.jnext.cuda.kernels;

import org.junit.jupiter.api.Test;

import static dev.jnext.cuda.kernels.DType.BF16;
import static dev.jnext.cuda.kernels.DType.F32;
import static dev.jnext.cuda.kernels.DType.I32;
import static dev.jnext.cuda.kernels.DType.U32;
import static dev.jnext.cuda.kernels.DType.U64;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The MoE launchers' argument records against their contracts, on the host, as {@link LauncherContractsTest} does. */
class MoeLauncherContractsTest extends LauncherContractsBase {

    // ------------------------------------------------------------------------------------------------ MoE decode

    private MoeDecodeKernel.GateUpArgs gateUp(DeviceTensor x, DeviceTensor ids, DeviceTensor act) {
        return new MoeDecodeKernel.GateUpArgs(x, ids, t("gate_up", BF16, E, 2 * I, H), t("shared_gate_up", BF16, 2 * I, H), act);
    }

    @Test
    void moeDecodeGateUp() {
        DeviceTensor x = t("x", BF16, T, H), ids = t("ids", I32, T, K), act = t("act", BF16, MoeDecodeKernel.actRows(T, K, true), I);
        MoeDecodeKernel.GateUpArgs ok = gateUp(x, ids, act);
        ok.checkRows(T);
        assertEquals(E, ok.experts());
        assertEquals(I, ok.inter());
        assertEquals(H, ok.hidden());
        assertEquals(K, ok.topK());
        fails(() -> gateUp(act, ids, x), "moe decode gate_up", "'x'", "expected bf16[*, 512]", "act bf16[40, 128]");
        fails(() -> gateUp(x, t("ids", F32, T, K), act), "'topkIds'", "expected i32[*, *]");
        fails(() -> new MoeDecodeKernel.GateUpArgs(x, ids, t("gate_up", BF16, E, 2 * I, H), t("shared", BF16, I, H), act),
                "'sharedGateUp'", "expected bf16[256, 512]");
        MoeDecodeKernel.GateUpArgs small = gateUp(x, ids, t("act", BF16, T * K, I));
        fails(() -> small.checkRows(T), "'act' holds 32 rows, the launch needs 40");
        fails(() -> ok.checkRows(T + 1), "'x' holds 8 rows, the launch needs 9");
    }

    private MoeDecodeKernel.DownArgs down(DeviceTensor ids, DeviceTensor weights, DeviceTensor contrib, DeviceTensor counters,
                                          DeviceTensor gateLogits) {
        int rows = MoeDecodeKernel.actRows(T, K, true);
        return new MoeDecodeKernel.DownArgs(t("act", BF16, rows, I), ids, weights, t("down", BF16, E, H, I), t("shared_down", BF16, H, I),
                gateLogits, E, contrib, counters, t("out", BF16, T, H));
    }

    @Test
    void moeDecodeDown() {
        int rows = MoeDecodeKernel.actRows(T, K, true);
        DeviceTensor ids = t("ids", I32, T, K), w = t("weights", BF16, T, K), contrib = t("contrib", BF16, rows, H);
        DeviceTensor counters = t("counters", U32, T, H / 64), logits = t("logits", BF16, T, 24);
        down(ids, w, contrib, counters, logits).checkRows(T);
        fails(() -> down(w, ids, contrib, counters, logits), "moe decode down", "'topkIds'", "expected i32[*, *]", "weights bf16[8, 4]");
        fails(() -> down(ids, t("weights", F32, T, K), contrib, counters, logits), "'topkWeights'", "expected bf16[*, 4]");
        fails(() -> down(ids, w, contrib, t("counters", I32, T, H / 64), logits), "'counters'", "expected u32[*, 8]");
        fails(() -> down(ids, w, contrib, counters, null), "'gateLogits' is missing");
        fails(() -> down(ids, w, contrib, counters, t("logits", BF16, T, E)), "'gateColumn'", "got 16");
        MoeDecodeKernel.DownArgs small = down(ids, w, t("contrib", BF16, T * K, H), counters, logits);
        fails(() -> small.checkRows(T), "'contrib' holds 32 rows, the launch needs 40");
        MoeDecodeKernel.DownArgs fewCounters = down(ids, w, contrib, t("counters", U32, 2, H / 64), logits);
        fails(() -> fewCounters.checkRows(T), "'counters' holds 2 rows, the launch needs 8");
    }

    // ------------------------------------------------------------------------------------------------ MoE prefill path

    @Test
    void moeRouter() {
        DeviceTensor logits = t("logits", BF16, T, 24), ids = t("ids", I32, T, K), w = t("weights", BF16, T, K);
        MoeRouterKernel.Args ok = new MoeRouterKernel.Args(logits, ids, w, E, true);
        ok.checkRows(T);
        assertEquals(K, ok.topK());
        fails(() -> new MoeRouterKernel.Args(logits, w, ids, E, true), "moe router", "'topkIds'", "expected i32[*, *]",
                "weights bf16[8, 4]");
        fails(() -> new MoeRouterKernel.Args(ids, logits, w, E, true), "moe router", "'logits'", "expected bf16[*, *]", "ids i32[8, 4]");
        fails(() -> new MoeRouterKernel.Args(logits, ids, t("weights", F32, T, K), E, true), "moe router", "'topkWeights'",
                "expected bf16[*, 4]");
        fails(() -> new MoeRouterKernel.Args(logits, ids, w, 32, true), "moe router", "'logits'", "shorter than 32 experts");
        fails(() -> new MoeRouterKernel.Args(logits, ids, w, 2, true), "moe router", "'topkIds'", "top-k must be in [1, 2]");
        MoeRouterKernel.Args small = new MoeRouterKernel.Args(logits, ids, t("weights", BF16, 4, K), E, true);
        fails(() -> small.checkRows(T), "moe router", "'topkWeights' holds 4 rows, the launch needs 8");
    }

    private static final int PAIRS = 300;

    private ExpertGrouping.Args grouping(DeviceTensor counts, DeviceTensor start, DeviceTensor sorted, DeviceTensor tileExpert) {
        return new ExpertGrouping.Args(t("expert_ids", I32, PAIRS), counts, start, sorted, t("pair_row", I32, PAIRS), tileExpert);
    }

    @Test
    void expertGrouping() {
        int pairs = PAIRS, tiles = ExpertGrouping.maxTiles(pairs, E, MoeExpertGemm.BLOCK_M);
        assertEquals(19, tiles);
        DeviceTensor counts = t("counts", I32, 1, E), start = t("start", I32, E + 1);
        DeviceTensor sorted = t("sorted", I32, tiles, MoeExpertGemm.BLOCK_M), tileExpert = t("tile_expert", I32, tiles);
        ExpertGrouping.Args ok = grouping(counts, start, sorted, tileExpert);
        ok.checkRows(pairs);
        assertEquals(E, ok.experts());
        assertEquals(MoeExpertGemm.BLOCK_M, ok.blockM());
        fails(() -> grouping(counts, tileExpert, sorted, start), "expert grouping", "'expertStart'", "expected i32[17]",
                "tile_expert i32[" + tiles + "]");
        fails(() -> grouping(counts, start, sorted.named("f").reshape(tiles * 128), tileExpert), "expert grouping", "'sortedPairs'",
                "expected i32[*, *]");
        fails(() -> grouping(t("counts", F32, 1, E), start, sorted, tileExpert), "expert grouping", "'chunkCounts'", "expected i32[*, *]");
        ExpertGrouping.Args small = grouping(counts, start, sorted, t("tile_expert", I32, tiles - 1));
        fails(() -> small.checkRows(pairs), "expert grouping", "'tileExpert' holds 18 rows, the launch needs 19");
        fails(() -> ok.checkRows(PAIRS + 1), "expert grouping", "'expertIds' holds 300 rows, the launch needs 301");
        fails(() -> ok.checkRows(2049), "expert grouping", "'expertIds' holds 300 rows");
    }

    private static final int PH = 256;  // the grouped GEMMs need H a multiple of 128 and I of 64

    @Test
    void moeGroupedGemmGateUp() {
        int tiles = ExpertGrouping.maxTiles(T * K, E, MoeExpertGemm.BLOCK_M);
        DeviceTensor x = t("x", BF16, T, PH), sorted = t("sorted", I32, tiles, MoeExpertGemm.BLOCK_M), te = t("tile_expert", I32, tiles);
        DeviceTensor w = t("gate_up", BF16, E, 2 * I, PH), act = t("act", BF16, tiles * MoeExpertGemm.BLOCK_M, I);
        MoeExpertGemm.GateUpArgs ok = new MoeExpertGemm.GateUpArgs(x, sorted, te, w, act, K);
        assertEquals(tiles, ok.checkRows(T));
        assertEquals(E, ok.experts());
        assertEquals(I, ok.inter());
        assertEquals(PH, ok.hidden());
        fails(() -> new MoeExpertGemm.GateUpArgs(act, sorted, te, w, x, K), "moe grouped GEMM gate_up", "'x'", "expected bf16[*, 256]",
                "act bf16[");
        fails(() -> new MoeExpertGemm.GateUpArgs(x, sorted, te, t("gate_up", F32, E, 2 * I, PH), act, K), "moe grouped GEMM gate_up",
                "'gateUp'", "expected bf16[*, *, *]");
        fails(() -> new MoeExpertGemm.GateUpArgs(x, te, sorted, w, act, K), "moe grouped GEMM gate_up", "'sortedPairs'",
                "expected i32[*, 128]");
        MoeExpertGemm.GateUpArgs small = new MoeExpertGemm.GateUpArgs(x, sorted, te, w, t("act", BF16, 128, I), K);
        fails(() -> small.checkRows(T), "moe grouped GEMM gate_up", "'act' holds 128 rows, the launch needs " + tiles * 128);
    }

    @Test
    void moeGroupedGemmDown() {
        int tiles = ExpertGrouping.maxTiles(T * K, E, MoeExpertGemm.BLOCK_M);
        DeviceTensor act = t("act", BF16, tiles * MoeExpertGemm.BLOCK_M, I), sorted = t("sorted", I32, tiles, MoeExpertGemm.BLOCK_M);
        DeviceTensor te = t("tile_expert", I32, tiles), w = t("down", BF16, E, PH, I), tw = t("weights", BF16, T, K);
        DeviceTensor contrib = t("contrib", BF16, T * K, PH);
        MoeExpertGemm.DownArgs ok = new MoeExpertGemm.DownArgs(act, sorted, te, w, tw, contrib);
        assertEquals(tiles, ok.checkRows(T));
        assertEquals(K, ok.topK());
        fails(() -> new MoeExpertGemm.DownArgs(contrib, sorted, te, w, tw, act), "moe grouped GEMM down", "'act'", "expected bf16[*, 128]",
                "contrib bf16[32, 256]");
        fails(() -> new MoeExpertGemm.DownArgs(act, sorted, te, w, t("weights", F32, T, K), contrib), "moe grouped GEMM down",
                "'topkWeights'", "expected bf16[*, *]");
        MoeExpertGemm.DownArgs small = new MoeExpertGemm.DownArgs(act, sorted, te, w, tw, t("contrib", BF16, T, PH));
        fails(() -> small.checkRows(T), "moe grouped GEMM down", "'contrib' holds 8 rows, the launch needs 32");
    }

    @Test
    void moeCombine() {
        DeviceTensor contrib = t("contrib", BF16, T * K, H), ids = t("ids", I32, T, K), shared = t("shared", BF16, T, H);
        DeviceTensor logits = t("logits", BF16, T, 24), out = t("out", BF16, T, H);
        MoeCombineKernel.Args ok = new MoeCombineKernel.Args(contrib, ids, E, shared, logits, E, out);
        ok.checkRows(T);
        new MoeCombineKernel.Args(contrib, ids, E, null, null, 0, out).checkRows(T);
        assertEquals(H, ok.hidden());
        assertEquals(K, ok.topK());
        fails(() -> new MoeCombineKernel.Args(contrib, logits, E, shared, ids, E, out), "moe combine", "'topkIds'", "expected i32[*, *]",
                "logits bf16[8, 24]");
        fails(() -> new MoeCombineKernel.Args(contrib, ids, E, shared, null, E, out), "moe combine", "'gateLogits' is missing");
        fails(() -> new MoeCombineKernel.Args(contrib, ids, E, t("shared", F32, T, H), logits, E, out), "moe combine", "'shared'",
                "expected bf16[*, 512]");
        fails(() -> new MoeCombineKernel.Args(contrib, ids, E, shared, logits, 24, out), "moe combine", "'gateColumn'", "got 24");
        MoeCombineKernel.Args small = new MoeCombineKernel.Args(t("contrib", BF16, T, H), ids, E, shared, logits, E, out);
        fails(() -> small.checkRows(T), "moe combine", "'contrib' holds 8 rows, the launch needs 32");
    }
}
