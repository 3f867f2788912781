package dev.jnext.cuda.kernels;

import dev.jnext.gpu.Dim3;
import dev.jnext.gpu.Kernel;
import dev.jnext.gpu.Stream;
import dev.jnext.numeric.Bf16;

/**
 * The prefill expert MLPs as a device-driven grouped GEMM on tensor cores (kernels-ptx/moe_gemm.cu) over the rows that
 * {@link ExpertGrouping} sorted by expert (segments padded to {@link #BLOCK_M}). The grid covers the worst case
 * ({@link ExpertGrouping#maxTiles} m-tiles); unused tiles exit, so the launches are graph-capturable.
 * <ul>
 *   <li>{@link #launchGateUp}: {@code act[r] = bf16(bf16(silu(bf16(x_t·Wgᵀ))) · bf16(x_t·Wuᵀ))} with
 *       {@code gateUp [E, 2I, H]} (gate rows then up rows) — 2·2·H·I FLOPs per pair;</li>
 *   <li>{@link #launchDown}: {@code contrib[p] = bf16(bf16(act_r·Wdᵀ) · w_p)} with {@code down [E, H, I]} — 2·H·I FLOPs
 *       per pair — written in pair order ([tokens·topK, H]) for {@link MoeCombineKernel}.</li>
 * </ul>
 */
public final class MoeExpertGemm {
    /** Tile height: the grouping's segment padding. */
    public static final int BLOCK_M = 128;
    static final int BLOCK_K = 64;
    static final int THREADS = 256;

    /** Shared memory of a tile width: 3 stages of 128 + 128 rows, or 4 stages of 128 + 256 rows, of BLOCK_K bf16. */
    static int smemBytes(int blockN) {
        return (blockN == 256 ? 4 : 3) * (BLOCK_M + blockN) * BLOCK_K * 2;
    }

    /**
     * Which tensor-core instruction does the products: {@code MMA_SYNC} (warp-level mma.sync, compute_90 PTX, the
     * portable path) or {@code WGMMA} (Hopper warpgroup MMA from shared memory, moe_gemm_sm90a.cu, compute_90a PTX;
     * shapes it does not tile fall back to mma.sync). Both give the same rounding points; the fp32 sums may differ.
     */
    public enum Engine { MMA_SYNC, WGMMA }

    /** wgmma kernels: 128 x 256 x 64 tiles, 4 stages, plus 1 KiB to align the swizzled tiles. */
    static final int WGMMA_SMEM_BYTES = 4 * (128 + 256) * 64 * 2 + 1024;

    private final Engine engine;
    private final Kernel gateUp128, gateUp256, down128, down256;
    private final Kernel gateUpWgmma, downWgmma;

    public MoeExpertGemm(KernelLibrary lib) {
        this(lib, Engine.MMA_SYNC);
    }

    public MoeExpertGemm(KernelLibrary lib, Engine engine) {
        this.engine = engine;
        this.gateUp128 = lib.kernel("moe_gemm", "moe_gemm_gate_up_n128").allowDynamicSharedMemory(smemBytes(128));
        this.gateUp256 = lib.kernel("moe_gemm", "moe_gemm_gate_up_n256").allowDynamicSharedMemory(smemBytes(256));
        this.down128 = lib.kernel("moe_gemm", "moe_gemm_down_n128").allowDynamicSharedMemory(smemBytes(128));
        this.down256 = lib.kernel("moe_gemm", "moe_gemm_down_n256").allowDynamicSharedMemory(smemBytes(256));
        if (engine == Engine.WGMMA) {
            this.gateUpWgmma = lib.kernel("moe_gemm_sm90a", "moe_gemm_gate_up_wgmma").allowDynamicSharedMemory(WGMMA_SMEM_BYTES);
            this.downWgmma = lib.kernel("moe_gemm_sm90a", "moe_gemm_down_wgmma").allowDynamicSharedMemory(WGMMA_SMEM_BYTES);
        } else {
            this.gateUpWgmma = null;
            this.downWgmma = null;
        }
    }

    public Engine engine() {
        return engine;
    }

