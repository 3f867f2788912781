// Device-driven grouped GEMM for the prefill expert MLPs (tensor cores: mma.sync m16n8k16 bf16, fp32 accumulation,
// ldmatrix from XOR-swizzled shared memory, multi-stage cp.async pipeline). The rows are the (token, k) pairs sorted
// by expert by moe_align.cu, each expert's segment padded to the tile height BM, so every m-tile belongs to one
// expert (tile_expert[m], -1 = unused tile: the block exits). Grid: (n-tiles, max m-tiles), sized for the worst case.
//
//   moe_gemm_gate_up  act[r, :I] = bf16(bf16(silu(bf16(x_t·Wg_eᵀ))) · bf16(x_t·Wu_eᵀ)),  t = sorted_pairs[r] / topk,
//                     W = gate_up [E, 2I, H] (rows 0..I-1 gate, I..2I-1 up). The B tile interleaves 8 gate rows with the
//                     matching 8 up rows so each thread holds both halves of its outputs (SiLU·mul in the epilogue).
//   moe_gemm_down     contrib[p, :H] = bf16(bf16(act_r·Wd_eᵀ) · w_p),  p = sorted_pairs[r] (padding rows skipped),
//                     W = down [E, H, I], w = topk_weights (bf16, per pair). moe_combine.cu sums the k rows of a token.
// Constraints (checked by the launcher): H % 64 == 0 and I % 64 == 0 (gate_up), H % 128 == 0 and I % 64 == 0 (down).
#include "common.cuh"

#define GEMM_BM 128
#define GEMM_BN 128
#define GEMM_BK 64
#define GEMM_STAGES 3
#define GEMM_THREADS 256
#define GEMM_WM 64   // warp tile rows (2 warps along M)
#define GEMM_WN 32   // warp tile cols (4 warps along N)
#define GEMM_MI (GEMM_WM / 16)
#define GEMM_NI (GEMM_WN / 8)
#define GEMM_STAGE_ELEMS ((GEMM_BM + GEMM_BN) * GEMM_BK)

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

// The main loop shared by both GEMMs: acc += A_rows · B_rowsᵀ over K, where this thread's 4 A rows and 4 B rows
// (chunk column tid % 8, rows tid / 8 + 32 i) come from the given pointers (a_ok false: zero row).
__device__ __forceinline__ void gemm_mainloop(float (&acc)[GEMM_MI][GEMM_NI][4], bf16* smem, const bf16* const (&a_src)[4],
                                              const bool (&a_ok)[4], const bf16* const (&b_src)[4], int k_total) {
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wm = warp >> 2, wn = warp & 3;
    const int chunk = tid & 7, row0 = tid >> 3;
    const int k_tiles = k_total / GEMM_BK;
    const unsigned sbase = smem_u32(smem);

    auto load_stage = [&](int stage, int kt) {
        const unsigned sa = sbase + stage * GEMM_STAGE_ELEMS * 2;
        const unsigned sb = sa + GEMM_BM * GEMM_BK * 2;
        const int koff = kt * GEMM_BK + chunk * 8;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const int r = row0 + 32 * i;
            cp_async16(sa + tile_offset(r, chunk), a_src[i] + koff, a_ok[i]);
            cp_async16(sb + tile_offset(r, chunk), b_src[i] + koff, true);
        }
    };

#pragma unroll
    for (int s = 0; s < GEMM_STAGES - 1; s++) {
        if (s < k_tiles) load_stage(s, s);
        cp_async_commit();
    }
    for (int kt = 0; kt < k_tiles; kt++) {
        cp_async_wait<GEMM_STAGES - 2>();
        __syncthreads();
        const int pf = kt + GEMM_STAGES - 1;
        if (pf < k_tiles) load_stage(pf % GEMM_STAGES, pf);
        cp_async_commit();
        const unsigned sa = sbase + (kt % GEMM_STAGES) * GEMM_STAGE_ELEMS * 2;
        const unsigned sb = sa + GEMM_BM * GEMM_BK * 2;
#pragma unroll
        for (int kk = 0; kk < GEMM_BK / 16; kk++) {
            unsigned a[GEMM_MI][4], b[GEMM_NI][2];
#pragma unroll
            for (int mi = 0; mi < GEMM_MI; mi++) {
                const int r = wm * GEMM_WM + mi * 16 + (lane & 15);
                const int c = kk * 2 + (lane >> 4);
                ldmatrix_x4(sa + tile_offset(r, c), a[mi][0], a[mi][1], a[mi][2], a[mi][3]);
            }
#pragma unroll
            for (int nj = 0; nj < GEMM_NI / 2; nj++) {
                const int r = wn * GEMM_WN + nj * 16 + ((lane >> 4) << 3) + (lane & 7);
                const int c = kk * 2 + ((lane >> 3) & 1);
                ldmatrix_x4(sb + tile_offset(r, c), b[2 * nj][0], b[2 * nj][1], b[2 * nj + 1][0], b[2 * nj + 1][1]);
            }
#pragma unroll
            for (int mi = 0; mi < GEMM_MI; mi++)
#pragma unroll
                for (int ni = 0; ni < GEMM_NI; ni++) mma_bf16(acc[mi][ni], a[mi], b[ni][0], b[ni][1]);
        }
    }
    cp_async_wait<0>();
}

