package dev.jnext.cuda.kernels;

import dev.jnext.cpu.ops.GatedDeltaRule;
import dev.jnext.cuda.kernels.GatedDeltaRuleDecodeKernel.Gates;
import dev.jnext.model.GdnProjections;
import org.junit.jupiter.api.Test;

import static dev.jnext.cuda.kernels.DType.BF16;
import static dev.jnext.cuda.kernels.DType.F32;
import static dev.jnext.cuda.kernels.DType.I32;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The launchers' argument records against their ops' contracts, on the host (no GPU: the checks run before any driver
 * call): the tensor itself, the Gated DeltaNet's launchers and the attention core's. For each op: a valid record passes;
 * two swapped pointers of different dtype or shape, a wrong dtype and a too-small buffer each fail with a message naming
 * the op and the argument. The MoE launchers: {@link MoeLauncherContractsTest}; rmsnorm, embedding, SiLU·mul and
 * sampling: {@link DenseLauncherContractsTest}.
 */
class LauncherContractsTest extends LauncherContractsBase {

    // ------------------------------------------------------------------------------------------------ the tensor

    @Test
    void deviceTensorIsAnImmutableValue() {
        int[] dims = {4, 8};
        DeviceTensor a = DeviceTensor.of("x", 0x1000, BF16, dims);
        dims[0] = 99;
        assertEquals(4, a.dim(0), "the shape is copied in");
        a.shape()[1] = 99;
        assertEquals(8, a.dim(1), "and out");
        assertEquals(DeviceTensor.of("x", 0x1000, BF16, 4, 8), a);
        assertEquals(DeviceTensor.of("x", 0x1000, BF16, 4, 8).hashCode(), a.hashCode());
        assertNotEquals(DeviceTensor.of("x", 0x1000, BF16, 8, 4), a);
        assertNotEquals(DeviceTensor.of("x", 0x1000, F32, 4, 8), a);
        assertEquals(32, a.elements());
        assertEquals(64, a.bytes());
        assertEquals("x bf16[4, 8] @0x1000", a.toString());
        assertArrayEquals(new int[] {32}, a.reshape(32).shape());
        assertEquals("y", a.named("y").name());
        fails(() -> a.reshape(3, 10), "cannot reshape");
        fails(() -> DeviceTensor.of("n", 0x1000, BF16, 2, -1), "negative dimension");
        fails(() -> DeviceTensor.of("n", 0x1000, BF16), "at least one dimension");
        fails(() -> TensorContract.require("op", "arg", null, BF16, 2), "op: argument 'arg' is missing, expected bf16[2]");
        fails(() -> TensorContract.require("op", "arg", DeviceTensor.of("n", 0, BF16, 2), BF16, 2), "'arg' is a null device pointer");
    }

    // ------------------------------------------------------------------------------------------------ gated rmsnorm

    @Test
    void gatedRmsNorm() {
        DeviceTensor x = t("x", BF16, 64, 128), z = t("z", BF16, 64, 128), w = t("w", BF16, 128), out = t("out", BF16, 64, 128);
        GatedRmsNormKernel.Args ok = new GatedRmsNormKernel.Args(x, z, w, out);
        ok.checkRows(64);
        assertEquals(128, ok.dim());
        fails(() -> new GatedRmsNormKernel.Args(w, z, x, out), "gated rmsnorm", "'w'", "expected bf16[*]", "x bf16[64, 128]");
        fails(() -> new GatedRmsNormKernel.Args(x, t("z", F32, 64, 128), w, out), "'z'", "expected bf16[*, 128]", "f32[64, 128]");
        GatedRmsNormKernel.Args small = new GatedRmsNormKernel.Args(x, z, w, t("out", BF16, 32, 128));
        fails(() -> small.checkRows(64), "'out' holds 32 rows, the launch needs 64");
    }

    // ------------------------------------------------------------------------------------------------ GDN split/gating

    private static final GdnProjections PROJ = new GdnProjections(2, 4, 16, 24);

    private GdnSplitGatingKernel.Args split(DeviceTensor mixed, DeviceTensor aLog, DeviceTensor beta, DeviceTensor g) {
        return new GdnSplitGatingKernel.Args(PROJ, t("qkvz", BF16, T, PROJ.qkvzWidth()), t("ba", BF16, T, PROJ.baWidth()), aLog,
                t("dt_bias", F32, 4), mixed, t("z", BF16, T, 4 * 24), beta, g);
    }