    /** The wide tile (256 weight rows) when the shape allows it, else 128. */
    static int gateUpTileN(int inter) {
        return inter % 128 == 0 ? 256 : 128;
    }

    static int downTileN(int hidden) {
        return hidden % 256 == 0 ? 256 : 128;
    }

    /**
     * The gate_up launch's tensors. The expert weights {@code gateUp [E, 2I, H]} bf16 (each expert's gate rows then up
     * rows) fix the contract: {@code x [≥tokens, H]} bf16; the grouping's {@code sortedPairs [≥maxTiles, BLOCK_M]} and
     * {@code tileExpert [≥maxTiles]} i32; {@code act [≥maxTiles·BLOCK_M, I]} bf16 (sorted order); {@code topK} maps a pair
     * to its token. Row counts are capacities, checked per launch against the {@link ExpertGrouping#maxTiles} of its
     * tokens.
     */
    public record GateUpArgs(DeviceTensor x, DeviceTensor sortedPairs, DeviceTensor tileExpert, DeviceTensor gateUp,
                             DeviceTensor act, int topK) {
        static final String OP = "moe grouped GEMM gate_up";

        public GateUpArgs {
            int any = TensorContract.ANY;
            TensorContract.require(OP, "gateUp", gateUp, DType.BF16, any, any, any);
            if (gateUp.dim(1) % 2 != 0) throw TensorContract.fail(OP, "gateUp", "must hold 2·I rows per expert, got " + gateUp);
            int h = gateUp.dim(2), i = gateUp.dim(1) / 2;
            checkShape(h, i, 1);
            TensorContract.require(OP, "x", x, DType.BF16, any, h);
            TensorContract.require(OP, "sortedPairs", sortedPairs, DType.I32, any, BLOCK_M);
            TensorContract.require(OP, "tileExpert", tileExpert, DType.I32, any);
            TensorContract.require(OP, "act", act, DType.BF16, any, i);
            if (topK < 1) throw TensorContract.fail(OP, "topK", "must be >= 1, got " + topK);
        }

        public int experts() {
            return gateUp.dim(0);
        }

        public int inter() {
            return gateUp.dim(1) / 2;
        }

        public int hidden() {
            return gateUp.dim(2);
        }

        /** The m-tiles a launch over {@code tokens} covers; their rows fit every buffer. */
        int checkRows(int tokens) {
            int tiles = ExpertGrouping.maxTiles(tokens * topK, experts(), BLOCK_M);
            TensorContract.rows(OP, "x", x, tokens);
            TensorContract.rows(OP, "sortedPairs", sortedPairs, tiles);
            TensorContract.rows(OP, "tileExpert", tileExpert, tiles);
            TensorContract.rows(OP, "act", act, (long) tiles * BLOCK_M);
            return tiles;
        }
    }

    /**
     * The down launch's tensors. The expert weights {@code down [E, H, I]} bf16 fix the contract: {@code act
     * [≥maxTiles·BLOCK_M, I]} bf16 (sorted order); {@code sortedPairs [≥maxTiles, BLOCK_M]} and {@code tileExpert
     * [≥maxTiles]} i32; {@code topkWeights [≥tokens, topK]} bf16, which fixes top-k; {@code contrib [≥tokens·topK, H]}
     * bf16 (pair order). Row counts are capacities, checked per launch.
     */
    public record DownArgs(DeviceTensor act, DeviceTensor sortedPairs, DeviceTensor tileExpert, DeviceTensor down,
                           DeviceTensor topkWeights, DeviceTensor contrib) {
        static final String OP = "moe grouped GEMM down";

        public DownArgs {
            int any = TensorContract.ANY;
            TensorContract.require(OP, "down", down, DType.BF16, any, any, any);
            int h = down.dim(1), i = down.dim(2);
            checkShape(h, i, 1);
            TensorContract.require(OP, "act", act, DType.BF16, any, i);
            TensorContract.require(OP, "sortedPairs", sortedPairs, DType.I32, any, BLOCK_M);
            TensorContract.require(OP, "tileExpert", tileExpert, DType.I32, any);
            TensorContract.require(OP, "topkWeights", topkWeights, DType.BF16, any, any);
            TensorContract.positive(OP, "topkWeights", topkWeights, 1);
            TensorContract.require(OP, "contrib", contrib, DType.BF16, any, h);
        }

        public int experts() {
            return down.dim(0);
        }

        public int hidden() {
            return down.dim(1);
        }

        public int inter() {
            return down.dim(2);
        }

        public int topK() {
            return topkWeights.dim(1);
        }

        int checkRows(int tokens) {
            int tiles = ExpertGrouping.maxTiles(tokens * topK(), experts(), BLOCK_M);
            TensorContract.rows(OP, "act", act, (long) tiles * BLOCK_M);
            TensorContract.rows(OP, "sortedPairs", sortedPairs, tiles);
            TensorContract.rows(OP, "tileExpert", tileExpert, tiles);
            TensorContract.rows(OP, "topkWeights", topkWeights, tokens);
            TensorContract.rows(OP, "contrib", contrib, (long) tokens * topK());
            return tiles;
        }
    }

