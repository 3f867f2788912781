package dev.jnext.cuda.kernels;

import dev.jnext.gpu.DeviceBuffer;
import dev.jnext.gpu.Gpu;
import dev.jnext.gpu.GpuTestSupport;
import dev.jnext.gpu.Stream;
import dev.jnext.numeric.Bf16;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Random;

import static dev.jnext.gpu.GpuTestSupport.download;
import static dev.jnext.gpu.GpuTestSupport.poisoned;
import static dev.jnext.gpu.GpuTestSupport.randomBf16;
import static dev.jnext.gpu.GpuTestSupport.upload;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * The fine-grained FP8 kernels against the bf16 path they replace: the device dequantization is byte for byte the host
 * loader's image, and the FP8 decode expert kernels give bit for bit what the bf16 kernels give on that image — on
 * geometries with ragged 128-blocks, both gate|up blockings (the hub's separate gate and up matrices, transformers' fused
 * stack), a shared expert, several tokens and an expert id the router never writes.
 */
@Tag("gpu")
class Fp8KernelsGpuTest {

    @ParameterizedTest(name = "mats={0} rows={1} cols={2} split={3}")
    @CsvSource({"1, 256, 2048, 256", "3, 200, 136, 200", "4, 1024, 2048, 512", "2, 144, 64, 72", "5, 16, 8, 16", "1, 4096, 512, 4096"})
    void deviceDequantizationIsTheHostLoadersImage(int mats, int rows, int cols, int split) {
        Fp8Reference.Weights w = Fp8Reference.random(mats * 131L + rows + cols, mats, rows, cols, split);
        Stream s = GpuTestSupport.stream();
        int n = mats * rows * cols;
        try (DeviceBuffer q = DeviceArrays.upload(w.q(), "q"); DeviceBuffer sc = DeviceArrays.upload(w.scales(), "scales");
             DeviceBuffer out = poisoned(n, "out")) {
            DeviceWeight src = DeviceWeight.fp8(shaped(q, DType.F8_E4M3, mats, rows, cols),
                    shaped(sc, DType.F32, mats, w.scaleRows(), w.scaleCols()), split);
            new Fp8DequantKernel(GpuTestSupport.kernels()).launch(s, new Fp8DequantKernel.Args(src, shaped(out, DType.BF16, mats, rows, cols)));
            assertArrayEquals(w.dequantized(), download(out, n), "bf16(float(e4m3) · scale) element by element");
        }
    }

