// Decode attention over the paged KV cache (one new token per sequence, its K/V already in the pages), flash-decoding style:
//
// attention_decode_hd*: grid (splits, num_kv_heads, num_seqs), 4 warps. Block (sp, kvh, b) reads the pages
//   [sp·pps, (sp+1)·pps) of sequence b (pps = ceil(pages / splits), L = past_len[b] + 1 keys) for KV head kvh and computes,
//   for the G = num_heads / num_kv_heads query heads sharing it, the partial softmax·V normalised by its own sum and its
//   log-sum-exp (log2 domain, scores already scaled):  o_part[b, h, sp, :], lse_part[b, h, sp]  (fp32; −inf: empty split).
//   The G heads are the N side of transposed products, so no tensor-core work is wasted on padding:
//     Sᵀ[16 keys, 8 heads] = K[16 keys, hd] · Qᵀ         (A = K rows via ldmatrix, B = q in registers)
//     Oᵀ[hd, 8 heads]     += Vᵀ[hd, 16 keys] · Pᵀ        (A = V via ldmatrix.trans, B = Pᵀ transposed in registers by movmatrix)
//   Warp w takes keys 16w .. 16w+15 of every page with its own online softmax; pages stream through a 3-stage cp.async ring;
//   the 4 warps are merged in shared memory at the end.
// attention_decode_combine: one block per (sequence, head) merges the splits, rounds o to bf16 and applies the output gate
//   (bf16(bf16(o) · bf16(sigmoid(gate)))); padded sequences (past_len < 0) get zero rows.
#include "attention.cuh"

#define DEC_WARPS 4
#define DEC_STAGES 3

template <int HD>
struct DecodeShape {
    static constexpr int CH = HD / 8;
    static constexpr int KSTEPS = HD / 16;  // k-steps of K·Qᵀ, and m-tiles of Vᵀ·Pᵀ
    static constexpr int STAGE_ELEMS = 2 * KV_PAGE * HD;  // K page + V page
    static constexpr int SMEM_BYTES = DEC_STAGES * STAGE_ELEMS * 2;
};

template <int HD>
__device__ __forceinline__ void load_page(bf16* st, const bf16* k_cache, const bf16* v_cache, int page, int kv_head,
                                          int num_kv_heads, int first_key, int kv_total) {
    using S = DecodeShape<HD>;
    bf16* sk = st;
    bf16* sv = st + KV_PAGE * HD;
    for (int c = threadIdx.x; c < KV_PAGE * S::CH; c += DEC_WARPS * 32) {
        const int r = c / S::CH, ch = c % S::CH;
        const bool ok = page >= 0 && first_key + r < kv_total;
        const size_t off = ok ? kv_row_offset(page, kv_head, num_kv_heads, r, HD) + ch * 8 : 0;
        cp_async16(smem_u32(sk + swz<S::CH>(r, ch) * 8), k_cache + off, ok ? 16 : 0);
        cp_async16(smem_u32(sv + swz<S::CH>(r, ch) * 8), v_cache + off, ok ? 16 : 0);
    }
}