    /**
     * {@code x [tokens, H]}, the sorted rows of the last grouping of {@code tokens·topK} pairs → {@code act} (sorted
     * order), over the grouping's worst-case m-tiles.
     */
    public void launchGateUp(Stream s, GateUpArgs a, int tokens) {
        if (tokens < 1) throw new IllegalArgumentException("moe grouped GEMM: tokens must be >= 1, got " + tokens);
        int hidden = a.hidden(), inter = a.inter();
        int maxTiles = a.checkRows(tokens);
        checkShape(hidden, inter, maxTiles);
        int bn = gateUpTileN(inter);
        Kernel k = bn == 256 ? (gateUpWgmma != null ? gateUpWgmma : gateUp256) : gateUp128;
        k.args().ptr(a.x().address()).ptr(a.sortedPairs().address()).ptr(a.tileExpert().address()).ptr(a.gateUp().address())
                .ptr(a.act().address()).i32(a.topK()).i32(hidden).i32(inter);
        k.launch(s, Dim3.of(inter / (bn / 2), maxTiles), Dim3.of(THREADS), k == gateUpWgmma ? WGMMA_SMEM_BYTES : smemBytes(bn));
    }

    /** {@code act} (sorted order) → {@code contrib [tokens·topK, H]} (pair order), weighted by {@code topkWeights}. */
    public void launchDown(Stream s, DownArgs a, int tokens) {
        if (tokens < 1) throw new IllegalArgumentException("moe grouped GEMM: tokens must be >= 1, got " + tokens);
        int hidden = a.hidden(), inter = a.inter();
        int maxTiles = a.checkRows(tokens);
        checkShape(hidden, inter, maxTiles);
        int bn = downTileN(hidden);
        Kernel k = bn == 256 ? (downWgmma != null ? downWgmma : down256) : down128;
        k.args().ptr(a.act().address()).ptr(a.sortedPairs().address()).ptr(a.tileExpert().address()).ptr(a.down().address())
                .ptr(a.topkWeights().address()).ptr(a.contrib().address()).i32(hidden).i32(inter);
        k.launch(s, Dim3.of(hidden / bn, maxTiles), Dim3.of(THREADS), k == downWgmma ? WGMMA_SMEM_BYTES : smemBytes(bn));
    }

    static void checkShape(int hidden, int inter, int maxTiles) {
        if (hidden < 128 || hidden % 128 != 0) {
            throw new IllegalArgumentException("moe grouped GEMM: hidden must be a positive multiple of 128, got " + hidden);
        }
        if (inter < BLOCK_K || inter % BLOCK_K != 0) {
            throw new IllegalArgumentException("moe grouped GEMM: expert width must be a positive multiple of " + BLOCK_K + ", got " + inter);
        }
        if (maxTiles < 1 || maxTiles > 65535) {
            throw new IllegalArgumentException("moe grouped GEMM: m-tiles must be in [1, 65535], got " + maxTiles);
        }
    }
}
