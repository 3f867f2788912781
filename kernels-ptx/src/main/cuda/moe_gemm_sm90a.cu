// Hopper (sm_90a) variant of moe_gemm.cu's grouped GEMMs: the same rows, tiles, rounding points and outputs, with
// the products on wgmma (warpgroup MMA reading both operands straight from shared memory) instead of mma.sync.
// Built for compute_90a (build-ptx.sh compiles *_sm90a.cu so); the mma.sync kernels stay the portable path.
// CTA tile 128 x 256 x 64, 4-stage cp.async pipeline (2 tiles ahead, one wgmma batch in flight); two warpgroups, each m64n256k16 over 64 rows. Shared tiles
// are K-major rows of 64 bf16 (128 bytes) with 16-byte chunks XOR-swizzled by row % 8: the 128-byte-swizzle
// canonical layout wgmma reads (8-row groups 1024 bytes apart).
//   moe_gemm_gate_up_wgmma  as moe_gemm_gate_up_n256 (I % 128 == 0, H % 64 == 0)
//   moe_gemm_down_wgmma     as moe_gemm_down_n256    (H % 256 == 0, I % 64 == 0)
#include "common.cuh"

#define WG_BM 128
#define WG_BN 256
#define WG_BK 64
#define WG_STAGES 4
#define WG_PREFETCH (WG_STAGES - 2)
#define WG_THREADS 256
#define WG_STAGE_BYTES ((WG_BM + WG_BN) * WG_BK * 2)

__device__ __forceinline__ unsigned smem_u32(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void cp_async16(unsigned dst, const void* src, bool valid) {
    int n = valid ? 16 : 0;  // 0: fill the 16 bytes with zeros
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(n));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ unsigned tile_offset(int r, int c) { return (unsigned)(r * WG_BK * 2 + ((c ^ (r & 7)) << 4)); }

// Shared-memory matrix descriptor: K-major, 128-byte swizzle, 8-row groups 1024 bytes apart.
__device__ __forceinline__ unsigned long long smem_desc(unsigned addr) {
    unsigned long long d = (unsigned long long)((addr & 0x3FFFF) >> 4);
    d |= 1ull << 16;                  // leading byte offset (unused for swizzled K-major)
    d |= (unsigned long long)(1024 >> 4) << 32;  // stride byte offset
    d |= 1ull << 62;                  // 128-byte swizzle
    return d;
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory"); }
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], unsigned long long desc_a, unsigned long long desc_b) {
    asm volatile(
        "{\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 "
        "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, "
        "%128, %129, 1, 1, 1, 0, 0;\n"
        "}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
        : "l"(desc_a), "l"(desc_b));
}

// d += A_rows(this warpgroup's 64) · B_rows(256)ᵀ over K. This thread copies A rows row0 + 32 i (i < 4, gathered;
// a_ok false: zeros) and B rows row0 + 32 i (i < 8) at b_first + i·b_step, chunk tid % 8 of each 64-wide K slice.
__device__ __forceinline__ void wg_mainloop(float (&d)[128], unsigned sbase, const bf16* const (&a_src)[4], const bool (&a_ok)[4],
                                            const bf16* b_first, long b_step, int k_total) {
    const int tid = threadIdx.x, wg = tid >> 7;
    const int chunk = tid & 7, row0 = tid >> 3;
    const int k_tiles = k_total / WG_BK;
    auto load_stage = [&](int stage, int kt) {
        const unsigned sa = sbase + stage * WG_STAGE_BYTES;
        const unsigned sb = sa + WG_BM * WG_BK * 2;
        const int koff = kt * WG_BK + chunk * 8;
#pragma unroll
        for (int i = 0; i < 4; i++) cp_async16(sa + tile_offset(row0 + 32 * i, chunk), a_src[i] + koff, a_ok[i]);
#pragma unroll
        for (int i = 0; i < WG_BN / 32; i++) cp_async16(sb + tile_offset(row0 + 32 * i, chunk), b_first + i * b_step + koff, true);
    };
    // copies run WG_PREFETCH tiles ahead and one wgmma batch stays in flight: the stage a copy overwrites was read by
    // the batch two tiles back, which wgmma_wait<1> has retired before the barrier that precedes the copy
#pragma unroll
    for (int s = 0; s < WG_PREFETCH; s++) {
        if (s < k_tiles) load_stage(s, s);
        cp_async_commit();
    }
    for (int kt = 0; kt < k_tiles; kt++) {
        cp_async_wait<WG_PREFETCH - 1>();
        fence_proxy_async();  // cp.async wrote the stage through the generic proxy; wgmma reads it through the async one
        __syncthreads();
        const int pf = kt + WG_PREFETCH;
        if (pf < k_tiles) load_stage(pf % WG_STAGES, pf);
        cp_async_commit();
        const unsigned sa = sbase + (kt % WG_STAGES) * WG_STAGE_BYTES + wg * 64 * WG_BK * 2;
        const unsigned sb = sbase + (kt % WG_STAGES) * WG_STAGE_BYTES + WG_BM * WG_BK * 2;
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < WG_BK / 16; kk++) wgmma_m64n256k16(d, smem_desc(sa + kk * 32), smem_desc(sb + kk * 32));
        wgmma_commit();
        wgmma_wait<1>();
    }
    wgmma_wait<0>();
    cp_async_wait<0>();
    __syncthreads();  // the pipeline's shared memory is reused by the epilogue
}

// Accumulator d[4 j + i] of thread (warp w of its warpgroup, lane g*4 + t): row 16 w + g + 8 (i / 2), col 8 j + 2 t + i % 2.

