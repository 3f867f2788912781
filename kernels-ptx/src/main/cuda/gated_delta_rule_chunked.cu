// Gated delta rule for prefill (QWEN3_NEXT_MODEL.md §3.4(g)), variable-length batches.
//
// Inputs, per token t: the conv output row qkv[t] = [q (Hk·dk) | k (Hk·dk) | v (Hv·dv)] (bf16, row stride qkv_ld),
// beta[t, Hv] and g[t, Hv] (fp32, g <= 0). Sequence b < nseq spans tokens cu[b] .. cu[b+1]-1 and keeps its state in
// state[slots[b]] (fp32 [Hv, dk, dv], element (h, i, j) = S_h[i][j]); slot -1: skipped, its outputs zeroed; an empty
// entry (cu[b] == cu[b+1]) does nothing. Rows cu[nseq] .. tokens-1 (past the last entry) get zero outputs: the output
// kernels' grids have one block row more than the entries for them. Nothing of a skipped or zeroed row is read.
// Output o[t, Hv·dv] (bf16). Value head h reads key head h / (Hv/Hk). q and k are l2-normalised in-kernel
// (eps 1e-6 on the sum of squares) and q is scaled by dk^-1/2.
//
// Chunked form (dk = 128), chunks of C = 64 tokens, γ = cumulative g inside a chunk:
//   gdr_chunk_prep_d128   per (chunk, key head), parallel: norms, γ, and per value head the two 64×64 matrices
//                         T = (I + A)⁻¹ with A = strict-lower(β_i e^{γi-γj} k̂_i·k̂_j)  and
//                         P = lower(e^{γi-γj} q̂_i·k̂_j)   (bf16, fp32 forward substitution for T).
//   gdr_chunk_state_d128  per (sequence, value head, 32 value columns), sequential over chunks, state on chip:
//                         X  = β ⊙ (V − e^γ ⊙ K̂·S)        (= T⁻¹·(U − W·S) of fla's WY form)
//                         V' = T·X
//                         O  = (e^γ ⊙ Q̂)·S + P·V'
//                         S ← e^{γ_last} S + (e^{γ_last-γ} ⊙ K̂)ᵀ·V'
//                         Everything is computed transposed (value columns as the MMA row dimension) so that the
//                         fp32 state Sᵀ lives in mma.sync accumulator registers and feeds the next products
//                         directly as A fragments. The l2norm, e^γ and β factors are applied in fp32 to the rows
//                         or columns of the products, so the MMA operands are the raw bf16 q/k/v rows.
//                         X (in Tβ·X) and V' (in P·V') are A operands split into bf16 hi + lo (x ≈ hi + lo to
//                         16 bits; a second MMA on the same B fragments), so neither is rounded to bf16 on its way
//                         into the product (issue 16, src/site/markdown/gdn-chunked-precision.md).
// Other sizes: gdr_recurrent (token by token, fp32 on CUDA cores, dk <= 128, any dv).
#include "common.cuh"
#include <type_traits>

#define CH 64          // chunk length
#define DK 128         // key dim of the chunked path
#define KQ_LD (DK + 8) // smem row stride (bf16) of k/q tiles: 272 B, ldmatrix rows land in distinct banks
#define TP_LD (CH + 8) // smem row stride (bf16) of T/P tiles: 144 B

// ---------------------------------------------------------------------------------------------------------------
// PTX helpers: ldmatrix, mma.sync m16n8k16 (bf16 in, fp32 accumulate), cp.async with zero fill.

__device__ __forceinline__ uint32_t smem_addr(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void ldsm_x4(uint32_t* r, const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_addr(p)) : "memory");
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t* r, const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smem_addr(p)) : "memory");
}
// d += a·b for one m16n8k16 tile
__device__ __forceinline__ void mma(float* d, const uint32_t* a, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
}
// a, b as bf16 hi + lo pairs: hi = bf16(x), lo = bf16(x − hi), so hi + lo carries 16 significant bits of x
__device__ __forceinline__ void pack_bf16_split(float a, float b, uint32_t& hi, uint32_t& lo) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    const float2 hf = __bfloat1622float2(h);
    const __nv_bfloat162 l = __floats2bfloat162_rn(a - hf.x, b - hf.y);
    hi = *reinterpret_cast<const uint32_t*>(&h);
    lo = *reinterpret_cast<const uint32_t*>(&l);
}
__device__ __forceinline__ float bf16_lo(uint32_t v) { return __uint_as_float(v << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t v) { return __uint_as_float(v & 0xffff0000u); }

// src_bytes = 0 fills the destination with zeros (padding rows past the end of a sequence)
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_async8(void* dst, const void* src, int src_bytes) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_async4(void* dst, const void* src, int src_bytes) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_addr(dst)), "l"(src), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }

// Chunk ids: chunk c of sequence b has id b + cu[b]/64 + c. Unique (each sequence adds at most one partial chunk),
// and every id is < nseq + ceil(tokens/64), so scratch sized for that needs no host-side prefix sum.
__device__ __forceinline__ int chunk_base(const int* cu, int b) { return b + cu[b] / CH; }

extern __shared__ __align__(16) unsigned char gdr_smem[];