    @Test
    void gdnSplitGating() {
        DeviceTensor mixed = t("mixed", BF16, T, PROJ.convDim()), aLog = t("A_log", F32, 4);
        DeviceTensor beta = t("beta", F32, T, 4), g = t("g", F32, T, 4);
        split(mixed, aLog, beta, g).checkRows(T);
        fails(() -> split(beta, aLog, mixed, g), "gdn split/gating", "'mixed'", "expected bf16[*, 160]", "beta f32[8, 4]");
        fails(() -> split(mixed, t("A_log", BF16, 4), beta, g), "'aLog'", "expected f32[4]");
        GdnSplitGatingKernel.Args small = split(mixed, aLog, beta, t("g", F32, T - 1, 4));
        fails(() -> small.checkRows(T), "'g' holds 7 rows, the launch needs 8");
    }

    // ------------------------------------------------------------------------------------------------ causal conv1d

    private static final int C = 64, W = 4, SLOTS = 3;

    @Test
    void causalConv1dPrefill() {
        DeviceTensor x = t("x", BF16, T, C), w = t("w", BF16, C, W), state = t("state", BF16, SLOTS, C, W - 1);
        DeviceTensor cu = t("cu", I32, 3), slots = t("slots", I32, 2), out = t("out", BF16, T, C);
        CausalConv1dKernel.PrefillArgs ok = new CausalConv1dKernel.PrefillArgs(x, w, state, cu, slots, out);
        ok.checkRows(StepShape.prefill(T, 2));
        assertEquals(C, ok.channels());
        assertEquals(W, ok.kernelWidth());
        fails(() -> new CausalConv1dKernel.PrefillArgs(cu, w, state, x, slots, out), "causal conv1d prefill", "'x'",
                "expected bf16[*, 64]", "cu i32[3]");
        fails(() -> new CausalConv1dKernel.PrefillArgs(x, w, t("state", F32, SLOTS, C, W - 1), cu, slots, out), "'state'",
                "expected bf16[*, 64, 3]");
        fails(() -> ok.checkRows(StepShape.prefill(T, 3)), "'cuSeqlens' holds 3 rows, the launch needs 4");
    }

    @Test
    void causalConv1dUpdate() {
        DeviceTensor x = t("x", BF16, T, C), w = t("w", BF16, C, W), state = t("state", BF16, SLOTS, C, W - 1);
        DeviceTensor slots = t("slots", I32, T), out = t("out", BF16, T, C);
        new CausalConv1dKernel.UpdateArgs(x, w, state, slots, out).checkRows(T);
        // the weight fixes C and K: a swapped x/weight pair reads as C = 8, K = 64, and x no longer fits it
        fails(() -> new CausalConv1dKernel.UpdateArgs(w, x, state, slots, out), "causal conv1d update", "'x'",
                "expected bf16[*, 8]", "w bf16[64, 4]");
        fails(() -> new CausalConv1dKernel.UpdateArgs(x, w, state, t("slots", F32, T), out), "'slots'", "expected i32[*]");
        CausalConv1dKernel.UpdateArgs small = new CausalConv1dKernel.UpdateArgs(x, w, state, slots, t("out", BF16, 4, C));
        fails(() -> small.checkRows(T), "'out' holds 4 rows, the launch needs 8");
    }

    // ------------------------------------------------------------------------------------------------ delta rule decode

    private static final GatedDeltaRule RULE = new GatedDeltaRule(2, 4, 16, 24);

    private GatedDeltaRuleDecodeKernel.Args rule(DeviceTensor qkv, Gates gates, DeviceTensor state, DeviceTensor out) {
        return new GatedDeltaRuleDecodeKernel.Args(RULE, qkv, gates, state, t("slots", I32, T), out);
    }

    @Test
    void gatedDeltaRuleDecode() {
        int width = 2 * 2 * 16 + 4 * 24;
        DeviceTensor qkv = t("qkv", BF16, T, width), state = t("state", F32, SLOTS, 4, 16, 24), out = t("out", BF16, T, 4 * 24);
        Gates f32 = new Gates.Precomputed(t("beta", F32, T, 4), t("g", F32, T, 4));
        Gates bf16 = new Gates.Precomputed(t("beta", BF16, T, 4), t("g", F32, T, 4));
        Gates fused = new Gates.Fused(t("ba", BF16, T, 8), t("A_log", F32, 4), t("dt_bias", F32, 4));
        rule(qkv, f32, state, out).checkRows(T);
        rule(qkv, bf16, state, out).checkRows(T);
        rule(qkv, fused, state, out).checkRows(T);
        assertTrue(((Gates.Precomputed) bf16).betaBf16());
        fails(() -> rule(out, f32, state, qkv), "gated delta rule decode", "'qkv'", "expected bf16[*, 160]", "out bf16[8, 96]");
        fails(() -> rule(qkv, f32, t("state", BF16, SLOTS, 4, 16, 24), out), "'state'", "expected f32[*, 4, 16, 24]");
        fails(() -> rule(qkv, new Gates.Precomputed(t("beta", I32, T, 4), t("g", F32, T, 4)), state, out), "'beta'", "expected f32[*, 4]");
        fails(() -> rule(qkv, new Gates.Fused(t("ba", BF16, T, 8), t("dt_bias", F32, 4), t("g", F32, T, 4)), state, out),
                "'dtBias'", "expected f32[4]");
        GatedDeltaRuleDecodeKernel.Args few = new GatedDeltaRuleDecodeKernel.Args(RULE, qkv, f32, state, t("slots", I32, 2), out);
        fails(() -> few.checkRows(T), "'slots' holds 2 rows, the launch needs 8");
    }

