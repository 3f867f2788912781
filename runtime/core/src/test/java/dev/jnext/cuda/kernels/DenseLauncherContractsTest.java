package dev.jnext.cuda.kernels;

import org.junit.jupiter.api.Test;

import static dev.jnext.cuda.kernels.DType.BF16;
import static dev.jnext.cuda.kernels.DType.F32;
import static dev.jnext.cuda.kernels.DType.I32;
import static dev.jnext.cuda.kernels.DType.U32;
import static dev.jnext.cuda.kernels.DType.U64;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The argument records of rmsnorm, the embedding gather, SiLU·mul, the sampler and the token history against their
 * contracts, on the host, as {@link LauncherContractsTest} does.
 */
class DenseLauncherContractsTest extends LauncherContractsBase {

    // ------------------------------------------------------------------------------------------------ rmsnorm

    @Test
    void rmsNorm() {
        DeviceTensor x = t("x", BF16, 64, 256), w = t("w", BF16, 256), y = t("y", BF16, 64, 256);
        RmsNormKernel.Args ok = new RmsNormKernel.Args(x, w, y);
        ok.checkRows(64);
        assertEquals(256, ok.hidden());
        fails(() -> new RmsNormKernel.Args(w, x, y), "rmsnorm", "'w'", "expected bf16[*]", "x bf16[64, 256]");
        fails(() -> new RmsNormKernel.Args(x, t("w", F32, 256), y), "rmsnorm", "'w'", "expected bf16[*]", "w f32[256]");
        fails(() -> new RmsNormKernel.Args(x, w, t("y", BF16, 64, 128)), "rmsnorm", "'y'", "expected bf16[*, 256]");
        RmsNormKernel.Args small = new RmsNormKernel.Args(x, w, t("y", BF16, 16, 256));
        fails(() -> small.checkRows(64), "rmsnorm", "'y' holds 16 rows, the launch needs 64");
    }

    @Test
    void addRmsNorm() {
        DeviceTensor delta = t("delta", BF16, 64, 256), res = t("residual", BF16, 64, 256), w = t("w", BF16, 256);
        DeviceTensor y = t("y", BF16, 64, 256);
        RmsNormKernel.AddArgs ok = new RmsNormKernel.AddArgs(delta, res, w, y);
        ok.checkRows(64);
        assertEquals(256, ok.hidden());
        fails(() -> new RmsNormKernel.AddArgs(delta, w, res, y), "add + rmsnorm", "'w'", "expected bf16[*]", "residual bf16[64, 256]");
        fails(() -> new RmsNormKernel.AddArgs(t("delta", F32, 64, 256), res, w, y), "add + rmsnorm", "'delta'",
                "expected bf16[*, 256]", "delta f32[64, 256]");
        RmsNormKernel.AddArgs small = new RmsNormKernel.AddArgs(delta, t("residual", BF16, 8, 256), w, y);
        fails(() -> small.checkRows(64), "add + rmsnorm", "'residual' holds 8 rows, the launch needs 64");
    }

    // ------------------------------------------------------------------------------------------------ embedding

    @Test
    void embedding() {
        DeviceTensor table = t("table", BF16, 1000, 256), ids = t("ids", I32, T), out = t("out", BF16, T, 256);
        EmbeddingKernel.Args ok = new EmbeddingKernel.Args(table, ids, out);
        ok.checkRows(T, 1000);
        ok.checkRows(T, 3);
        assertEquals(256, ok.hidden());
        fails(() -> new EmbeddingKernel.Args(table, out, ids), "embedding", "'ids'", "expected i32[*]", "out bf16[8, 256]");
        fails(() -> new EmbeddingKernel.Args(ids, table, out), "embedding", "'table'", "expected bf16[*, *]", "ids i32[8]");
        fails(() -> new EmbeddingKernel.Args(table, t("ids", F32, T), out), "embedding", "'ids'", "expected i32[*]");
        fails(() -> new EmbeddingKernel.Args(t("table", BF16, 1000, 12), ids, out), "embedding", "'table'", "multiple of 8");
        fails(() -> ok.checkRows(T, 1001), "embedding", "'table' holds 1000 rows, the launch reads 1001");
        fails(() -> ok.checkRows(T + 1, 1000), "embedding", "'ids' holds 8 rows, the launch needs 9");
    }

