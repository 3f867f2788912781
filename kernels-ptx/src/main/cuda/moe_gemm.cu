// Device-driven grouped GEMM for the prefill expert MLPs (tensor cores: mma.sync m16n8k16 bf16, fp32 accumulation,
// ldmatrix from XOR-swizzled shared memory, multi-stage cp.async pipeline). The rows are the (token, k) pairs sorted
// by expert by moe_align.cu, each expert's segment padded to the tile height BM, so every m-tile belongs to one
// expert (tile_expert[m], -1 = unused tile: the block exits). Grid: (n-tiles, max m-tiles), sized for the worst case.
//
//   moe_gemm_gate_up_nBN  act[r, :I] = bf16(bf16(silu(bf16(x_t·Wg_eᵀ))) · bf16(x_t·Wu_eᵀ)),  t = sorted_pairs[r] / topk,
//                         W = gate_up [E, 2I, H] (rows 0..I-1 gate, I..2I-1 up). The B tile interleaves 8 gate rows
//                         with the matching 8 up rows so each thread holds both halves of its outputs (SiLU·mul in
//                         the epilogue); a BN-row tile yields BN/2 activation columns.
//   moe_gemm_down_nBN     contrib[p, :H] = bf16(bf16(act_r·Wd_eᵀ) · w_p),  p = sorted_pairs[r] (padding rows skipped),
//                         W = down [E, H, I], w = topk_weights (bf16, per pair). moe_combine.cu sums a token's k rows.
// Tiles: BM = 128, BK = 64, BN = 128 (3 stages, 2 blocks/SM) or 256 (4 stages, 1 block/SM); 8 warps as 2 (M) x 4 (N).
// The epilogue stages each warp's tile in shared memory and writes 16-byte pieces of whole rows.
// Constraints (checked by the launcher): H % 64 == 0, I % (BN/2) == 0 (gate_up); I % 64 == 0, H % BN == 0 (down).
#include "common.cuh"

#define GEMM_BM 128
#define GEMM_BK 64
#define GEMM_THREADS 256
#define GEMM_WM 64
#define GEMM_MI (GEMM_WM / 16)