    @ParameterizedTest(name = "E={0} H={1} I={2} k={3} tokens={4} fusedGateUp={5}")
    @CsvSource({"64, 2048, 512, 10, 1, false", "16, 512, 128, 4, 3, true", "32, 1024, 272, 8, 4, false", "8, 192, 48, 2, 2, true",
            "128, 2048, 512, 10, 2, true"})
    void fp8DecodeExpertsAreTheBf16KernelsOnTheDequantizedImage(int experts, int hidden, int inter, int topK, int tokens,
                                                                boolean fusedGateUp) {
        long seed = experts * 7919L + hidden + inter * 31L + tokens;
        int gateUpSplit = fusedGateUp ? 2 * inter : inter;
        Fp8Reference.Weights gateUp = Fp8Reference.random(seed, experts, 2 * inter, hidden, gateUpSplit);
        Fp8Reference.Weights down = Fp8Reference.random(seed + 1, experts, hidden, inter, hidden);
        Fp8Reference.Weights sharedGateUp = Fp8Reference.random(seed + 2, 1, 2 * inter, hidden, inter);
        Fp8Reference.Weights sharedDown = Fp8Reference.random(seed + 3, 1, hidden, inter, hidden);
        Random rnd = new Random(seed);
        int pairs = tokens * topK, slots = MoeDecodeKernel.actRows(tokens, topK, true), stride = experts + 1;
        int[] ids = new int[pairs];
        for (int t = 0; t < tokens; t++) {
            for (int j = 0; j < topK; j++) ids[t * topK + j] = (t * 37 + j * 5 + rnd.nextInt(3)) % experts;
        }
        ids[pairs - 1] = -1;  // a pair the router never writes: no read, zero contribution, on both paths
        short[] x = randomBf16(rnd, tokens * hidden, 1.0), weights = randomBf16(rnd, pairs, 0.3);
        short[] gateLogits = randomBf16(rnd, tokens * stride, 1.0);
        Gpu gpu = GpuTestSupport.gpu();
        Stream s = GpuTestSupport.stream();
        MoeDecodeKernel dec = new MoeDecodeKernel(GpuTestSupport.kernels());
        short[][] act = new short[2][], contrib = new short[2][], out = new short[2][];
        try (DeviceBuffer dx = upload(x, "x"); DeviceBuffer dIds = DeviceArrays.upload(ids, "ids");
             DeviceBuffer dW = upload(weights, "topk weights"); DeviceBuffer dGate = upload(gateLogits, "gate logits");
             DeviceBuffer gu16 = upload(gateUp.dequantized(), "gate_up bf16"); DeviceBuffer dn16 = upload(down.dequantized(), "down bf16");
             DeviceBuffer sgu16 = upload(sharedGateUp.dequantized(), "shared gate_up bf16");
             DeviceBuffer sdn16 = upload(sharedDown.dequantized(), "shared down bf16");
             DeviceBuffer gu8 = DeviceArrays.upload(gateUp.q(), "gate_up fp8"); DeviceBuffer gus = DeviceArrays.upload(gateUp.scales(), "gate_up scales");
             DeviceBuffer dn8 = DeviceArrays.upload(down.q(), "down fp8"); DeviceBuffer dns = DeviceArrays.upload(down.scales(), "down scales");
             DeviceBuffer sgu8 = DeviceArrays.upload(sharedGateUp.q(), "shared gate_up fp8");
             DeviceBuffer sgus = DeviceArrays.upload(sharedGateUp.scales(), "shared gate_up scales");
             DeviceBuffer sdn8 = DeviceArrays.upload(sharedDown.q(), "shared down fp8");
             DeviceBuffer sdns = DeviceArrays.upload(sharedDown.scales(), "shared down scales");
             DeviceBuffer counters = gpu.allocate(MoeDecodeKernel.counterBytes(tokens, hidden), "counters")) {
            counters.fill32(0, s);
            DeviceTensor tIds = Tensors.rows(dIds, DType.I32, topK), tx = Tensors.rows(dx, DType.BF16, hidden);
            DeviceWeight[][] w = {
                    {DeviceWeight.bf16(shaped(gu16, DType.BF16, experts, 2 * inter, hidden)),
                            DeviceWeight.bf16(shaped(sgu16, DType.BF16, 2 * inter, hidden)),
                            DeviceWeight.bf16(shaped(dn16, DType.BF16, experts, hidden, inter)),
                            DeviceWeight.bf16(shaped(sdn16, DType.BF16, hidden, inter))},
                    {DeviceWeight.fp8(shaped(gu8, DType.F8_E4M3, experts, 2 * inter, hidden),
                            shaped(gus, DType.F32, experts, gateUp.scaleRows(), gateUp.scaleCols()), gateUpSplit),
                            DeviceWeight.fp8(shaped(sgu8, DType.F8_E4M3, 2 * inter, hidden),
                                    shaped(sgus, DType.F32, sharedGateUp.scaleRows(), sharedGateUp.scaleCols()), inter),
                            DeviceWeight.fp8(shaped(dn8, DType.F8_E4M3, experts, hidden, inter),
                                    shaped(dns, DType.F32, experts, down.scaleRows(), down.scaleCols())),
                            DeviceWeight.fp8(shaped(sdn8, DType.F8_E4M3, hidden, inter),
                                    shaped(sdns, DType.F32, sharedDown.scaleRows(), sharedDown.scaleCols()))}};
            for (int path = 0; path < 2; path++) {
                try (DeviceBuffer dAct = poisoned(slots * inter, "act"); DeviceBuffer dContrib = poisoned(slots * hidden, "contrib");
                     DeviceBuffer dOut = poisoned(tokens * hidden, "out")) {
                    DeviceTensor tAct = Tensors.rows(dAct, DType.BF16, inter);
                    dec.launchGateUp(s, new MoeDecodeKernel.GateUpArgs(tx, tIds, w[path][0], w[path][1], tAct), tokens);
                    dec.launchDown(s, new MoeDecodeKernel.DownArgs(tAct, tIds, Tensors.rows(dW, DType.BF16, topK), w[path][2], w[path][3],
                            Tensors.rows(dGate, DType.BF16, stride), experts, Tensors.rows(dContrib, DType.BF16, hidden),
                            Tensors.rows(counters, DType.U32, hidden / 64), Tensors.rows(dOut, DType.BF16, hidden)), tokens);
                    act[path] = download(dAct, slots * inter);
                    contrib[path] = download(dContrib, slots * hidden);
                    out[path] = download(dOut, tokens * hidden);
                }
            }
        }
        for (short v : out[1]) assertFalse(Float.isNaN(Bf16.toFloat(v)), "FP8 decode output holds NaN");
        assertArrayEquals(act[0], act[1], "gate_up + SiLU activations: FP8 = bf16 on the dequantized image");
        assertArrayEquals(contrib[0], contrib[1], "per-slot down contributions");
        assertArrayEquals(out[0], out[1], "combined output");
    }

    private static DeviceTensor shaped(DeviceBuffer b, DType dtype, int... shape) {
        return Tensors.of(b, dtype, shape);
    }
}