// NT = n-tiles of 8 query heads (G <= 8·NT).
template <int HD, int NT>
__device__ __forceinline__ void flash_decode(const bf16* __restrict__ q, const bf16* __restrict__ k_cache,
                                             const bf16* __restrict__ v_cache, const int* __restrict__ page_table, int pt_stride,
                                             const int* __restrict__ past_len, int num_seqs, int num_heads, int num_kv_heads,
                                             int splits, float scale_log2, float* __restrict__ o_part,
                                             float* __restrict__ lse_part) {
    using S = DecodeShape<HD>;
    extern __shared__ __align__(128) unsigned char smem_raw[];
    bf16* stages = reinterpret_cast<bf16*>(smem_raw);

    const int sp = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z;
    if (b >= num_seqs) return;
    const int past = past_len[b];
    if (past < 0) return;  // padding: the combine writes zeros
    const int G = num_heads / num_kv_heads;
    const int kv_total = past + 1;
    const int n_pages = (kv_total + KV_PAGE - 1) / KV_PAGE;
    const int pps = (n_pages + splits - 1) / splits;
    const int p0 = sp * pps, p1 = min(n_pages, p0 + pps);
    const size_t part0 = ((size_t)b * num_heads + kvh * G) * splits + sp;  // (b, head kvh·G, split sp); heads stride `splits`
    if (p0 >= p1) {
        if (threadIdx.x < G) lse_part[part0 + (size_t)threadIdx.x * splits] = -INFINITY;
        return;
    }
    const int* pages = page_table + (size_t)b * pt_stride;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, tig = lane & 3;

#pragma unroll
    for (int s = 0; s < DEC_STAGES - 1; s++) {
        if (p0 + s < p1) load_page<HD>(stages + s * S::STAGE_ELEMS, k_cache, v_cache, pages[p0 + s], kvh, num_kv_heads,
                                       (p0 + s) * KV_PAGE, kv_total);
        cp_async_commit();
    }

    // Qᵀ as B fragments: b0 = q[head nt·8+g][16ks + 2tig, +1], b1 = q[head][16ks + 8 + 2tig, +1]; heads >= G are zero.
    uint32_t qf[NT][S::KSTEPS][2];
#pragma unroll
    for (int nt = 0; nt < NT; nt++) {
        const int hh = nt * 8 + g;
        const uint32_t* qrow = reinterpret_cast<const uint32_t*>(q + ((size_t)b * num_heads + kvh * G + hh) * HD);
#pragma unroll
        for (int ks = 0; ks < S::KSTEPS; ks++) {
            qf[nt][ks][0] = hh < G ? qrow[ks * 8 + tig] : 0u;
            qf[nt][ks][1] = hh < G ? qrow[ks * 8 + 4 + tig] : 0u;
        }
    }

    float o[NT][S::KSTEPS][4];  // Oᵀ: m-tile mt = dims 16mt.., c0,c1 = (dim g, heads 2tig, 2tig+1), c2,c3 = dim g+8
#pragma unroll
    for (int nt = 0; nt < NT; nt++)
#pragma unroll
        for (int mt = 0; mt < S::KSTEPS; mt++) o[nt][mt][0] = o[nt][mt][1] = o[nt][mt][2] = o[nt][mt][3] = 0.f;
    float m[NT][2], l[NT][2];
#pragma unroll
    for (int nt = 0; nt < NT; nt++) m[nt][0] = m[nt][1] = -INFINITY, l[nt][0] = l[nt][1] = 0.f;

    for (int i = 0; p0 + i < p1; i++) {
        cp_async_wait<DEC_STAGES - 2>();
        __syncthreads();  // page i visible to all; every warp is done with page i−1, whose stage is refilled next
        {
            const int pn = p0 + i + DEC_STAGES - 1;
            if (pn < p1) load_page<HD>(stages + ((i + DEC_STAGES - 1) % DEC_STAGES) * S::STAGE_ELEMS, k_cache, v_cache, pages[pn],
                                       kvh, num_kv_heads, pn * KV_PAGE, kv_total);
            cp_async_commit();
        }
        const bf16* sk = stages + (i % DEC_STAGES) * S::STAGE_ELEMS;
        const bf16* sv = sk + KV_PAGE * HD;
        const int key_a = (p0 + i) * KV_PAGE + warp * 16 + g, key_b = key_a + 8;

        float st[NT][4];
#pragma unroll
        for (int nt = 0; nt < NT; nt++) st[nt][0] = st[nt][1] = st[nt][2] = st[nt][3] = 0.f;
#pragma unroll
        for (int ks = 0; ks < S::KSTEPS; ks++) {
            uint32_t a[4];
            ldmatrix_x4(a, smem_u32(sk + swz<S::CH>(warp * 16 + (lane & 15), ks * 2 + (lane >> 4)) * 8));
#pragma unroll
            for (int nt = 0; nt < NT; nt++) mma_bf16(st[nt], a, qf[nt][ks][0], qf[nt][ks][1]);
        }

        uint32_t pb[NT][2];
#pragma unroll
        for (int nt = 0; nt < NT; nt++) {
            float alpha[2];
#pragma unroll
            for (int e = 0; e < 2; e++) {  // column (head) 2tig + e; rows (keys) g and g+8
                const float va = key_a < kv_total ? st[nt][e] * scale_log2 : -INFINITY;
                const float vb = key_b < kv_total ? st[nt][2 + e] * scale_log2 : -INFINITY;
                float mx = fmaxf(va, vb);
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 4));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 8));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 16));
                const float mn = fmaxf(m[nt][e], mx);
                const float ref = mn == -INFINITY ? 0.f : mn;
                alpha[e] = exp2f(m[nt][e] - ref);
                m[nt][e] = mn;
                const float pa = exp2f(va - ref), pbv = exp2f(vb - ref);
                l[nt][e] = l[nt][e] * alpha[e] + pa + pbv;
                st[nt][e] = pa;
                st[nt][2 + e] = pbv;
            }