// ---------------------------------------------------------------------------------------------------------------
// Chunk block: what the prep pass leaves for the state pass, per (chunk id, value head), contiguous so that one bulk
// copy moves it. T and P rows are padded to CB_LD so that ldmatrix rows land in distinct banks.
//   Tβ = T·diag(β)  bf16 [64][CB_LD]      P  bf16 [64][CB_LD]
//   fk = e^γ·rk,  fq = e^γ·rq·scale,  fl = e^{γ_last−γ}·rk   fp32 [64] each (0 on padding rows),  el = e^{γ_last}
#define CB_LD (CH + 8)
#define CB_P (CH * CB_LD * 2)
#define CB_FK (2 * CH * CB_LD * 2)
#define CB_FQ (CB_FK + CH * 4)
#define CB_FL (CB_FQ + CH * 4)
#define CB_EL (CB_FL + CH * 4)
#define CB_BYTES (CB_EL + 16)

// Rows F..L−1 of one column of a forward substitution with the strictly lower A (fp32, rows of CH + 4):
// x_i = init(i) − Σ_{F≤j<i} A_ij x_j, four partial sums per row.
template <int F, int L, typename Init>
__device__ __forceinline__ void solve_rows(const float (*a)[CH + 4], float (&x)[CH], Init init) {
#pragma unroll
    for (int i = F; i < L; i++) {
        float acc[4] = {init(i), 0.f, 0.f, 0.f};
#pragma unroll
        for (int jj = F; jj < i; jj += 4) {
            const float4 av = *reinterpret_cast<const float4*>(&a[i][jj]);
            acc[0] -= av.x * x[jj];
            if (jj + 1 < i) acc[1] -= av.y * x[jj + 1];
            if (jj + 2 < i) acc[2] -= av.z * x[jj + 2];
            if (jj + 3 < i) acc[3] -= av.w * x[jj + 3];
        }
        x[i] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Prep: one block (128 threads) per (chunk id, key head); handles the Hv/Hk value heads of that key head.

struct PrepSmem {
    union {
        struct { bf16 k[CH][KQ_LD]; bf16 q[CH][KQ_LD]; } in;  // raw rows (phase 1)
        float a[2][CH][CH + 4];                                // A of two value heads, fp32 (phase 2)
    } u;
    bf16 p[2][CH][CB_LD];  // P of two value heads, staged for 16-byte stores
    float gam[2][CH], beta[2][CH], rk[CH], rq[CH];
    int t0, n;
};
// ChunkedDeltaRuleKernel.PREP_SMEM_BYTES must cover this
static_assert(sizeof(PrepSmem) <= 56 * 1024, "prep shared memory");

// MODE != 0 leaves stages out, for timing experiments only: 1 = no inversion, 2 = no A, P or inversion.
template <int MODE>
__device__ __forceinline__ void prep_body(const bf16* __restrict__ qkv, int qkv_ld, const float* __restrict__ beta,
                                          const float* __restrict__ g, const int* __restrict__ cu,
                                          const int* __restrict__ slots, int nseq, int tokens, int Hk, int Hv, float scale,
                                          unsigned char* __restrict__ cb_out) {
    PrepSmem& sm = *reinterpret_cast<PrepSmem*>(gdr_smem);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int gq = lane >> 2, tq = lane & 3;  // MMA fragment coordinates
    const int id = blockIdx.x, kh = blockIdx.y, r = Hv / Hk;

    if (tid == 0) {
        int lo = 0, hi = nseq - 1;  // last sequence whose first chunk id is <= id
        while (lo < hi) {
            const int mid = (lo + hi + 1) >> 1;
            if (chunk_base(cu, mid) <= id) lo = mid; else hi = mid - 1;
        }
        const int bos = cu[lo], eos = min(cu[lo + 1], tokens);
        const int c = id - chunk_base(cu, lo);
        sm.t0 = bos + c * CH;
        sm.n = (c < 0 || slots[lo] < 0) ? 0 : min(CH, eos - sm.t0);
    }
    __syncthreads();
    const int t0 = sm.t0, n = sm.n;
    if (n <= 0) return;

    // raw q, k rows of key head kh; rows past the sequence end are zero
#pragma unroll 4
    for (int idx = tid; idx < CH * DK / 8; idx += 128) {
        const int row = idx >> 4, col = (idx & 15) * 8;
        const bool ok = row < n;
        const bf16* src = qkv + (long)(ok ? t0 + row : t0) * qkv_ld + kh * DK + col;
        cp_async16(&sm.u.in.q[row][col], src, ok ? 16 : 0);
        cp_async16(&sm.u.in.k[row][col], src + Hk * DK, ok ? 16 : 0);
    }
    cp_async_commit();
    // g and β of value head kh·r + warp (warps < r), prefetched while q/k land: tokens 2·lane, 2·lane + 1
    float gpre[2] = {0.f, 0.f}, bpre[2] = {0.f, 0.f};
    if (warp < min(r, 2)) {
#pragma unroll
        for (int e = 0; e < 2; e++) {
            const int i = 2 * lane + e;
            if (i < n) {
                gpre[e] = g[(long)(t0 + i) * Hv + kh * r + warp];
                bpre[e] = beta[(long)(t0 + i) * Hv + kh * r + warp];
            }
        }
    }
    cp_async_wait<0>();
    __syncthreads();

    {   // l2 norms: two threads per row
        const int row = tid >> 1, half = tid & 1;
        float sk = 0.f, sq = 0.f;
#pragma unroll
        for (int c8 = 0; c8 < DK / 16; c8++) {
            float f[8];
            unpack8(*reinterpret_cast<const bf16x8*>(&sm.u.in.k[row][half * (DK / 2) + c8 * 8]), f);
#pragma unroll
            for (int j = 0; j < 8; j++) sk += f[j] * f[j];
            unpack8(*reinterpret_cast<const bf16x8*>(&sm.u.in.q[row][half * (DK / 2) + c8 * 8]), f);
#pragma unroll
            for (int j = 0; j < 8; j++) sq += f[j] * f[j];
        }
        sk += __shfl_xor_sync(0xffffffffu, sk, 1);
        sq += __shfl_xor_sync(0xffffffffu, sq, 1);
        if (half == 0) {
            sm.rk[row] = row < n ? rsqrtf(sk + 1e-6f) : 0.f;
            sm.rq[row] = row < n ? rsqrtf(sq + 1e-6f) * scale : 0.f;
        }
    }

    // K·Kᵀ and Q·Kᵀ of the raw rows, lower block triangle: warp w owns rows 16w..16w+15
    float kk[8][4], qk[8][4];
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
        for (int e = 0; e < 4; e++) kk[i][e] = qk[i][e] = 0.f;
#pragma unroll
    for (int ks = 0; ks < DK / 16; ks++) {
        uint32_t ak[4], aq[4];
        const int arow = warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, acol = ks * 16 + (lane >> 4) * 8;
        ldsm_x4(ak, &sm.u.in.k[arow][acol]);
        ldsm_x4(aq, &sm.u.in.q[arow][acol]);
#pragma unroll
        for (int p = 0; p < 4; p++) {
            if (p <= warp) {
                uint32_t b[4];
                ldsm_x4(b, &sm.u.in.k[p * 16 + (lane & 7) + (lane >> 4) * 8][ks * 16 + ((lane >> 3) & 1) * 8]);
                mma(kk[2 * p], ak, b[0], b[1]);
                mma(kk[2 * p + 1], ak, b[2], b[3]);
                mma(qk[2 * p], aq, b[0], b[1]);
                mma(qk[2 * p + 1], aq, b[2], b[3]);
            }
        }
    }
    __syncthreads();  // the raw rows are dead: their space becomes A

    for (int hp = 0; hp < r; hp += 2) {
        const int nh = min(2, r - hp);
        if (warp < nh) {  // γ = inclusive cumsum of g (padding steps add 0), β (0 on padding)
            const int h = kh * r + hp + warp;
            const int i0 = 2 * lane;
            if (hp > 0) {
#pragma unroll
                for (int e = 0; e < 2; e++) {
                    gpre[e] = i0 + e < n ? g[(long)(t0 + i0 + e) * Hv + h] : 0.f;
                    bpre[e] = i0 + e < n ? beta[(long)(t0 + i0 + e) * Hv + h] : 0.f;
                }
            }
            const float g1 = gpre[1];
            float s = gpre[0] + g1;
#pragma unroll
            for (int o = 1; o < 32; o <<= 1) {
                const float y = __shfl_up_sync(0xffffffffu, s, o);
                if (lane >= o) s += y;
            }
            sm.gam[warp][i0] = s - g1;
            sm.gam[warp][i0 + 1] = s;
            sm.beta[warp][i0] = bpre[0];
            sm.beta[warp][i0 + 1] = bpre[1];
        }
        __syncthreads();
        {   // per-token factors of the state pass: thread (head j, token i)
            const int j = tid >> 6, i = tid & 63;
            if (j < nh) {
                unsigned char* blk = cb_out + ((long)id * Hv + kh * r + hp + j) * CB_BYTES;
                const float gi = sm.gam[j][i], gl = sm.gam[j][n - 1], eg = __expf(gi);
                const bool ok = i < n;
                reinterpret_cast<float*>(blk + CB_FK)[i] = ok ? eg * sm.rk[i] : 0.f;
                reinterpret_cast<float*>(blk + CB_FQ)[i] = ok ? eg * sm.rq[i] : 0.f;
                reinterpret_cast<float*>(blk + CB_FL)[i] = ok ? __expf(gl - gi) * sm.rk[i] : 0.f;
                if (i == 0) *reinterpret_cast<float4*>(blk + CB_EL) = make_float4(__expf(gl), 0.f, 0.f, 0.f);
            }
        }
        for (int j = 0; j < (MODE == 2 ? 0 : nh); j++) {
            const float bi0 = sm.beta[j][warp * 16 + gq], bi1 = sm.beta[j][warp * 16 + gq + 8];
            const float gi0 = sm.gam[j][warp * 16 + gq], gi1 = sm.gam[j][warp * 16 + gq + 8];
            const float ki0 = sm.rk[warp * 16 + gq], ki1 = sm.rk[warp * 16 + gq + 8];
            const float qi0 = sm.rq[warp * 16 + gq], qi1 = sm.rq[warp * 16 + gq + 8];
#pragma unroll
            for (int nt = 0; nt < 8; nt++) {
                const int c = nt * 8 + 2 * tq;  // columns c, c + 1
                const float2 gc = *reinterpret_cast<const float2*>(&sm.gam[j][c]);
                const float2 kc = *reinterpret_cast<const float2*>(&sm.rk[c]);
#pragma unroll
                for (int hf = 0; hf < 2; hf++) {  // rows i = warp·16 + gq (+8)
                    const int i = warp * 16 + gq + hf * 8;
                    const float gi = hf ? gi1 : gi0, qi = hf ? qi1 : qi0, bki = hf ? bi1 * ki1 : bi0 * ki0;
                    float pv[2] = {0.f, 0.f}, av[2] = {0.f, 0.f};
                    if (nt <= 2 * warp + 1) {
#pragma unroll
                        for (int e = 0; e < 2; e++) {
                            if (c + e <= i) {
                                const float decay = __expf(gi - (e ? gc.y : gc.x)), rkc = e ? kc.y : kc.x;
                                pv[e] = decay * qi * rkc * qk[nt][2 * hf + e];
                                if (c + e < i) av[e] = bki * decay * rkc * kk[nt][2 * hf + e];
                            }
                        }
                        *reinterpret_cast<float2*>(&sm.u.a[j][i][c]) = make_float2(av[0], av[1]);
                    }
                    *reinterpret_cast<__nv_bfloat162*>(&sm.p[j][i][c]) = __floats2bfloat162_rn(pv[0], pv[1]);
                }
            }
        }
        __syncthreads();
        for (int j = 0; j < nh; j++) {  // P out, 16-byte stores (padding columns included)
            unsigned char* dst = cb_out + ((long)id * Hv + kh * r + hp + j) * CB_BYTES + CB_P;
            for (int idx = tid; idx < CH * CB_LD / 8; idx += 128)
                reinterpret_cast<uint4*>(dst)[idx] = reinterpret_cast<const uint4*>(&sm.p[j][0][0])[idx];
        }
        // T = (I + A)⁻¹ by forward substitution, one column per lane: x_i = δ_ic − Σ_{j<i} A_ij x_j, split at row 32 so
        // that no lane runs the whole 64-row chain: (1) warp 2j solves rows 0..31 of columns 0..31, warp 2j+1 rows
        // 32..63 of columns 32..63 (rows above a column's index are zero); (2) both warps form the coupling
        // C = A[32.., ..32]·X[..32, ..32]; (3) warp 2j solves rows 32..63 of columns 0..31 starting from −C.
        __syncthreads();  // P is out: its staging space holds X and C
        const int j = warp >> 1, hw = warp & 1;
        const bool inv = MODE == 0 && j < nh;
        const float(*a)[CH + 4] = sm.u.a[j];
        float(*xm)[33] = reinterpret_cast<float(*)[33]>(&sm.p[j][0][0]);  // X [32][33], then C [32][33]
        float(*cm)[33] = xm + 32;
        bf16* dst = reinterpret_cast<bf16*>(cb_out + ((long)id * Hv + kh * r + hp + j) * CB_BYTES) + hw * 32 + lane;
        const float bc = inv ? sm.beta[j][hw * 32 + lane] : 0.f;
        float x[CH];
        if (inv) {
            if (hw == 0) {
                solve_rows<0, 32>(a, x, [&](int i) { return i == lane ? 1.f : 0.f; });
#pragma unroll
                for (int i = 0; i < 32; i++) xm[i][lane] = x[i];
            } else {  // columns 32..63: rows below 32 are zero, rows 32.. solved from the identity
                solve_rows<32, CH>(a, x, [&](int i) { return i == 32 + lane ? 1.f : 0.f; });
#pragma unroll
                for (int i = 0; i < CH; i++) dst[i * CB_LD] = __float2bfloat16_rn(i < 32 ? 0.f : x[i] * bc);
            }
        }
        __syncthreads();
        if (inv) {  // C[r][c] = Σ_{k<32} A[32 + r][k]·X[k][c]: lane = column c, warp hw = rows 16hw..16hw+15
            float xc[32];
#pragma unroll
            for (int k = 0; k < 32; k++) xc[k] = xm[k][lane];
#pragma unroll
            for (int rr = 0; rr < 16; rr++) {
                const int row = 16 * hw + rr;
                float acc[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
                for (int k = 0; k < 32; k += 4) {
                    const float4 av = *reinterpret_cast<const float4*>(&a[32 + row][k]);
                    acc[0] += av.x * xc[k];
                    acc[1] += av.y * xc[k + 1];
                    acc[2] += av.z * xc[k + 2];
                    acc[3] += av.w * xc[k + 3];
                }
                cm[row][lane] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
            }
        }
        __syncthreads();
        if (inv && hw == 0) {
            solve_rows<32, CH>(a, x, [&](int i) { return -cm[i - 32][lane]; });
#pragma unroll
            for (int i = 0; i < CH; i++) dst[i * CB_LD] = __float2bfloat16_rn((i < 32 ? xm[i][lane] : x[i]) * bc);
        }
        __syncthreads();
    }
}

extern "C" __global__ void __launch_bounds__(128, 4) gdr_chunk_prep_d128(
        const bf16* __restrict__ qkv, int qkv_ld, const float* __restrict__ beta, const float* __restrict__ g,
        const int* __restrict__ cu, const int* __restrict__ slots, int nseq, int tokens, int Hk, int Hv, float scale,
        unsigned char* __restrict__ cb_out) {
    prep_body<0>(qkv, qkv_ld, beta, g, cu, slots, nseq, tokens, Hk, Hv, scale, cb_out);
}

// ---------------------------------------------------------------------------------------------------------------
// State pass: one block per (sequence, value head, 32 value columns), 5 warps with fixed roles:
//   warp 0      loader: each chunk's q/k/v rows (cp.async, 16 B per lane) and its chunk block (one bulk copy) into a
//               2-stage ring (measured faster than 3 stages);
//   warps 1, 2  state: pair p = warp − 1 keeps Sᵀ for value columns 16p..16p+15 as 16 m16n8 fp32 accumulator tiles
//               and runs the dependent chain X = V − fk ⊙ K̂S,  V' = Tβ·X,  S ← el·S + (fl ⊙ V')ᵀK of every chunk;
//   warps 3, 4  output: O = fq ⊙ (Q·S) + P·V' from the Sᵀ and V' (hi + lo) fragments that the state warp of pair
//               warp − 3 hands over.
// Warps map to the SM's four schedulers by warp index mod 4, so each state warp has a scheduler of its own.
// Stage ring and handover are synchronised with mbarriers (full/empty per stage, full/empty per handover slot);
// arrivals are one elected lane per warp after __syncwarp.

#define NSTAGE 2
#define V_LD 40  // 32 value columns + 8

struct StateStage {
    bf16 k[CH][KQ_LD];
    bf16 q[CH][KQ_LD];
    bf16 v[CH][V_LD];
    unsigned char cb[CB_BYTES];
};
struct StateSmem {
    StateStage st[NSTAGE];
    uint4 hs[2][2][8][32];  // handover per warp pair and slot: bf16 Sᵀ A fragments [k-step][lane]
    uint4 hv[2][2][4][32];  // handover: V'ᵀ A fragments, bf16 hi
    uint4 hl[2][2][4][32];  // handover: V'ᵀ A fragments, bf16 lo (V' − hi)
    bf16 o[2][CH][24];      // output staging per output warp (64 tokens × 16 columns, padded)
    uint64_t full[NSTAGE], empty[NSTAGE], hfull[2][2], hempty[2][2];
};
// ChunkedDeltaRuleKernel.STATE_SMEM_BYTES must cover this
static_assert(sizeof(StateSmem) <= 158 * 1024, "state pass shared memory");
static_assert(sizeof(StateStage) % 16 == 0 && CB_BYTES % 16 == 0, "bulk copies move 16-byte multiples");

__device__ __forceinline__ void mbar_init(uint64_t* b, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(b)), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint64_t* b) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(b)) : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(uint64_t* b, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(b)), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint64_t* b, uint32_t parity) {
    uint32_t done;
    do {
        asm volatile("{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
                     : "=r"(done) : "r"(smem_addr(b)), "r"(parity) : "memory");
    } while (!done);
}
// arrives on the barrier once all of this thread's earlier cp.async copies have landed
__device__ __forceinline__ void cp_async_arrive(uint64_t* b) {
    asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(smem_addr(b)) : "memory");
}
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n"
                 ::"r"(smem_addr(dst)), "l"(src), "r"(bytes), "r"(smem_addr(bar)) : "memory");
}
__device__ __forceinline__ void stsm_x4_t(void* p, const uint32_t* r) {
    asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1,%2,%3,%4};\n"
                 ::"r"(smem_addr(p)), "r"(r[0]), "r"(r[1]), "r"(r[2]), "r"(r[3]) : "memory");
}