    // ------------------------------------------------------------------------------------------------ chunked delta rule

    @Test
    void chunkedDeltaRule() {
        ChunkedDeltaRuleKernel.Config c = new ChunkedDeltaRuleKernel.Config(2, 4, 128, 64, 64, 3);
        DeviceTensor qkv = t("qkv", BF16, 64, c.qkvWidth()), beta = t("beta", F32, 64, 4), g = t("g", F32, 64, 4);
        DeviceTensor cu = t("cu", I32, 4), slots = t("slots", I32, 3), pool = t("pool", F32, SLOTS, 4, 128, 64);
        DeviceTensor out = t("out", BF16, 64, 4 * 64);
        ChunkedDeltaRuleKernel.Args ok = new ChunkedDeltaRuleKernel.Args(c, qkv, beta, g, cu, slots, pool, out);
        ChunkedDeltaRuleKernel.checkLaunch(c, ok, StepShape.prefill(64, 3), ChunkedDeltaRuleKernel.Path.CHUNKED);
        fails(() -> new ChunkedDeltaRuleKernel.Args(c, beta, qkv, g, cu, slots, pool, out), "gated delta rule", "'qkv'",
                "expected bf16[*, 768]", "beta f32[64, 4]");
        fails(() -> new ChunkedDeltaRuleKernel.Args(c, qkv, beta, g, cu, slots, pool, t("out", F32, 64, 256)), "'out'",
                "expected bf16[*, 256]");
        ChunkedDeltaRuleKernel.Args small = new ChunkedDeltaRuleKernel.Args(c, qkv, beta, g, t("cu", I32, 2), slots, pool, out);
        fails(() -> ChunkedDeltaRuleKernel.checkLaunch(c, small, StepShape.prefill(64, 3), ChunkedDeltaRuleKernel.Path.CHUNKED),
                "'cuSeqlens' holds 2 rows, the launch needs 4");
        ChunkedDeltaRuleKernel.Config other = new ChunkedDeltaRuleKernel.Config(2, 4, 128, 128, 64, 3);
        fails(() -> ChunkedDeltaRuleKernel.checkLaunch(other, ok, StepShape.prefill(64, 3), ChunkedDeltaRuleKernel.Path.CHUNKED),
                "arguments built for");
    }

    // ------------------------------------------------------------------------------------------------ attention core

    private static final AttentionGeometry GEO = new AttentionGeometry(4, 2, 64, 32);

    @Test
    void gatedAttentionCore() {
        DeviceTensor qg = t("qg", BF16, T, 4 * 2 * 64), kv = t("kv", BF16, T, 2 * 2 * 64);
        DeviceTensor qn = t("q_norm", BF16, 64), kn = t("k_norm", BF16, 64);
        DeviceTensor q = t("q", BF16, T, 4, 64), out = t("out", BF16, T, 4 * 64);
        new GatedAttentionCore.Args(GEO, qg, kv, qn, kn, q, out).checkRows(T);
        fails(() -> new GatedAttentionCore.Args(GEO, out, kv, qn, kn, q, qg), "gated attention core", "'qg'", "expected bf16[*, 512]",
                "out bf16[8, 256]");
        fails(() -> new GatedAttentionCore.Args(GEO, qg, kv, kn.named("q_norm"), t("k_norm", F32, 64), q, out), "'kNorm'",
                "expected bf16[64]");
        fails(() -> new GatedAttentionCore.Args(GEO, qg, kv, qn, kn, out, q), "'qScratch'", "expected bf16[*, 4, 64]");
        GatedAttentionCore.Args small = new GatedAttentionCore.Args(GEO, qg, t("kv", BF16, 4, 256), qn, kn, q, out);
        fails(() -> small.checkRows(T), "'kv' holds 4 rows, the launch needs 8");
        // the core's records: the gate is q_proj's output from column hd of each [2·hd] head row; the attention reads prep's q
        GatedAttentionCore.Args ok = new GatedAttentionCore.Args(GEO, qg, kv, qn, kn, q, out);
        assertEquals(q, ok.prep().qOut());
        assertEquals(q, ok.prefill().q());
        assertEquals(64, ok.prefill().gateColumn());
        assertEquals(qg.address(), ok.decode().gate().address());
        assertEquals(4 * 2 * 64, PrefillAttentionKernel.gateTokenStride(ok.prefill().gate()));
        assertEquals(2 * 64, PrefillAttentionKernel.gateHeadStride(ok.prefill().gate()));
        assertEquals(qg.address() + 128, PrefillAttentionKernel.gateAddress(ok.prefill().gate(), 64));
        DeviceTensor other = t("q2", BF16, T, 4, 64);
        fails(() -> new GatedAttentionCore.Args(GEO, ok.prep(), new PrefillAttentionKernel.Args(GEO, other, out, null, 0), ok.decode()),
                "gated attention core", "'qScratch'", "the attention must read the q that prep writes");
        AttentionGeometry wide = new AttentionGeometry(8, 2, 64, 32);
        fails(() -> new GatedAttentionCore.Args(wide, ok.prep(), ok.prefill(), ok.decode()), "gated attention core", "arguments built for");
    }

