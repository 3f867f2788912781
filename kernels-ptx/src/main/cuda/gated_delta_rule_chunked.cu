// Gated delta rule for prefill (QWEN3_NEXT_MODEL.md §3.4(g)), variable-length batches.
//
// Inputs, per token t: the conv output row qkv[t] = [q (Hk·dk) | k (Hk·dk) | v (Hv·dv)] (bf16, row stride qkv_ld),
// beta[t, Hv] and g[t, Hv] (fp32, g <= 0). Sequence b spans tokens cu[b] .. cu[b+1]-1 and keeps its state in
// state[slots[b]] (fp32 [Hv, dk, dv], element (h, i, j) = S_h[i][j]); slot -1: skipped, its outputs zeroed.
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
// Other sizes: gdr_recurrent (token by token, fp32 on CUDA cores, dk <= 128, any dv).
#include "common.cuh"

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
// Prep: one block (128 threads) per (chunk id, key head); handles the Hv/Hk value heads of that key head.

struct PrepSmem {
    union {
        struct { bf16 k[CH][KQ_LD]; bf16 q[CH][KQ_LD]; } in;  // raw rows (phase 1)
        float a[2][CH][CH + 4];                                // A of two value heads, fp32 (phase 2)
    } u;
    bf16 p[2][CH][TP_LD];  // P of two value heads, staged for 16-byte stores
    float gam[2][CH], beta[2][CH], rk[CH], rq[CH];
    int b, t0, n;
};
// ChunkedDeltaRuleKernel.PREP_SMEM_BYTES must cover this
static_assert(sizeof(PrepSmem) <= 56 * 1024, "prep shared memory");

extern "C" __global__ void __launch_bounds__(128) gdr_chunk_prep_d128(
        const bf16* __restrict__ qkv, int qkv_ld, const float* __restrict__ beta, const float* __restrict__ g,
        const int* __restrict__ cu, const int* __restrict__ slots, int nseq, int tokens, int Hk, int Hv, float scale,
        float* __restrict__ gam_out, float* __restrict__ rn_out, bf16* __restrict__ tp_out) {
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
        sm.b = lo;
        sm.t0 = bos + c * CH;
        sm.n = (c < 0 || slots[lo] < 0) ? 0 : min(CH, eos - sm.t0);
    }
    __syncthreads();
    const int t0 = sm.t0, n = sm.n;
    if (n <= 0) return;

    // raw q, k rows of key head kh; rows past the sequence end are zero
    for (int idx = tid; idx < CH * DK / 8; idx += 128) {
        const int row = idx >> 4, col = (idx & 15) * 8;
        uint4 kv = make_uint4(0, 0, 0, 0), qv = kv;
        if (row < n) {
            const bf16* src = qkv + (long)(t0 + row) * qkv_ld + kh * DK + col;
            qv = *reinterpret_cast<const uint4*>(src);
            kv = *reinterpret_cast<const uint4*>(src + Hk * DK);
        }
        *reinterpret_cast<uint4*>(&sm.u.in.k[row][col]) = kv;
        *reinterpret_cast<uint4*>(&sm.u.in.q[row][col]) = qv;
    }
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
        const float rk = row < n ? rsqrtf(sk + 1e-6f) : 0.f;
        const float rq = row < n ? rsqrtf(sq + 1e-6f) * scale : 0.f;
        if (half == 0) {
            sm.rk[row] = rk;
            sm.rq[row] = rq;
            if (row < n) *reinterpret_cast<float2*>(rn_out + ((long)(t0 + row) * Hk + kh) * 2) = make_float2(rq, rk);
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
            const float g0 = i0 < n ? g[(long)(t0 + i0) * Hv + h] : 0.f;
            const float g1 = i0 + 1 < n ? g[(long)(t0 + i0 + 1) * Hv + h] : 0.f;
            float s = g0 + g1;
#pragma unroll
            for (int o = 1; o < 32; o <<= 1) {
                const float y = __shfl_up_sync(0xffffffffu, s, o);
                if (lane >= o) s += y;
            }
            const float c0 = s - g1;
            sm.gam[warp][i0] = c0;
            sm.gam[warp][i0 + 1] = s;
            sm.beta[warp][i0] = i0 < n ? beta[(long)(t0 + i0) * Hv + h] : 0.f;
            sm.beta[warp][i0 + 1] = i0 + 1 < n ? beta[(long)(t0 + i0 + 1) * Hv + h] : 0.f;
            if (i0 < n) gam_out[(long)(t0 + i0) * Hv + h] = c0;
            if (i0 + 1 < n) gam_out[(long)(t0 + i0 + 1) * Hv + h] = s;
        }
        __syncthreads();
        for (int j = 0; j < nh; j++) {
#pragma unroll
            for (int nt = 0; nt < 8; nt++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int i = warp * 16 + gq + (e >> 1) * 8, c = nt * 8 + 2 * tq + (e & 1);
                    float pv = 0.f;
                    if (nt <= 2 * warp + 1 && c <= i) {
                        const float decay = __expf(sm.gam[j][i] - sm.gam[j][c]);
                        pv = decay * sm.rq[i] * sm.rk[c] * qk[nt][e];
                        if (c < i) sm.u.a[j][i][c] = sm.beta[j][i] * decay * sm.rk[i] * sm.rk[c] * kk[nt][e];
                    }
                    sm.p[j][i][c] = __float2bfloat16_rn(pv);
                }
            }
        }
        __syncthreads();
        for (int j = 0; j < nh; j++) {  // P out, 16-byte stores
            bf16* dst = tp_out + (((long)id * Hv + kh * r + hp + j) * 2 + 1) * CH * CH;
            for (int idx = tid; idx < CH * CH / 8; idx += 128) {
                const int row = idx >> 3, col = (idx & 7) * 8;
                *reinterpret_cast<uint4*>(dst + row * CH + col) = *reinterpret_cast<const uint4*>(&sm.p[j][row][col]);
            }
        }
        if ((warp >> 1) < nh) {
            // T = (I + A)⁻¹ by forward substitution, one column per lane: x_i = δ_ic − Σ_{j<i} A_ij x_j
            const int j = warp >> 1, c = (warp & 1) * 32 + lane;
            const float(*a)[CH + 4] = sm.u.a[j];
            float x[CH];
#pragma unroll
            for (int i = 0; i < CH; i++) {
                float acc[4] = {i == c ? 1.f : 0.f, 0.f, 0.f, 0.f};
#pragma unroll
                for (int jj = 0; jj < i; jj += 4) {
                    const float4 av = *reinterpret_cast<const float4*>(&a[i][jj]);
                    acc[0] -= av.x * x[jj];
                    if (jj + 1 < i) acc[1] -= av.y * x[jj + 1];
                    if (jj + 2 < i) acc[2] -= av.z * x[jj + 2];
                    if (jj + 3 < i) acc[3] -= av.w * x[jj + 3];
                }
                x[i] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
            }
            bf16* dst = tp_out + (((long)id * Hv + kh * r + hp + j) * 2) * CH * CH + c;
#pragma unroll
            for (int i = 0; i < CH; i++) dst[i * CH] = __float2bfloat16_rn(x[i]);
        }
        __syncthreads();
    }
}