extern "C" __global__ void __launch_bounds__(WG_THREADS, 1)
moe_gemm_gate_up_wgmma(const bf16* __restrict__ x, const int* __restrict__ sorted_pairs, const int* __restrict__ tile_expert,
                       const bf16* __restrict__ w_gate_up, bf16* __restrict__ act, int topk, int hidden, int inter) {
    const int expert = tile_expert[blockIdx.y];
    if (expert < 0) return;
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    unsigned char* smem = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
    const int tid = threadIdx.x, row0 = tid >> 3;
    const int m0 = blockIdx.y * WG_BM;
    const int n_act0 = blockIdx.x * (WG_BN / 2);
    const bf16* a_src[4];
    bool a_ok[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int pair = sorted_pairs[m0 + row0 + 32 * i];
        a_ok[i] = pair >= 0;
        a_src[i] = x + (pair >= 0 ? (long)(pair / topk) * hidden : 0);
    }
    const int col = n_act0 + (row0 >> 4) * 8 + (row0 & 7);
    const bf16* b_first = w_gate_up + ((long)expert * 2 * inter + ((row0 & 8) ? inter + col : col)) * hidden;
    float d[128];
#pragma unroll
    for (int i = 0; i < 128; i++) d[i] = 0.f;
    wg_mainloop(d, smem_u32(smem), a_src, a_ok, b_first, 16L * hidden, hidden);

    // epilogue: SiLU·mul in registers, the warp's [16 rows][128 act cols] staged, then 16-byte row pieces
    const int lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
    constexpr int PITCH = 128 * 2 + 16;
    unsigned char* stage = smem + warp * 16 * PITCH;
#pragma unroll
    for (int p = 0; p < 16; p++) {  // n8 blocks 2p (gate) and 2p + 1 (up): act cols 8p + 2t, +1
#pragma unroll
        for (int h = 0; h < 2; h++) {
            float o[2];
#pragma unroll
            for (int j = 0; j < 2; j++) {
                const float gate = round_bf16(d[(2 * p) * 4 + 2 * h + j]);
                const float up = round_bf16(d[(2 * p + 1) * 4 + 2 * h + j]);
                o[j] = round_bf16(silu_f32(gate)) * up;
            }
            *reinterpret_cast<__nv_bfloat162*>(stage + (g + 8 * h) * PITCH + (p * 8 + 2 * t) * 2) = __floats2bfloat162_rn(o[0], o[1]);
        }
    }
    __syncwarp();
    const int row_base = m0 + (warp >> 2) * 64 + (warp & 3) * 16;
#pragma unroll
    for (int c = lane; c < 16 * 16; c += 32) {
        const int r = c >> 4, q = c & 15;
        *reinterpret_cast<uint4*>(act + (long)(row_base + r) * inter + n_act0 + q * 8) =
            *reinterpret_cast<const uint4*>(stage + r * PITCH + q * 16);
    }
}

extern "C" __global__ void __launch_bounds__(WG_THREADS, 1)
moe_gemm_down_wgmma(const bf16* __restrict__ act, const int* __restrict__ sorted_pairs, const int* __restrict__ tile_expert,
                    const bf16* __restrict__ w_down, const bf16* __restrict__ topk_weights, bf16* __restrict__ contrib,
                    int hidden, int inter) {
    const int expert = tile_expert[blockIdx.y];
    if (expert < 0) return;
    extern __shared__ __align__(1024) unsigned char smem_raw[];
    unsigned char* smem = smem_raw + ((1024 - (smem_u32(smem_raw) & 1023)) & 1023);
    const int tid = threadIdx.x, row0 = tid >> 3;
    const int m0 = blockIdx.y * WG_BM;
    const int n0 = blockIdx.x * WG_BN;
    const bf16* a_src[4];
    bool a_ok[4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        a_ok[i] = true;
        a_src[i] = act + (long)(m0 + row0 + 32 * i) * inter;
    }
    const bf16* b_first = w_down + ((long)expert * hidden + n0 + row0) * inter;
    float d[128];
#pragma unroll
    for (int i = 0; i < 128; i++) d[i] = 0.f;
    wg_mainloop(d, smem_u32(smem), a_src, a_ok, b_first, 32L * inter, inter);

    const int lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
    constexpr int PITCH = 256 * 2 + 16;
    unsigned char* stage = smem + warp * 16 * PITCH;
    const int row_base = m0 + (warp >> 2) * 64 + (warp & 3) * 16;
#pragma unroll
    for (int h = 0; h < 2; h++) {
        const int r = g + 8 * h;
        const int pair = sorted_pairs[row_base + r];
        const float wk = pair >= 0 ? __bfloat162float(topk_weights[pair]) : 0.f;
#pragma unroll
        for (int j = 0; j < 32; j++) {
            const float o0 = round_bf16(d[j * 4 + 2 * h]) * wk;
            const float o1 = round_bf16(d[j * 4 + 2 * h + 1]) * wk;
            *reinterpret_cast<__nv_bfloat162*>(stage + r * PITCH + (j * 8 + 2 * t) * 2) = __floats2bfloat162_rn(o0, o1);
        }
    }
    __syncwarp();
#pragma unroll 4
    for (int c = lane; c < 16 * 32; c += 32) {
        const int r = c >> 5, q = c & 31;
        const int pair = sorted_pairs[row_base + r];
        if (pair >= 0)
            *reinterpret_cast<uint4*>(contrib + (long)pair * hidden + n0 + q * 8) = *reinterpret_cast<const uint4*>(stage + r * PITCH + q * 16);
    }
}