    @Test
    void attentionPrep() {
        DeviceTensor qg = t("qg", BF16, T, 4 * 2 * 64), kv = t("kv", BF16, T, 2 * 2 * 64);
        DeviceTensor qn = t("q_norm", BF16, 64), kn = t("k_norm", BF16, 64), q = t("q", BF16, T, 4, 64);
        AttentionPrepKernel.Args ok = new AttentionPrepKernel.Args(GEO, qg, kv, qn, kn, q);
        ok.checkRows(T);
        assertEquals(256, ok.kvStride());
        fails(() -> new AttentionPrepKernel.Args(GEO, kv, qg, qn, kn, q), "attention prep", "'qg'", "expected bf16[*, 512]",
                "kv bf16[8, 256]");
        fails(() -> new AttentionPrepKernel.Args(GEO, qg, kv, qn, t("k_norm", F32, 64), q), "attention prep", "'kNorm'",
                "expected bf16[64]");
        fails(() -> new AttentionPrepKernel.Args(GEO, qg, kv, qn, kn, t("q", BF16, T, 256)), "attention prep", "'qOut'",
                "expected bf16[*, 4, 64]");
        AttentionPrepKernel.Args small = new AttentionPrepKernel.Args(GEO, qg, kv, qn, kn, t("q", BF16, 2, 4, 64));
        fails(() -> small.checkRows(T), "attention prep", "'qOut' holds 2 rows, the launch needs 8");
    }

    @Test
    void prefillAndDecodeAttention() {
        DeviceTensor q = t("q", BF16, T, 4, 64), out = t("out", BF16, T, 4 * 64), qg = t("qg", BF16, T, 4, 2 * 64);
        DeviceTensor dense = t("gate", BF16, T, 4, 64);
        new PrefillAttentionKernel.Args(GEO, q, out, qg, 64).checkRows(T);
        new PrefillAttentionKernel.Args(GEO, q, out, null, 0).checkRows(T);
        DecodeAttentionKernel.Args decode = new DecodeAttentionKernel.Args(GEO, q, out, dense, 0);
        decode.checkRows(T);
        assertEquals(4 * 64, PrefillAttentionKernel.gateTokenStride(dense));
        assertEquals(64, PrefillAttentionKernel.gateHeadStride(dense));
        assertEquals(0, PrefillAttentionKernel.gateTokenStride(null));
        assertEquals(0, PrefillAttentionKernel.gateAddress(null, 0));
        fails(() -> new PrefillAttentionKernel.Args(GEO, out, q, qg, 64), "prefill attention", "'q'", "expected bf16[*, 4, 64]",
                "out bf16[8, 256]");
        fails(() -> new DecodeAttentionKernel.Args(GEO, q, t("out", F32, T, 256), null, 0), "decode attention", "'out'",
                "expected bf16[*, 256]");
        fails(() -> new DecodeAttentionKernel.Args(GEO, q, out, t("gate", BF16, T, 2, 64), 0), "decode attention", "'gate'",
                "expected bf16[*, 4, *]");
        fails(() -> new PrefillAttentionKernel.Args(GEO, q, out, dense, 64), "prefill attention", "'gateColumn'", "from column 64");
        fails(() -> new PrefillAttentionKernel.Args(GEO, q, out, DeviceTensor.of("gate", 0x7f00_0000_0008L, BF16, T, 4, 64), 0),
                "attention gate", "16-byte aligned");
        DecodeAttentionKernel.Args small = new DecodeAttentionKernel.Args(GEO, q, out, t("gate", BF16, 3, 4, 64), 0);
        fails(() -> small.checkRows(T), "decode attention", "'gate' holds 3 rows, the launch needs 8");
        fails(() -> PrefillAttentionKernel.checkGeometry(new AttentionGeometry(8, 2, 64, 32), GEO, "prefill attention"),
                "prefill attention: arguments built for");
    }
}