extern "C" __global__ void __launch_bounds__(160, 1) gdr_chunk_state_d128(
        const bf16* __restrict__ qkv, int qkv_ld, const int* __restrict__ cu, const int* __restrict__ slots, int tokens,
        int nseq, int Hk, int Hv, int dv, const unsigned char* __restrict__ cb, float* __restrict__ state, bf16* __restrict__ out) {
    StateSmem& sm = *reinterpret_cast<StateSmem*>(gdr_smem);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int gq = lane >> 2, tq = lane & 3;
    const int b = blockIdx.x, h = blockIdx.y, kh = h / (Hv / Hk);
    const int v0 = blockIdx.z * 32;  // first value column of the block
    const bool tail = b == nseq;     // the rows past the last entry
    const int bos = cu[b], eos = tail ? tokens : min(cu[b + 1], tokens), len = eos - bos;
    const int slot = tail ? -1 : slots[b];
    const long out_ld = (long)Hv * dv;
    if (len <= 0) return;
    if (slot < 0) {  // padding sequence or no sequence: state untouched, outputs zero
        for (int idx = tid; idx < len * 4; idx += 160)
            *reinterpret_cast<uint4*>(out + (bos + idx / 4) * out_ld + h * dv + v0 + (idx % 4) * 8) = make_uint4(0, 0, 0, 0);
        return;
    }
    const int nchunks = (len + CH - 1) / CH, base = chunk_base(cu, b);
    if (tid == 0) {
        for (int s = 0; s < NSTAGE; s++) {
            mbar_init(&sm.full[s], 33);  // 32 loader lanes (cp.async) + the chunk block's bulk copy
            mbar_init(&sm.empty[s], 4);  // the four compute warps
        }
        for (int p = 0; p < 2; p++)
            for (int x = 0; x < 2; x++) {
                mbar_init(&sm.hfull[p][x], 1);
                mbar_init(&sm.hempty[p][x], 1);
            }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();

    if (warp == 0) {  // loader: lane copies 16-byte column (lane & 15) of rows (lane >> 4) + 2i
        const int col = (lane & 15) * 8, r0 = lane >> 4;
        for (int c = 0; c < nchunks; c++) {
            const int s = c % NSTAGE, t0 = bos + c * CH, n = min(CH, eos - t0);
            StateStage& st = sm.st[s];
            if (c >= NSTAGE) mbar_wait(&sm.empty[s], (c / NSTAGE - 1) & 1);
            const bf16* src = qkv + (long)(t0 + r0) * qkv_ld + kh * DK + col;
#pragma unroll 8
            for (int i = 0; i < CH / 2; i++) {
                const int row = r0 + 2 * i;
                const bool ok = row < n;
                const bf16* q = ok ? src + (long)(2 * i) * qkv_ld : qkv;
                cp_async16(&st.q[row][col], q, ok ? 16 : 0);
                cp_async16(&st.k[row][col], ok ? q + Hk * DK : qkv, ok ? 16 : 0);
            }
            const int vr = lane >> 2, vc = (lane & 3) * 8;  // V: 4 × 16 B per row, 8 rows per pass
            const bf16* vsrc = qkv + (long)(t0 + vr) * qkv_ld + 2 * Hk * DK + h * dv + v0 + vc;
#pragma unroll
            for (int i = 0; i < CH / 8; i++) {
                const bool ok = vr + 8 * i < n;
                cp_async16(&st.v[vr + 8 * i][vc], ok ? vsrc + (long)(8 * i) * qkv_ld : qkv, ok ? 16 : 0);
            }
            cp_async_arrive(&sm.full[s]);
            if (lane == 0) {
                mbar_expect_tx(&sm.full[s], CB_BYTES);
                bulk_copy(st.cb, cb + ((long)(base + c) * Hv + h) * CB_BYTES, CB_BYTES, &sm.full[s]);
            }
        }
        cp_async_wait<0>();
        return;
    }

    if (warp < 3) {  // state warp: Sᵀ rows = value columns vw + gq (+8), tile nt covers key dims 8nt..8nt+7
        const int p = warp - 1;
        float* S = state + ((long)slot * Hv + h) * DK * dv;
        const int vw = v0 + p * 16;
        float s[DK / 8][4];
#pragma unroll
        for (int nt = 0; nt < DK / 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) s[nt][e] = S[(long)(nt * 8 + 2 * tq + (e & 1)) * dv + vw + gq + (e >> 1) * 8];

        for (int c = 0; c < nchunks; c++) {
            const int si = c % NSTAGE, hs = c & 1;
            StateStage& st = sm.st[si];
            const float* fk = reinterpret_cast<const float*>(st.cb + CB_FK);
            const float* fl = reinterpret_cast<const float*>(st.cb + CB_FL);
            const bf16(*tb)[CB_LD] = reinterpret_cast<const bf16(*)[CB_LD]>(st.cb);
            mbar_wait(&sm.full[si], (c / NSTAGE) & 1);
            if (c >= 2) mbar_wait(&sm.hempty[p][hs], ((c >> 1) - 1) & 1);

            // Sᵀ·Kᵀ [16 values × 64 tokens]; the bf16 Sᵀ fragments also go to the output warp
            float xa[8][4];
#pragma unroll
            for (int i = 0; i < 8; i++)
#pragma unroll
                for (int e = 0; e < 4; e++) xa[i][e] = 0.f;
#pragma unroll
            for (int ks = 0; ks < DK / 16; ks++) {
                const uint32_t a[4] = {pack_bf16(s[2 * ks][0], s[2 * ks][1]), pack_bf16(s[2 * ks][2], s[2 * ks][3]),
                                       pack_bf16(s[2 * ks + 1][0], s[2 * ks + 1][1]),
                                       pack_bf16(s[2 * ks + 1][2], s[2 * ks + 1][3])};
                sm.hs[p][hs][ks][lane] = make_uint4(a[0], a[1], a[2], a[3]);
#pragma unroll
                for (int pp = 0; pp < 4; pp++) {
                    uint32_t bk[4];
                    ldsm_x4(bk, &st.k[pp * 16 + (lane & 7) + (lane >> 4) * 8][ks * 16 + ((lane >> 3) & 1) * 8]);
                    mma(xa[2 * pp], a, bk[0], bk[1]);
                    mma(xa[2 * pp + 1], a, bk[2], bk[3]);
                }
            }
            // X = V − e^γ k̂·S (transposed; β is folded into Tβ)
#pragma unroll
            for (int pp = 0; pp < 4; pp++) {
                uint32_t vt[4];
                ldsm_x4_t(vt, &st.v[pp * 16 + (lane & 7) + (lane >> 4) * 8][p * 16 + ((lane >> 3) & 1) * 8]);
#pragma unroll
                for (int hl = 0; hl < 2; hl++) {
                    const int nt = 2 * pp + hl;
                    const float2 f = *reinterpret_cast<const float2*>(&fk[nt * 8 + 2 * tq]);
                    const uint32_t lo = vt[2 * hl], hi = vt[2 * hl + 1];  // value rows gq and gq + 8
                    xa[nt][0] = bf16_lo(lo) - f.x * xa[nt][0];
                    xa[nt][1] = bf16_hi(lo) - f.y * xa[nt][1];
                    xa[nt][2] = bf16_lo(hi) - f.x * xa[nt][2];
                    xa[nt][3] = bf16_hi(hi) - f.y * xa[nt][3];
                }
            }
            // V'ᵀ = Xᵀ·Tβᵀ (lower triangular: blocks at or below the diagonal). X goes in as bf16 hi + lo: the lo
            // products accumulate in their own tiles (a chain beside the hi one, not after it) and join at the end.
            float vp[8][4], vq[8][4];
#pragma unroll
            for (int i = 0; i < 8; i++)
#pragma unroll
                for (int e = 0; e < 4; e++) vp[i][e] = vq[i][e] = 0.f;
#pragma unroll
            for (int ks = 0; ks < 4; ks++) {
                uint32_t a[4], al[4];
                pack_bf16_split(xa[2 * ks][0], xa[2 * ks][1], a[0], al[0]);
                pack_bf16_split(xa[2 * ks][2], xa[2 * ks][3], a[1], al[1]);
                pack_bf16_split(xa[2 * ks + 1][0], xa[2 * ks + 1][1], a[2], al[2]);
                pack_bf16_split(xa[2 * ks + 1][2], xa[2 * ks + 1][3], a[3], al[3]);
#pragma unroll
                for (int pp = ks; pp < 4; pp++) {
                    uint32_t bt[4];
                    ldsm_x4(bt, &tb[pp * 16 + (lane & 7) + (lane >> 4) * 8][ks * 16 + ((lane >> 3) & 1) * 8]);
                    mma(vp[2 * pp], a, bt[0], bt[1]);
                    mma(vp[2 * pp + 1], a, bt[2], bt[3]);
                    mma(vq[2 * pp], al, bt[0], bt[1]);
                    mma(vq[2 * pp + 1], al, bt[2], bt[3]);
                }
            }
#pragma unroll
            for (int i = 0; i < 8; i++)
#pragma unroll
                for (int e = 0; e < 4; e++) vp[i][e] += vq[i][e];
            // V' to the output warp as hi + lo fragments
#pragma unroll
            for (int ks = 0; ks < 4; ks++) {
                uint4 h, l;
                pack_bf16_split(vp[2 * ks][0], vp[2 * ks][1], h.x, l.x);
                pack_bf16_split(vp[2 * ks][2], vp[2 * ks][3], h.y, l.y);
                pack_bf16_split(vp[2 * ks + 1][0], vp[2 * ks + 1][1], h.z, l.z);
                pack_bf16_split(vp[2 * ks + 1][2], vp[2 * ks + 1][3], h.w, l.w);
                sm.hv[p][hs][ks][lane] = h;
                sm.hl[p][hs][ks][lane] = l;
            }
            __syncwarp();
            if (lane == 0) mbar_arrive(&sm.hfull[p][hs]);
            // Sᵀ ← el·Sᵀ + (V' ⊙ fl)ᵀ·K
            const float el = *reinterpret_cast<const float*>(st.cb + CB_EL);
#pragma unroll
            for (int nt = 0; nt < DK / 8; nt++)
#pragma unroll
                for (int e = 0; e < 4; e++) s[nt][e] *= el;
#pragma unroll
            for (int ks = 0; ks < 4; ks++) {
                const float2 f0 = *reinterpret_cast<const float2*>(&fl[ks * 16 + 2 * tq]);
                const float2 f1 = *reinterpret_cast<const float2*>(&fl[ks * 16 + 8 + 2 * tq]);
                const uint32_t al[4] = {pack_bf16(vp[2 * ks][0] * f0.x, vp[2 * ks][1] * f0.y),
                                        pack_bf16(vp[2 * ks][2] * f0.x, vp[2 * ks][3] * f0.y),
                                        pack_bf16(vp[2 * ks + 1][0] * f1.x, vp[2 * ks + 1][1] * f1.y),
                                        pack_bf16(vp[2 * ks + 1][2] * f1.x, vp[2 * ks + 1][3] * f1.y)};
#pragma unroll
                for (int np = 0; np < DK / 16; np++) {
                    uint32_t bk[4];
                    ldsm_x4_t(bk, &st.k[ks * 16 + (lane & 7) + ((lane >> 3) & 1) * 8][np * 16 + (lane >> 4) * 8]);
                    mma(s[2 * np], al, bk[0], bk[1]);
                    mma(s[2 * np + 1], al, bk[2], bk[3]);
                }
            }
            __syncwarp();
            if (lane == 0) mbar_arrive(&sm.empty[si]);
        }
#pragma unroll
        for (int nt = 0; nt < DK / 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) S[(long)(nt * 8 + 2 * tq + (e & 1)) * dv + vw + gq + (e >> 1) * 8] = s[nt][e];
        return;
    }

    // output warp for the value columns of pair p
    const int p = warp - 3, vw = v0 + p * 16;
    for (int c = 0; c < nchunks; c++) {
        const int si = c % NSTAGE, hs = c & 1, t0 = bos + c * CH, n = min(CH, eos - t0);
        StateStage& st = sm.st[si];
        const float* fq = reinterpret_cast<const float*>(st.cb + CB_FQ);
        const bf16(*pm)[CB_LD] = reinterpret_cast<const bf16(*)[CB_LD]>(st.cb + CB_P);
        mbar_wait(&sm.full[si], (c / NSTAGE) & 1);
        mbar_wait(&sm.hfull[p][hs], (c >> 1) & 1);
        float oa[8][4];
#pragma unroll
        for (int i = 0; i < 8; i++)
#pragma unroll
            for (int e = 0; e < 4; e++) oa[i][e] = 0.f;
#pragma unroll
        for (int ks = 0; ks < DK / 16; ks++) {
            const uint4 av = sm.hs[p][hs][ks][lane];
            const uint32_t a[4] = {av.x, av.y, av.z, av.w};
#pragma unroll
            for (int pp = 0; pp < 4; pp++) {
                uint32_t bq[4];
                ldsm_x4(bq, &st.q[pp * 16 + (lane & 7) + (lane >> 4) * 8][ks * 16 + ((lane >> 3) & 1) * 8]);
                mma(oa[2 * pp], a, bq[0], bq[1]);
                mma(oa[2 * pp + 1], a, bq[2], bq[3]);
            }
        }
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
            const float2 f = *reinterpret_cast<const float2*>(&fq[nt * 8 + 2 * tq]);
            oa[nt][0] *= f.x;
            oa[nt][1] *= f.y;
            oa[nt][2] *= f.x;
            oa[nt][3] *= f.y;
        }
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {  // P·V', V' as hi + lo on the same P fragments
            const uint4 av = sm.hv[p][hs][ks][lane], lv = sm.hl[p][hs][ks][lane];
            const uint32_t a[4] = {av.x, av.y, av.z, av.w}, al[4] = {lv.x, lv.y, lv.z, lv.w};
#pragma unroll
            for (int pp = ks; pp < 4; pp++) {
                uint32_t bp[4];
                ldsm_x4(bp, &pm[pp * 16 + (lane & 7) + (lane >> 4) * 8][ks * 16 + ((lane >> 3) & 1) * 8]);
                mma(oa[2 * pp], al, bp[0], bp[1]);
                mma(oa[2 * pp + 1], al, bp[2], bp[3]);
                mma(oa[2 * pp], a, bp[0], bp[1]);
                mma(oa[2 * pp + 1], a, bp[2], bp[3]);
            }
        }
        __syncwarp();
        if (lane == 0) {
            mbar_arrive(&sm.hempty[p][hs]);
            mbar_arrive(&sm.empty[si]);
        }
        // Oᵀ fragments → [token][16 columns] staging (stmatrix.trans) → 16-byte rows
#pragma unroll
        for (int pp = 0; pp < 4; pp++) {
            const uint32_t r4[4] = {pack_bf16(oa[2 * pp][0], oa[2 * pp][1]), pack_bf16(oa[2 * pp][2], oa[2 * pp][3]),
                                    pack_bf16(oa[2 * pp + 1][0], oa[2 * pp + 1][1]),
                                    pack_bf16(oa[2 * pp + 1][2], oa[2 * pp + 1][3])};
            stsm_x4_t(&sm.o[p][pp * 16 + (lane >> 4) * 8 + (lane & 7)][((lane >> 3) & 1) * 8], r4);
        }
        __syncwarp();
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const int idx = lane + 32 * k, row = idx >> 1, half = idx & 1;
            if (row < n)
                *reinterpret_cast<uint4*>(out + (t0 + row) * out_ld + h * dv + vw + half * 8) =
                        *reinterpret_cast<const uint4*>(&sm.o[p][row][half * 8]);
        }
        __syncwarp();
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Recurrent form for any dk <= 128 and any dv: block (sequence, value head, 32 value columns), 8 warps × 4 columns;
// lane holds S[i][j] for i = lane + 32m. fp32 throughout, token by token.

extern "C" __global__ void __launch_bounds__(256) gdr_recurrent(
        const bf16* __restrict__ qkv, int qkv_ld, const float* __restrict__ beta, const float* __restrict__ g,
        const int* __restrict__ cu, const int* __restrict__ slots, int nseq, int tokens, int Hk, int Hv, int dk, int dv,
        float scale, float* __restrict__ state, bf16* __restrict__ out) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int b = blockIdx.x, h = blockIdx.y, kh = h / (Hv / Hk);
    const int j0 = blockIdx.z * 32 + warp * 4;
    const bool tail = b == nseq;  // the rows past the last entry: zero outputs
    const int bos = cu[b], eos = tail ? tokens : min(cu[b + 1], tokens), slot = tail ? -1 : slots[b];
    const long out_ld = (long)Hv * dv;
    if (j0 >= dv || eos <= bos) return;  // an empty entry: its slot is not even read
    if (slot < 0) {
        for (int t = bos + lane; t < eos; t += 32)
            for (int c = 0; c < 4 && j0 + c < dv; c++) out[t * out_ld + h * dv + j0 + c] = __float2bfloat16_rn(0.f);
        return;
    }
    float* S = state + ((long)slot * Hv + h) * dk * dv;
    float s[4][4];
#pragma unroll
    for (int c = 0; c < 4; c++)
#pragma unroll
        for (int m = 0; m < 4; m++) {
            const int i = lane + 32 * m;
            s[c][m] = (i < dk && j0 + c < dv) ? S[(long)i * dv + j0 + c] : 0.f;
        }
    for (int t = bos; t < eos; t++) {
        const bf16* row = qkv + (long)t * qkv_ld;
        float kv[4], qv[4], sk = 0.f, sq = 0.f;
#pragma unroll
        for (int m = 0; m < 4; m++) {
            const int i = lane + 32 * m;
            kv[m] = i < dk ? __bfloat162float(row[Hk * dk + kh * dk + i]) : 0.f;
            qv[m] = i < dk ? __bfloat162float(row[kh * dk + i]) : 0.f;
            sk += kv[m] * kv[m];
            sq += qv[m] * qv[m];
        }
        const float rk = rsqrtf(warp_sum(sk) + 1e-6f), rq = rsqrtf(warp_sum(sq) + 1e-6f) * scale;
#pragma unroll
        for (int m = 0; m < 4; m++) {
            kv[m] *= rk;
            qv[m] *= rq;
        }
        const float decay = __expf(g[(long)t * Hv + h]), bt = beta[(long)t * Hv + h];
#pragma unroll
        for (int c = 0; c < 4; c++) {
            if (j0 + c >= dv) break;
            float m_ = 0.f;
#pragma unroll
            for (int m = 0; m < 4; m++) {
                s[c][m] *= decay;
                m_ += s[c][m] * kv[m];
            }
            const float d = (__bfloat162float(row[2 * Hk * dk + h * dv + j0 + c]) - warp_sum(m_)) * bt;
            float o = 0.f;
#pragma unroll
            for (int m = 0; m < 4; m++) {
                s[c][m] += kv[m] * d;
                o += s[c][m] * qv[m];
            }
            o = warp_sum(o);
            if (lane == 0) out[t * out_ld + h * dv + j0 + c] = __float2bfloat16_rn(o);
        }
    }
#pragma unroll
    for (int c = 0; c < 4; c++)
#pragma unroll
        for (int m = 0; m < 4; m++) {
            const int i = lane + 32 * m;
            if (i < dk && j0 + c < dv) S[(long)i * dv + j0 + c] = s[c][m];
        }
}