    // ------------------------------------------------------------------------------------------------ silu_mul

    @Test
    void siluMul() {
        DeviceTensor gateUp = t("gate_up", BF16, T, 2 * I), out = t("out", BF16, T, I);
        SiluMulKernel.Args ok = new SiluMulKernel.Args(gateUp, out);
        ok.checkRows(T);
        assertEquals(I, ok.inter());
        // swapped: out reads as inter 256, and gate_up (128 wide) is not 512 wide
        fails(() -> new SiluMulKernel.Args(out, gateUp), "silu_mul", "'gateUp'", "expected bf16[*, 512]", "out bf16[8, 128]");
        fails(() -> new SiluMulKernel.Args(gateUp, t("out", F32, T, I)), "silu_mul", "'out'", "expected bf16[*, *]");
        SiluMulKernel.Args small = new SiluMulKernel.Args(t("gate_up", BF16, 2, 2 * I), out);
        fails(() -> small.checkRows(T), "silu_mul", "'gateUp' holds 2 rows, the launch needs 8");
    }

    // ------------------------------------------------------------------------------------------------ sampling

    private static final int V = 1024;

    @Test
    void sampling() {
        DeviceTensor logits = t("logits", BF16, T, V), params = t("params", F32, T, 8), rng = t("rng", U64, T, 2);
        DeviceTensor ids = t("ids", I32, T);
        SamplingKernel.Args greedy = new SamplingKernel.Args(logits, null, null, null, null, ids);
        greedy.checkRows(T, false);
        assertEquals(V, greedy.stride());
        fails(() -> greedy.checkRows(T, true), "sampling", "'params' is missing");
        fails(() -> new SamplingKernel.Args(logits, params, null, null, null, ids).checkRows(T, true), "sampling", "'rng' is missing");
        SamplingKernel.Args sample = new SamplingKernel.Args(logits, params, rng, null, null, ids);
        sample.checkRows(T, true);
        fails(() -> new SamplingKernel.Args(params, logits, rng, null, null, ids), "sampling", "'logits'", "expected bf16[*, *]",
                "params f32[8, 8]");
        fails(() -> new SamplingKernel.Args(logits, rng, params, null, null, ids), "sampling", "'params'", "expected f32[*, 8]",
                "rng u64[8, 2]");
        fails(() -> new SamplingKernel.Args(logits, params, t("rng", I32, T, 4), null, null, ids), "sampling", "'rng'",
                "expected u64[*, 2]");
        fails(() -> new SamplingKernel.Args(logits, params, rng, null, null, t("ids", F32, T)), "sampling", "'outIds'", "expected i32[*]");
        fails(() -> new SamplingKernel.Args(t("logits", BF16, T, 1001), null, null, null, null, ids), "sampling", "'logits'",
                "multiple of 8");
        fails(() -> new SamplingKernel.Args(logits, params, rng, t("slots", I32, T), null, ids), "sampling", "'rowSlot'",
                "needs the token history");
        fails(() -> greedy.checkRows(T + 1, false), "sampling", "'logits' holds 8 rows, the launch needs 9");
        SamplingKernel.Args fewRng = new SamplingKernel.Args(logits, params, t("rng", U64, 4, 2), null, null, ids);
        fewRng.checkRows(T, false);  // greedy reads no generator
        fails(() -> fewRng.checkRows(T, true), "sampling", "'rng' holds 4 rows, the launch needs 8");
    }

    @Test
    void tokenHistoryObserve() {
        DeviceTensor ids = t("ids", I32, 64), slots = t("slots", I32, 64);
        new TokenHistory.ObserveArgs(ids, slots).checkRows(64);
        fails(() -> new TokenHistory.ObserveArgs(t("ids", I32, 8, 8), slots), "token history observe", "'ids'", "expected i32[*]");
        fails(() -> new TokenHistory.ObserveArgs(ids, t("slots", F32, 64)), "token history observe", "'rowSlot'", "expected i32[*]");
        TokenHistory.ObserveArgs small = new TokenHistory.ObserveArgs(ids, t("slots", I32, 16));
        fails(() -> small.checkRows(64), "token history observe", "'rowSlot' holds 16 rows, the launch needs 64");
    }
}