#pragma unroll
            for (int mt = 0; mt < S::KSTEPS; mt++) {
                o[nt][mt][0] *= alpha[0];
                o[nt][mt][1] *= alpha[1];
                o[nt][mt][2] *= alpha[0];
                o[nt][mt][3] *= alpha[1];
            }
            // Pᵀ as B: transpose the (keys × heads) 8x8 blocks to (heads × keys)
            pb[nt][0] = movmatrix_trans(pack_bf16x2(st[nt][0], st[nt][1]));
            pb[nt][1] = movmatrix_trans(pack_bf16x2(st[nt][2], st[nt][3]));
        }
#pragma unroll
        for (int mt = 0; mt < S::KSTEPS; mt++) {
            uint32_t va[4];
            ldmatrix_x4_trans(va, smem_u32(sv + swz<S::CH>(warp * 16 + (lane & 7) + ((lane >> 4) << 3), mt * 2 + ((lane >> 3) & 1)) * 8));
#pragma unroll
            for (int nt = 0; nt < NT; nt++) mma_bf16(o[nt][mt], va, pb[nt][0], pb[nt][1]);
        }
    }
    cp_async_wait<0>();
    __syncthreads();  // all warps done with the stages: reuse them for the merge

    // Merge the 4 warps: per warp m, l [8·NT heads] and Oᵀ [HD][8·NT] in fp32.
    constexpr int NH = 8 * NT;
    float* sm_m = reinterpret_cast<float*>(smem_raw);
    float* sm_l = sm_m + DEC_WARPS * NH;
    float* sm_o = sm_l + DEC_WARPS * NH;
#pragma unroll
    for (int nt = 0; nt < NT; nt++) {
#pragma unroll
        for (int e = 0; e < 2; e++) {
            float lv = l[nt][e];
            lv += __shfl_xor_sync(0xffffffffu, lv, 4);
            lv += __shfl_xor_sync(0xffffffffu, lv, 8);
            lv += __shfl_xor_sync(0xffffffffu, lv, 16);
            if (g == 0) {
                sm_m[warp * NH + nt * 8 + 2 * tig + e] = m[nt][e];
                sm_l[warp * NH + nt * 8 + 2 * tig + e] = lv;
            }
        }
#pragma unroll
        for (int mt = 0; mt < S::KSTEPS; mt++) {
            float* base = sm_o + (size_t)warp * HD * NH;
            base[(mt * 16 + g) * NH + nt * 8 + 2 * tig] = o[nt][mt][0];
            base[(mt * 16 + g) * NH + nt * 8 + 2 * tig + 1] = o[nt][mt][1];
            base[(mt * 16 + g + 8) * NH + nt * 8 + 2 * tig] = o[nt][mt][2];
            base[(mt * 16 + g + 8) * NH + nt * 8 + 2 * tig + 1] = o[nt][mt][3];
        }
    }
    __syncthreads();
    for (int e = threadIdx.x; e < G * HD; e += DEC_WARPS * 32) {
        const int hh = e / HD, d = e % HD;
        float mx = -INFINITY;
#pragma unroll
        for (int w = 0; w < DEC_WARPS; w++) mx = fmaxf(mx, sm_m[w * NH + hh]);
        float num = 0.f, den = 0.f;
#pragma unroll
        for (int w = 0; w < DEC_WARPS; w++) {
            const float mw = sm_m[w * NH + hh];
            if (mw == -INFINITY) continue;  // a warp whose keys were all past the end
            const float f = exp2f(mw - mx);
            num += f * sm_o[((size_t)w * HD + d) * NH + hh];
            den += f * sm_l[w * NH + hh];
        }
        const size_t part = part0 + (size_t)hh * splits;
        o_part[part * HD + d] = num / den;
        if (d == 0) lse_part[part] = mx + log2f(den);
    }
}

#define DECODE_ENTRY(HD, NT)                                                                                                   \
    extern "C" __global__ void __launch_bounds__(DEC_WARPS * 32, 1) attention_decode_hd##HD##_g##NT(                          \
        const bf16* q, const bf16* k_cache, const bf16* v_cache, const int* page_table, int pt_stride, const int* past_len,   \
        int num_seqs, int num_heads, int num_kv_heads, int splits, float scale_log2, float* o_part, float* lse_part) {        \
        flash_decode<HD, NT>(q, k_cache, v_cache, page_table, pt_stride, past_len, num_seqs, num_heads, num_kv_heads, splits, \
                             scale_log2, o_part, lse_part);                                                                    \
    }