// ---------------------------------------------------------------------------------------------------------------
// State pass: one block per (sequence, value head, 16·NW value columns); warp w owns 16 value columns and keeps
// Sᵀ[16 × 128] (fp32) in registers as 16 m16n8 accumulator tiles. Chunks are double-buffered with cp.async.

template <int NW>
struct StateSmem {
    static constexpr int BV = 16 * NW, V_LD = BV + 8;
    bf16 k[2][CH][KQ_LD];
    bf16 q[2][CH][KQ_LD];
    bf16 t[2][CH][TP_LD];
    bf16 p[2][CH][TP_LD];
    bf16 v[2][CH][V_LD];
    float gam[2][CH], beta[2][CH];
    float2 rn[2][CH];                       // (rq·scale, rk)
    float fk[CH], fq[CH], fl[CH], fb[CH];   // per-token factors of the current chunk
    bf16 o[CH][V_LD];                       // output staging for 16-byte stores
};
// ChunkedDeltaRuleKernel.STATE_SMEM_BYTES must cover this
static_assert(sizeof(StateSmem<2>) <= 125 * 1024, "state pass shared memory");

template <int NW>
__device__ __forceinline__ void state_pass(const bf16* __restrict__ qkv, int qkv_ld, const float* __restrict__ beta,
                                           const int* __restrict__ cu, const int* __restrict__ slots, int tokens, int Hk,
                                           int Hv, int dv, const float* __restrict__ gam, const float* __restrict__ rn,
                                           const bf16* __restrict__ tp, float* __restrict__ state, bf16* __restrict__ out) {
    using Smem = StateSmem<NW>;
    constexpr int BV = Smem::BV, NT = 32 * NW;
    Smem& sm = *reinterpret_cast<Smem*>(gdr_smem);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int gq = lane >> 2, tq = lane & 3;
    const int b = blockIdx.x, h = blockIdx.y, kh = h / (Hv / Hk);
    const int v0 = blockIdx.z * BV;  // first value column of the block
    const int bos = cu[b], eos = min(cu[b + 1], tokens), len = eos - bos;
    const int slot = slots[b];
    const int out_ld = Hv * dv;
    if (len <= 0) return;
    if (slot < 0) {  // padding sequence: state untouched, outputs zero
        for (int idx = tid; idx < len * (BV / 8); idx += NT) {
            const int row = idx / (BV / 8), col = (idx % (BV / 8)) * 8;
            *reinterpret_cast<uint4*>(out + (long)(bos + row) * out_ld + h * dv + v0 + col) = make_uint4(0, 0, 0, 0);
        }
        return;
    }
    const int nchunks = (len + CH - 1) / CH, base = chunk_base(cu, b);
    float* S = state + ((long)slot * Hv + h) * DK * dv;

    auto load_chunk = [&](int c, int st) {
        const int t0 = bos + c * CH, n = min(CH, eos - t0);
        for (int idx = tid; idx < CH * DK / 8; idx += NT) {
            const int row = idx >> 4, col = (idx & 15) * 8;
            const bool ok = row < n;
            const bf16* src = qkv + (long)(ok ? t0 + row : 0) * qkv_ld + kh * DK + col;
            cp_async16(&sm.q[st][row][col], src, ok ? 16 : 0);
            cp_async16(&sm.k[st][row][col], src + Hk * DK, ok ? 16 : 0);
        }
        const bf16* tsrc = tp + (((long)(base + c) * Hv + h) * 2) * CH * CH;
        for (int idx = tid; idx < CH * CH / 8; idx += NT) {
            const int row = idx >> 3, col = (idx & 7) * 8;
            cp_async16(&sm.t[st][row][col], tsrc + row * CH + col, 16);
            cp_async16(&sm.p[st][row][col], tsrc + CH * CH + row * CH + col, 16);
        }
        for (int idx = tid; idx < CH * BV / 8; idx += NT) {
            const int row = idx / (BV / 8), col = (idx % (BV / 8)) * 8;
            const bool ok = row < n;
            cp_async16(&sm.v[st][row][col], qkv + (long)(ok ? t0 + row : 0) * qkv_ld + 2 * Hk * DK + h * dv + v0 + col,
                       ok ? 16 : 0);
        }
        for (int i = tid; i < CH; i += NT) {
            const bool ok = i < n;
            const long t = ok ? t0 + i : 0;
            cp_async4(&sm.gam[st][i], gam + t * Hv + h, ok ? 4 : 0);
            cp_async4(&sm.beta[st][i], beta + t * Hv + h, ok ? 4 : 0);
            cp_async8(&sm.rn[st][i], rn + (t * Hk + kh) * 2, ok ? 8 : 0);
        }
        cp_async_commit();
    };

    load_chunk(0, 0);
    if (nchunks > 1) load_chunk(1, 1);

    // Sᵀ tiles: s[nt] covers key dims 8nt..8nt+7; rows = value columns vw + gq (+8)
    const int vw = v0 + warp * 16;
    float s[DK / 8][4];
#pragma unroll
    for (int nt = 0; nt < DK / 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) s[nt][e] = S[(long)(nt * 8 + 2 * tq + (e & 1)) * dv + vw + gq + (e >> 1) * 8];

    for (int c = 0; c < nchunks; c++) {
        const int st = c & 1, t0 = bos + c * CH, n = min(CH, eos - t0);
        if (c + 1 < nchunks) cp_async_wait<1>(); else cp_async_wait<0>();
        __syncthreads();
        const float gl = sm.gam[st][n - 1];
        for (int i = tid; i < CH; i += NT) {
            const bool ok = i < n;
            const float gi = sm.gam[st][i];
            const float2 r2 = sm.rn[st][i];
            const float eg = __expf(gi);
            sm.fk[i] = ok ? eg * r2.y : 0.f;
            sm.fq[i] = ok ? eg * r2.x : 0.f;
            sm.fl[i] = ok ? __expf(gl - gi) * r2.y : 0.f;
            sm.fb[i] = ok ? sm.beta[st][i] : 0.f;
        }
        __syncthreads();

        // (a) Sᵀ·Kᵀ and Sᵀ·Qᵀ  [16 values × 64 tokens], K = dk
        float xa[8][4], oa[8][4];
#pragma unroll
        for (int i = 0; i < 8; i++)
#pragma unroll
            for (int e = 0; e < 4; e++) xa[i][e] = oa[i][e] = 0.f;
#pragma unroll
        for (int ks = 0; ks < DK / 16; ks++) {
            const uint32_t a[4] = {pack_bf16(s[2 * ks][0], s[2 * ks][1]), pack_bf16(s[2 * ks][2], s[2 * ks][3]),
                                   pack_bf16(s[2 * ks + 1][0], s[2 * ks + 1][1]),
                                   pack_bf16(s[2 * ks + 1][2], s[2 * ks + 1][3])};
#pragma unroll
            for (int p = 0; p < 4; p++) {
                const int row = p * 16 + (lane & 7) + (lane >> 4) * 8, col = ks * 16 + ((lane >> 3) & 1) * 8;
                uint32_t bk[4], bq[4];
                ldsm_x4(bk, &sm.k[st][row][col]);
                ldsm_x4(bq, &sm.q[st][row][col]);
                mma(xa[2 * p], a, bk[0], bk[1]);
                mma(xa[2 * p + 1], a, bk[2], bk[3]);
                mma(oa[2 * p], a, bq[0], bq[1]);
                mma(oa[2 * p + 1], a, bq[2], bq[3]);
            }
        }
        // X = β ⊙ (V − e^γ k̂·S), transposed; O's state part gets its column factor e^γ·rq·scale
#pragma unroll
        for (int p = 0; p < 4; p++) {
            uint32_t vt[4];
            ldsm_x4_t(vt, &sm.v[st][p * 16 + (lane & 7) + (lane >> 4) * 8][warp * 16 + ((lane >> 3) & 1) * 8]);
#pragma unroll
            for (int hlf = 0; hlf < 2; hlf++) {
                const int nt = 2 * p + hlf, tok = nt * 8 + 2 * tq;
                const float2 fk = *reinterpret_cast<const float2*>(&sm.fk[tok]);
                const float2 fb = *reinterpret_cast<const float2*>(&sm.fb[tok]);
                const float2 fq = *reinterpret_cast<const float2*>(&sm.fq[tok]);
                const uint32_t lo = vt[2 * hlf], hi = vt[2 * hlf + 1];  // value rows gq and gq + 8
                xa[nt][0] = fb.x * (bf16_lo(lo) - fk.x * xa[nt][0]);
                xa[nt][1] = fb.y * (bf16_hi(lo) - fk.y * xa[nt][1]);
                xa[nt][2] = fb.x * (bf16_lo(hi) - fk.x * xa[nt][2]);
                xa[nt][3] = fb.y * (bf16_hi(hi) - fk.y * xa[nt][3]);
                oa[nt][0] *= fq.x;
                oa[nt][1] *= fq.y;
                oa[nt][2] *= fq.x;
                oa[nt][3] *= fq.y;
            }
        }
        // (b) V'ᵀ = Xᵀ·Tᵀ (T lower triangular: only blocks at or below the diagonal)
        float vp[8][4];
#pragma unroll
        for (int i = 0; i < 8; i++)
#pragma unroll
            for (int e = 0; e < 4; e++) vp[i][e] = 0.f;
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            const uint32_t a[4] = {pack_bf16(xa[2 * ks][0], xa[2 * ks][1]), pack_bf16(xa[2 * ks][2], xa[2 * ks][3]),
                                   pack_bf16(xa[2 * ks + 1][0], xa[2 * ks + 1][1]),
                                   pack_bf16(xa[2 * ks + 1][2], xa[2 * ks + 1][3])};
#pragma unroll
            for (int p = ks; p < 4; p++) {
                uint32_t bt[4];
                ldsm_x4(bt, &sm.t[st][p * 16 + (lane & 7) + (lane >> 4) * 8][ks * 16 + ((lane >> 3) & 1) * 8]);
                mma(vp[2 * p], a, bt[0], bt[1]);
                mma(vp[2 * p + 1], a, bt[2], bt[3]);
            }
        }
        // (d) Oᵀ += V'ᵀ·Pᵀ   and   (c) Sᵀ ← e^{γ_last} Sᵀ + (V' ⊙ e^{γ_last−γ} rk)ᵀ·K
        const float el = __expf(gl);
#pragma unroll
        for (int nt = 0; nt < DK / 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) s[nt][e] *= el;
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            const uint32_t a[4] = {pack_bf16(vp[2 * ks][0], vp[2 * ks][1]), pack_bf16(vp[2 * ks][2], vp[2 * ks][3]),
                                   pack_bf16(vp[2 * ks + 1][0], vp[2 * ks + 1][1]),
                                   pack_bf16(vp[2 * ks + 1][2], vp[2 * ks + 1][3])};
#pragma unroll
            for (int p = ks; p < 4; p++) {
                uint32_t bp[4];
                ldsm_x4(bp, &sm.p[st][p * 16 + (lane & 7) + (lane >> 4) * 8][ks * 16 + ((lane >> 3) & 1) * 8]);
                mma(oa[2 * p], a, bp[0], bp[1]);
                mma(oa[2 * p + 1], a, bp[2], bp[3]);
            }
            const float2 f0 = *reinterpret_cast<const float2*>(&sm.fl[ks * 16 + 2 * tq]);
            const float2 f1 = *reinterpret_cast<const float2*>(&sm.fl[ks * 16 + 8 + 2 * tq]);
            const uint32_t al[4] = {pack_bf16(vp[2 * ks][0] * f0.x, vp[2 * ks][1] * f0.y),
                                    pack_bf16(vp[2 * ks][2] * f0.x, vp[2 * ks][3] * f0.y),
                                    pack_bf16(vp[2 * ks + 1][0] * f1.x, vp[2 * ks + 1][1] * f1.y),
                                    pack_bf16(vp[2 * ks + 1][2] * f1.x, vp[2 * ks + 1][3] * f1.y)};
#pragma unroll
            for (int np = 0; np < DK / 16; np++) {
                uint32_t bk[4];
                ldsm_x4_t(bk, &sm.k[st][ks * 16 + (lane & 7) + ((lane >> 3) & 1) * 8][np * 16 + (lane >> 4) * 8]);
                mma(s[2 * np], al, bk[0], bk[1]);
                mma(s[2 * np + 1], al, bk[2], bk[3]);
            }
        }
        // O: registers → smem → 16-byte rows