extern "C" __global__ void __launch_bounds__(GEMM_THREADS)
moe_gemm_gate_up(const bf16* __restrict__ x, const int* __restrict__ sorted_pairs, const int* __restrict__ tile_expert,
                 const bf16* __restrict__ w_gate_up, bf16* __restrict__ act, int topk, int hidden, int inter) {
    const int expert = tile_expert[blockIdx.y];
    if (expert < 0) return;
    extern __shared__ __align__(128) bf16 smem[];
    const int tid = threadIdx.x, row0 = tid >> 3;
    const int m0 = blockIdx.y * GEMM_BM;
    const int n_act0 = blockIdx.x * (GEMM_BN / 2);  // this tile's first output (act) column
    const bf16* w = w_gate_up + (long)expert * 2 * inter * hidden;
    const bf16* a_src[4];
    bool a_ok[4];
    const bf16* b_src[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int r = row0 + 32 * i;
        const int pair = sorted_pairs[m0 + r];
        a_ok[i] = pair >= 0;
        a_src[i] = x + (pair >= 0 ? (long)(pair / topk) * hidden : 0);
        // B row r of the tile: groups of 16 rows = 8 gate rows then the 8 matching up rows
        const int col = n_act0 + (r >> 4) * 8 + (r & 7);
        b_src[i] = w + (long)((r & 8) ? inter + col : col) * hidden;
    }
    float acc[GEMM_MI][GEMM_NI][4];
#pragma unroll
    for (int mi = 0; mi < GEMM_MI; mi++)
#pragma unroll
        for (int ni = 0; ni < GEMM_NI; ni++)
#pragma unroll
            for (int j = 0; j < 4; j++) acc[mi][ni][j] = 0.f;
    gemm_mainloop(acc, smem, a_src, a_ok, b_src, hidden);

    const int lane = tid & 31, warp = tid >> 5, wm = warp >> 2, wn = warp & 3;
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int mi = 0; mi < GEMM_MI; mi++) {
#pragma unroll
        for (int p = 0; p < GEMM_NI / 2; p++) {
            const int col = n_act0 + wn * (GEMM_WN / 2) + p * 8 + 2 * t;
#pragma unroll
            for (int h = 0; h < 2; h++) {
                const int r = m0 + wm * GEMM_WM + mi * 16 + g + 8 * h;
                float o[2];
#pragma unroll
                for (int j = 0; j < 2; j++) {
                    const float gate = round_bf16(acc[mi][2 * p][2 * h + j]);
                    const float up = round_bf16(acc[mi][2 * p + 1][2 * h + j]);
                    o[j] = round_bf16(silu_f32(gate)) * up;
                }
                *reinterpret_cast<__nv_bfloat162*>(act + (long)r * inter + col) = __floats2bfloat162_rn(o[0], o[1]);
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(GEMM_THREADS)
moe_gemm_down(const bf16* __restrict__ act, const int* __restrict__ sorted_pairs, const int* __restrict__ tile_expert,
              const bf16* __restrict__ w_down, const bf16* __restrict__ topk_weights, bf16* __restrict__ contrib,
              int hidden, int inter) {
    const int expert = tile_expert[blockIdx.y];
    if (expert < 0) return;
    extern __shared__ __align__(128) bf16 smem[];
    const int tid = threadIdx.x, row0 = tid >> 3;
    const int m0 = blockIdx.y * GEMM_BM;
    const int n0 = blockIdx.x * GEMM_BN;
    const bf16* w = w_down + (long)expert * hidden * inter;
    const bf16* a_src[4];
    bool a_ok[4];
    const bf16* b_src[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int r = row0 + 32 * i;
        a_ok[i] = true;  // padding rows of act hold finite values (silu(0)·0); their outputs are dropped below
        a_src[i] = act + (long)(m0 + r) * inter;
        b_src[i] = w + (long)(n0 + r) * inter;
    }
    float acc[GEMM_MI][GEMM_NI][4];
#pragma unroll
    for (int mi = 0; mi < GEMM_MI; mi++)
#pragma unroll
        for (int ni = 0; ni < GEMM_NI; ni++)
#pragma unroll
            for (int j = 0; j < 4; j++) acc[mi][ni][j] = 0.f;
    gemm_mainloop(acc, smem, a_src, a_ok, b_src, inter);

    const int lane = tid & 31, warp = tid >> 5, wm = warp >> 2, wn = warp & 3;
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int mi = 0; mi < GEMM_MI; mi++) {
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int r = m0 + wm * GEMM_WM + mi * 16 + g + 8 * h;
            const int pair = sorted_pairs[r];
            if (pair < 0) continue;
            const float wk = __bfloat162float(topk_weights[pair]);
#pragma unroll
            for (int ni = 0; ni < GEMM_NI; ni++) {
                const int col = n0 + wn * GEMM_WN + ni * 8 + 2 * t;
                const float o0 = round_bf16(acc[mi][ni][2 * h]) * wk;
                const float o1 = round_bf16(acc[mi][ni][2 * h + 1]) * wk;
                *reinterpret_cast<__nv_bfloat162*>(contrib + (long)pair * hidden + col) = __floats2bfloat162_rn(o0, o1);
            }
        }
    }
}