DECODE_ENTRY(256, 1)
DECODE_ENTRY(256, 2)
DECODE_ENTRY(128, 1)
DECODE_ENTRY(128, 2)
DECODE_ENTRY(64, 1)
DECODE_ENTRY(64, 2)
DECODE_ENTRY(32, 1)
DECODE_ENTRY(32, 2)

// Merges the splits of one (sequence, head) per block of COMBINE_THREADS: the split weights 2^(lse − max) go to shared
// memory (dynamic, `splits` floats), then thread (group, q) sums splits group, group + groups, ... for the 4 dims 4q..4q+3
// (groups = COMBINE_THREADS / (head_dim / 4)), and the groups are added in a fixed order. head_dim % 4 == 0, <= 4·COMBINE_THREADS.
#define COMBINE_THREADS 128
extern "C" __global__ void __launch_bounds__(COMBINE_THREADS, 8) attention_decode_combine(
    const float* __restrict__ o_part, const float* __restrict__ lse_part, const int* __restrict__ past_len, int num_seqs,
    int num_heads, int head_dim, int splits, bf16* __restrict__ out, const bf16* __restrict__ gate, int gate_tok_stride,
    int gate_head_stride) {
    extern __shared__ float weight[];  // [splits rounded up to 4], then partial sums [groups][head_dim]
    __shared__ float red[COMBINE_THREADS / 32];
    const int item = blockIdx.x;
    const int b = item / num_heads, h = item % num_heads;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    bf16* dst = out + (size_t)item * head_dim;
    if (past_len[b] < 0) {
        for (int d = tid * 4; d < head_dim; d += 4 * COMBINE_THREADS) *reinterpret_cast<uint2*>(dst + d) = make_uint2(0, 0);
        return;
    }
    const float* lse = lse_part + (size_t)item * splits;
    float mx = -INFINITY;
    for (int s = tid; s < splits; s += COMBINE_THREADS) mx = fmaxf(mx, lse[s]);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    if (lane == 0) red[warp] = mx;
    __syncthreads();
    mx = red[0];
#pragma unroll
    for (int w = 1; w < COMBINE_THREADS / 32; w++) mx = fmaxf(mx, red[w]);
    __syncthreads();
    float ws = 0.f;
    for (int s = tid; s < splits; s += COMBINE_THREADS) {
        const float l = lse[s];
        const float wt = l == -INFINITY ? 0.f : exp2f(l - mx);
        weight[s] = wt;
        ws += wt;
    }
    ws = warp_sum(ws);
    if (lane == 0) red[warp] = ws;
    __syncthreads();
    float wsum = 0.f;
#pragma unroll
    for (int w = 0; w < COMBINE_THREADS / 32; w++) wsum += red[w];

    const int quads = head_dim / 4, groups = COMBINE_THREADS / quads;
    const int q = tid % quads, grp = tid / quads;
    float* partial = weight + ((splits + 3) & ~3);  // 16-byte aligned for the float4 accesses
    if (grp < groups) {
        float acc[4] = {0.f, 0.f, 0.f, 0.f};
        const float* src = o_part + (size_t)item * splits * head_dim + q * 4;
#pragma unroll 4
        for (int s = grp; s < splits; s += groups) {
            const float wt = weight[s];
            if (wt == 0.f) continue;  // empty split: its o_part was never written
            const float4 v = *reinterpret_cast<const float4*>(src + (size_t)s * head_dim);
            acc[0] += wt * v.x;
            acc[1] += wt * v.y;
            acc[2] += wt * v.z;
            acc[3] += wt * v.w;
        }
        *reinterpret_cast<float4*>(partial + grp * head_dim + q * 4) = make_float4(acc[0], acc[1], acc[2], acc[3]);
    }
    __syncthreads();
    if (tid < quads) {
        const float inv = 1.0f / wsum;
        float r[4] = {0.f, 0.f, 0.f, 0.f};
        for (int gi = 0; gi < groups; gi++) {
            const float4 v = *reinterpret_cast<const float4*>(partial + gi * head_dim + q * 4);
            r[0] += v.x;
            r[1] += v.y;
            r[2] += v.z;
            r[3] += v.w;
        }
#pragma unroll
        for (int i = 0; i < 4; i++) r[i] = round_bf16(r[i] * inv);
        if (gate != nullptr) {
            float gv[4];
            unpack4(*reinterpret_cast<const bf16x4*>(gate + (size_t)b * gate_tok_stride + (size_t)h * gate_head_stride + q * 4), gv);
#pragma unroll
            for (int i = 0; i < 4; i++) r[i] = gate_bf16(r[i], gv[i]);
        }
        *reinterpret_cast<bf16x4*>(dst + q * 4) = pack4(r);
    }
}