#pragma unroll
        for (int nt = 0; nt < 8; nt++)
#pragma unroll
            for (int e = 0; e < 4; e++) sm.o[nt * 8 + 2 * tq + (e & 1)][warp * 16 + gq + (e >> 1) * 8] = __float2bfloat16_rn(oa[nt][e]);
        __syncthreads();
        for (int idx = tid; idx < n * (BV / 8); idx += NT) {
            const int row = idx / (BV / 8), col = (idx % (BV / 8)) * 8;
            *reinterpret_cast<uint4*>(out + (long)(t0 + row) * out_ld + h * dv + v0 + col) =
                    *reinterpret_cast<const uint4*>(&sm.o[row][col]);
        }
        if (c + 2 < nchunks) load_chunk(c + 2, st);  // every warp is past this stage (barrier above)
    }
#pragma unroll
    for (int nt = 0; nt < DK / 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) S[(long)(nt * 8 + 2 * tq + (e & 1)) * dv + vw + gq + (e >> 1) * 8] = s[nt][e];
}

extern "C" __global__ void __launch_bounds__(64, 1) gdr_chunk_state_d128_w2(
        const bf16* __restrict__ qkv, int qkv_ld, const float* __restrict__ beta, const int* __restrict__ cu,
        const int* __restrict__ slots, int tokens, int Hk, int Hv, int dv, const float* __restrict__ gam,
        const float* __restrict__ rn, const bf16* __restrict__ tp, float* __restrict__ state, bf16* __restrict__ out) {
    state_pass<2>(qkv, qkv_ld, beta, cu, slots, tokens, Hk, Hv, dv, gam, rn, tp, state, out);
}

// ---------------------------------------------------------------------------------------------------------------
// Recurrent form for any dk <= 128 and any dv: block (sequence, value head, 32 value columns), 8 warps × 4 columns;
// lane holds S[i][j] for i = lane + 32m. fp32 throughout, token by token.

extern "C" __global__ void __launch_bounds__(256) gdr_recurrent(
        const bf16* __restrict__ qkv, int qkv_ld, const float* __restrict__ beta, const float* __restrict__ g,
        const int* __restrict__ cu, const int* __restrict__ slots, int tokens, int Hk, int Hv, int dk, int dv, float scale,
        float* __restrict__ state, bf16* __restrict__ out) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int b = blockIdx.x, h = blockIdx.y, kh = h / (Hv / Hk);
    const int j0 = blockIdx.z * 32 + warp * 4;
    const int bos = cu[b], eos = min(cu[b + 1], tokens), slot = slots[b];
    const long out_ld = (long)Hv * dv;
    if (j0 >= dv) return;
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