__device__ __forceinline__ unsigned smem_u32(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void cp_async16(unsigned dst, const void* src, bool valid) {
    int n = valid ? 16 : 0;  // 0: fill the 16 bytes with zeros
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(n));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(unsigned addr, unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}

__device__ __forceinline__ void mma_bf16(float* c, const unsigned* a, unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Byte offset of 16-byte chunk c of row r in a [rows][GEMM_BK] bf16 tile, XOR-swizzled so ldmatrix is conflict-free.
__device__ __forceinline__ unsigned tile_offset(int r, int c) { return (unsigned)(r * GEMM_BK * 2 + ((c ^ (r & 7)) << 4)); }

template <int BN>
struct GemmCfg {
    static constexpr int WN = BN / 4;                      // warp tile columns
    static constexpr int NI = WN / 8;                      // n8 blocks per warp
    static constexpr int STAGES = BN == 256 ? 4 : 3;
    static constexpr int STAGE_BYTES = (GEMM_BM + BN) * GEMM_BK * 2;
    static constexpr int SMEM = STAGES * STAGE_BYTES;
    static constexpr int MIN_BLOCKS = BN == 256 ? 1 : 2;
};

// acc += A_rows · B_rowsᵀ over K. This thread copies A rows row0 + 32 i (i < 4; gathered pointers, a_ok false: zeros)
// and B rows row0 + 32 i (i < BN/32) at b_first + i·b_step, 16-byte chunk tid % 8 of each BK slice.
template <int BN>
__device__ __forceinline__ void gemm_mainloop(float (&acc)[GEMM_MI][GemmCfg<BN>::NI][4], const unsigned sbase,
                                              const bf16* const (&a_src)[4], const bool (&a_ok)[4], const bf16* b_first,
                                              long b_step, int k_total) {
    using C = GemmCfg<BN>;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp >> 2, wn = warp & 3;
    const int chunk = tid & 7, row0 = tid >> 3;
    const int k_tiles = k_total / GEMM_BK;

    auto load_stage = [&](int stage, int kt) {
        const unsigned sa = sbase + stage * C::STAGE_BYTES;
        const unsigned sb = sa + GEMM_BM * GEMM_BK * 2;
        const int koff = kt * GEMM_BK + chunk * 8;
#pragma unroll
        for (int i = 0; i < 4; i++) cp_async16(sa + tile_offset(row0 + 32 * i, chunk), a_src[i] + koff, a_ok[i]);
#pragma unroll
        for (int i = 0; i < BN / 32; i++) cp_async16(sb + tile_offset(row0 + 32 * i, chunk), b_first + i * b_step + koff, true);
    };

#pragma unroll
    for (int s = 0; s < C::STAGES - 1; s++) {
        if (s < k_tiles) load_stage(s, s);
        cp_async_commit();
    }
    for (int kt = 0; kt < k_tiles; kt++) {
        cp_async_wait<C::STAGES - 2>();
        __syncthreads();
        const int pf = kt + C::STAGES - 1;
        if (pf < k_tiles) load_stage(pf % C::STAGES, pf);
        cp_async_commit();
        const unsigned sa = sbase + (kt % C::STAGES) * C::STAGE_BYTES;
        const unsigned sb = sa + GEMM_BM * GEMM_BK * 2;
#pragma unroll
        for (int kk = 0; kk < GEMM_BK / 16; kk++) {
            unsigned a[GEMM_MI][4], b[C::NI][2];
#pragma unroll
            for (int mi = 0; mi < GEMM_MI; mi++) {
                const int r = wm * GEMM_WM + mi * 16 + (lane & 15);
                ldmatrix_x4(sa + tile_offset(r, kk * 2 + (lane >> 4)), a[mi][0], a[mi][1], a[mi][2], a[mi][3]);
            }
#pragma unroll
            for (int nj = 0; nj < C::NI / 2; nj++) {
                const int r = wn * C::WN + nj * 16 + ((lane >> 4) << 3) + (lane & 7);
                ldmatrix_x4(sb + tile_offset(r, kk * 2 + ((lane >> 3) & 1)), b[2 * nj][0], b[2 * nj][1], b[2 * nj + 1][0],
                            b[2 * nj + 1][1]);
            }
#pragma unroll
            for (int mi = 0; mi < GEMM_MI; mi++)
#pragma unroll
                for (int ni = 0; ni < C::NI; ni++) mma_bf16(acc[mi][ni], a[mi], b[ni][0], b[ni][1]);
        }
    }
    cp_async_wait<0>();
    __syncthreads();  // the pipeline's shared memory is reused by the epilogue
}

template <int BN>
__device__ __forceinline__ void gemm_gate_up(const bf16* __restrict__ x, const int* __restrict__ sorted_pairs,
                                             const int* __restrict__ tile_expert, const bf16* __restrict__ w_gate_up,
                                             bf16* __restrict__ act, int topk, int hidden, int inter) {
    using C = GemmCfg<BN>;
    const int expert = tile_expert[blockIdx.y];
    if (expert < 0) return;
    extern __shared__ __align__(128) unsigned char smem[];
    const int tid = threadIdx.x, row0 = tid >> 3;
    const int m0 = blockIdx.y * GEMM_BM;
    const int n_act0 = blockIdx.x * (BN / 2);  // this tile's first output (act) column
    const bf16* a_src[4];
    bool a_ok[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int pair = sorted_pairs[m0 + row0 + 32 * i];
        a_ok[i] = pair >= 0;
        a_src[i] = x + (pair >= 0 ? (long)(pair / topk) * hidden : 0);
    }
    // B row r of the tile: groups of 16 rows = 8 gate rows then the 8 matching up rows; rows r and r + 32 are 16
    // activation columns apart, so this thread's rows are affine in i
    const int col = n_act0 + (row0 >> 4) * 8 + (row0 & 7);
    const bf16* b_first = w_gate_up + ((long)expert * 2 * inter + ((row0 & 8) ? inter + col : col)) * hidden;
    float acc[GEMM_MI][C::NI][4];
#pragma unroll
    for (int mi = 0; mi < GEMM_MI; mi++)
#pragma unroll
        for (int ni = 0; ni < C::NI; ni++)
#pragma unroll
            for (int j = 0; j < 4; j++) acc[mi][ni][j] = 0.f;
    gemm_mainloop<BN>(acc, smem_u32(smem), a_src, a_ok, b_first, 16L * hidden, hidden);

    // epilogue: SiLU·mul in registers, the warp's [64 rows][WN/2 cols] bf16 tile staged in shared memory
    const int lane = tid & 31, warp = tid >> 5, wm = warp >> 2, wn = warp & 3;
    const int g = lane >> 2, t = lane & 3;
    constexpr int COLS = C::WN / 2;
    constexpr int PITCH = COLS * 2 + 16;  // bytes per staged row: 16-byte aligned, conflict-free bf16x2 writes
    unsigned char* stage = smem + warp * GEMM_WM * PITCH;
#pragma unroll
    for (int mi = 0; mi < GEMM_MI; mi++) {
#pragma unroll
        for (int p = 0; p < C::NI / 2; p++) {
#pragma unroll
            for (int h = 0; h < 2; h++) {
                float o[2];
#pragma unroll
                for (int j = 0; j < 2; j++) {
                    const float gate = round_bf16(acc[mi][2 * p][2 * h + j]);
                    const float up = round_bf16(acc[mi][2 * p + 1][2 * h + j]);
                    o[j] = round_bf16(silu_f32(gate)) * up;
                }
                *reinterpret_cast<__nv_bfloat162*>(stage + (mi * 16 + g + 8 * h) * PITCH + (p * 8 + 2 * t) * 2) =
                    __floats2bfloat162_rn(o[0], o[1]);
            }
        }
    }
    __syncwarp();
    constexpr int CHUNKS = COLS / 8;  // 16-byte pieces per row
    const int col0 = n_act0 + wn * COLS;
#pragma unroll
    for (int c = lane; c < GEMM_WM * CHUNKS; c += 32) {
        const int r = c / CHUNKS, q = c % CHUNKS;
        *reinterpret_cast<uint4*>(act + (long)(m0 + wm * GEMM_WM + r) * inter + col0 + q * 8) =
            *reinterpret_cast<const uint4*>(stage + r * PITCH + q * 16);
    }
}

template <int BN>
__device__ __forceinline__ void gemm_down(const bf16* __restrict__ act, const int* __restrict__ sorted_pairs,
                                          const int* __restrict__ tile_expert, const bf16* __restrict__ w_down,
                                          const bf16* __restrict__ topk_weights, bf16* __restrict__ contrib, int hidden,
                                          int inter) {
    using C = GemmCfg<BN>;
    const int expert = tile_expert[blockIdx.y];
    if (expert < 0) return;
    extern __shared__ __align__(128) unsigned char smem[];
    const int tid = threadIdx.x, row0 = tid >> 3;
    const int m0 = blockIdx.y * GEMM_BM;
    const int n0 = blockIdx.x * BN;
    const bf16* a_src[4];
    bool a_ok[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        a_ok[i] = true;  // padding rows of act hold finite values (silu(0)·0); their outputs are dropped below
        a_src[i] = act + (long)(m0 + row0 + 32 * i) * inter;
    }
    const bf16* b_first = w_down + ((long)expert * hidden + n0 + row0) * inter;
    float acc[GEMM_MI][C::NI][4];
#pragma unroll
    for (int mi = 0; mi < GEMM_MI; mi++)
#pragma unroll
        for (int ni = 0; ni < C::NI; ni++)
#pragma unroll
            for (int j = 0; j < 4; j++) acc[mi][ni][j] = 0.f;
    gemm_mainloop<BN>(acc, smem_u32(smem), a_src, a_ok, b_first, 32L * inter, inter);

    const int lane = tid & 31, warp = tid >> 5, wm = warp >> 2, wn = warp & 3;
    const int g = lane >> 2, t = lane & 3;
    constexpr int PITCH = C::WN * 2 + 16;
    unsigned char* stage = smem + warp * GEMM_WM * PITCH;
#pragma unroll
    for (int mi = 0; mi < GEMM_MI; mi++) {
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int r = mi * 16 + g + 8 * h;
            const int pair = sorted_pairs[m0 + wm * GEMM_WM + r];
            const float wk = pair >= 0 ? __bfloat162float(topk_weights[pair]) : 0.f;
#pragma unroll
            for (int ni = 0; ni < C::NI; ni++) {
                const float o0 = round_bf16(acc[mi][ni][2 * h]) * wk;
                const float o1 = round_bf16(acc[mi][ni][2 * h + 1]) * wk;
                *reinterpret_cast<__nv_bfloat162*>(stage + r * PITCH + (ni * 8 + 2 * t) * 2) = __floats2bfloat162_rn(o0, o1);
            }
        }
    }
    __syncwarp();
    constexpr int CHUNKS = C::WN / 8;
    const int col0 = n0 + wn * C::WN;
#pragma unroll 4
    for (int c = lane; c < GEMM_WM * CHUNKS; c += 32) {
        const int r = c / CHUNKS, q = c % CHUNKS;
        const int pair = sorted_pairs[m0 + wm * GEMM_WM + r];
        if (pair >= 0)
            *reinterpret_cast<uint4*>(contrib + (long)pair * hidden + col0 + q * 8) =
                *reinterpret_cast<const uint4*>(stage + r * PITCH + q * 16);
    }
}

#define GATE_UP_ENTRY(BN)                                                                                              \
    extern "C" __global__ void __launch_bounds__(GEMM_THREADS, GemmCfg<BN>::MIN_BLOCKS) moe_gemm_gate_up_n##BN(       \
        const bf16* __restrict__ x, const int* __restrict__ sorted_pairs, const int* __restrict__ tile_expert,         \
        const bf16* __restrict__ w_gate_up, bf16* __restrict__ act, int topk, int hidden, int inter) {                 \
        gemm_gate_up<BN>(x, sorted_pairs, tile_expert, w_gate_up, act, topk, hidden, inter);                           \
    }
#define DOWN_ENTRY(BN)                                                                                                 \
    extern "C" __global__ void __launch_bounds__(GEMM_THREADS, GemmCfg<BN>::MIN_BLOCKS) moe_gemm_down_n##BN(          \
        const bf16* __restrict__ act, const int* __restrict__ sorted_pairs, const int* __restrict__ tile_expert,       \
        const bf16* __restrict__ w_down, const bf16* __restrict__ topk_weights, bf16* __restrict__ contrib, int hidden, \
        int inter) {                                                                                                   \
        gemm_down<BN>(act, sorted_pairs, tile_expert, w_down, topk_weights, contrib, hidden, inter);                   \
    }

GATE_UP_ENTRY(128)
GATE_UP_ENTRY(256)
DOWN_ENTRY(128)
DOWN_ENTRY(256)
