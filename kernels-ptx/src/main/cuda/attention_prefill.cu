// Prefill/extend flash attention over the paged KV cache (causal, GQA), with the sigmoid output gate in the epilogue.
//
// For each sequence b of a varlen batch (new tokens cu_seqlens[b] .. cu_seqlens[b+1], past_len[b] tokens cached before them,
// their K/V already written to the pages by attention_prep), query token t (absolute position past + t) of head h attends
// to keys 0 .. past + t of KV head h / G (G = num_heads / num_kv_heads):
//   o = softmax(q·Kᵀ·scale) · V      (fp32 scores and softmax, probabilities rounded to bf16 before P·V, fp32 accumulation)
//   out[t, h] = bf16(bf16(o) · bf16(sigmoid(gate[t, h])))     or bf16(o) when gate is null
//
// Work split: a block owns BM = 128 query rows of one (sequence, KV head): TOK = 128 / G tokens × the G query heads that share
// the KV head (row r = token r / G, head r % G), so every K/V tile is loaded once for all of them. 8 warps, 16 rows each.
// Key tiles are KV pages (64 keys); K and V are double-buffered with cp.async; S = Q·Kᵀ and O += P·V on mma.sync m16n8k16
// (bf16 in, fp32 accumulate) with ldmatrix from XOR-swizzled shared memory; online softmax in the log2 domain.
// Grid: (ceil(max_new_tokens / TOK), num_seqs, num_kv_heads); blocks of a sequence run from its last (heaviest) token block.
// Padded sequences (past_len < 0) get zero output rows.
#include "attention.cuh"

template <int HD>
struct PrefillShape {
    static constexpr int BM = 128, BN = KV_PAGE, WARPS = 8, THREADS = WARPS * 32;
    static constexpr int CH = HD / 8;       // 16-byte chunks per row
    static constexpr int KSTEPS = HD / 16;  // k-steps of Q·Kᵀ
    static constexpr int NS = BN / 8;       // n-tiles of S (keys)
    static constexpr int NO = HD / 8;       // n-tiles of O (dims)
    static constexpr int SMEM_BYTES = (BM + 4 * BN) * HD * 2;  // Q + 2×K + 2×V
};

template <int HD>
__device__ __forceinline__ void load_kv_tile(bf16* sk, bf16* sv, const bf16* k_cache, const bf16* v_cache, int page, int kv_head,
                                             int num_kv_heads, int first_key, int kv_total) {
    using S = PrefillShape<HD>;
    for (int c = threadIdx.x; c < S::BN * S::CH; c += S::THREADS) {
        const int r = c / S::CH, ch = c % S::CH;
        const bool ok = page >= 0 && first_key + r < kv_total;
        const size_t off = ok ? kv_row_offset(page, kv_head, num_kv_heads, r, HD) + ch * 8 : 0;
        cp_async16(smem_u32(sk + swz<S::CH>(r, ch) * 8), k_cache + off, ok ? 16 : 0);
        cp_async16(smem_u32(sv + swz<S::CH>(r, ch) * 8), v_cache + off, ok ? 16 : 0);
    }
}

template <int HD>
__device__ __forceinline__ void flash_prefill(const bf16* __restrict__ q, const bf16* __restrict__ k_cache,
                                              const bf16* __restrict__ v_cache, const int* __restrict__ page_table, int pt_stride,
                                              const int* __restrict__ cu_seqlens, const int* __restrict__ past_len, int num_seqs,
                                              bf16* __restrict__ out, const bf16* __restrict__ gate, int gate_tok_stride,
                                              int gate_head_stride, int num_heads, int num_kv_heads, float scale_log2) {
    using S = PrefillShape<HD>;
    extern __shared__ __align__(128) unsigned char smem_raw[];
    bf16* sq = reinterpret_cast<bf16*>(smem_raw);
    bf16* sk = sq + S::BM * HD;  // sk[2][BN*HD] then sv[2][BN*HD]
    bf16* sv = sk + 2 * S::BN * HD;

    const int b = blockIdx.y, kvh = blockIdx.z;
    if (b >= num_seqs) return;
    const int past = past_len[b];
    const int row0 = cu_seqlens[b], n_new = cu_seqlens[b + 1] - row0;
    const int G = num_heads / num_kv_heads;
    const int TOK = S::BM / G;
    const int n_blocks = (n_new + TOK - 1) / TOK;
    if ((int)blockIdx.x >= n_blocks) return;
    const int t0 = (n_blocks - 1 - blockIdx.x) * TOK;
    const int tok_valid = min(TOK, n_new - t0);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, tig = lane & 3;

    if (past < 0) {  // padded sequence: zero rows, nothing read
        for (int c = threadIdx.x; c < tok_valid * G * S::CH; c += S::THREADS) {
            const int r = c / S::CH, ch = c % S::CH;
            const int tok = r / G, h = kvh * G + r % G;
            *reinterpret_cast<uint4*>(out + ((size_t)(row0 + t0 + tok) * num_heads + h) * HD + ch * 8) = make_uint4(0, 0, 0, 0);
        }
        return;
    }
    const int kv_total = past + n_new;
    const int kv_len = past + t0 + tok_valid;  // keys this block needs
    const int n_tiles = (kv_len + S::BN - 1) / S::BN;
    const int* pages = page_table + (size_t)b * pt_stride;

    // Q tile (rows beyond the block's tokens are zero) and the first K/V tile.
    for (int c = threadIdx.x; c < S::BM * S::CH; c += S::THREADS) {
        const int r = c / S::CH, ch = c % S::CH;
        const int tok = r / G;
        const bool ok = r < TOK * G && tok < tok_valid;
        const size_t off = ok ? ((size_t)(row0 + t0 + tok) * num_heads + kvh * G + r % G) * HD + ch * 8 : 0;
        cp_async16(smem_u32(sq + swz<S::CH>(r, ch) * 8), q + off, ok ? 16 : 0);
    }
    cp_async_commit();
    load_kv_tile<HD>(sk, sv, k_cache, v_cache, pages[0], kvh, num_kv_heads, 0, kv_total);
    cp_async_commit();

    const int row_a = warp * 16 + g, row_b = row_a + 8;  // this thread's two rows of every m16 fragment
    const int pos_a = past + t0 + row_a / G, pos_b = past + t0 + row_b / G;
    const int min_pos = past + t0;
    float o[S::NO][4];
#pragma unroll
    for (int i = 0; i < S::NO; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
    float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.f, l_b = 0.f;

    for (int j = 0; j < n_tiles; j++) {
        const int buf = j & 1;
        cp_async_wait<0>();
        __syncthreads();  // K_j, V_j visible; every warp is done with tile j−1, so the other buffers are free
        if (j + 1 < n_tiles) {
            load_kv_tile<HD>(sk + (buf ^ 1) * S::BN * HD, sv + (buf ^ 1) * S::BN * HD, k_cache, v_cache, pages[j + 1], kvh,
                             num_kv_heads, (j + 1) * S::BN, kv_total);
        }
        cp_async_commit();
        const bf16* tk = sk + buf * S::BN * HD;
        const bf16* tv = sv + buf * S::BN * HD;

        float s[S::NS][4];
#pragma unroll
        for (int i = 0; i < S::NS; i++) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll
        for (int ks = 0; ks < S::KSTEPS; ks++) {
            uint32_t a[4];
            ldmatrix_x4(a, smem_u32(sq + swz<S::CH>(warp * 16 + (lane & 15), ks * 2 + (lane >> 4)) * 8));
#pragma unroll
            for (int np = 0; np < S::NS / 2; np++) {
                uint32_t kb[4];
                ldmatrix_x4(kb, smem_u32(tk + swz<S::CH>(np * 16 + (lane & 7) + ((lane >> 4) << 3), ks * 2 + ((lane >> 3) & 1)) * 8));
                mma_bf16(s[2 * np], a, kb[0], kb[1]);
                mma_bf16(s[2 * np + 1], a, kb[2], kb[3]);
            }
        }

        // scale into the log2 domain; causal mask on the tiles that reach past the block's first token
        const int key0 = j * S::BN;
        const bool need_mask = key0 + S::BN - 1 > min_pos;
        float mx_a = -INFINITY, mx_b = -INFINITY;
#pragma unroll
        for (int nt = 0; nt < S::NS; nt++) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int key = key0 + nt * 8 + 2 * tig + e;
                float va = s[nt][e] * scale_log2, vb = s[nt][2 + e] * scale_log2;
                if (need_mask) {
                    if (key > pos_a) va = -INFINITY;
                    if (key > pos_b) vb = -INFINITY;
                }
                s[nt][e] = va;
                s[nt][2 + e] = vb;
                mx_a = fmaxf(mx_a, va);
                mx_b = fmaxf(mx_b, vb);
            }
        }
        mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 1));
        mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, 2));
        mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 1));
        mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, 2));
        const float mn_a = fmaxf(m_a, mx_a), mn_b = fmaxf(m_b, mx_b);
        const float ref_a = mn_a == -INFINITY ? 0.f : mn_a, ref_b = mn_b == -INFINITY ? 0.f : mn_b;
        const float alpha_a = exp2f(m_a - ref_a), alpha_b = exp2f(m_b - ref_b);
        m_a = mn_a;
        m_b = mn_b;
        l_a *= alpha_a;
        l_b *= alpha_b;
#pragma unroll
        for (int nt = 0; nt < S::NS; nt++) {
            s[nt][0] = exp2f(s[nt][0] - ref_a);
            s[nt][1] = exp2f(s[nt][1] - ref_a);
            s[nt][2] = exp2f(s[nt][2] - ref_b);
            s[nt][3] = exp2f(s[nt][3] - ref_b);
            l_a += s[nt][0] + s[nt][1];
            l_b += s[nt][2] + s[nt][3];
        }
#pragma unroll
        for (int i = 0; i < S::NO; i++) {
            o[i][0] *= alpha_a;
            o[i][1] *= alpha_a;
            o[i][2] *= alpha_b;
            o[i][3] *= alpha_b;
        }

        // O += P·V: the S accumulators of key n-tiles 2kk, 2kk+1 are the A fragment of key step kk
#pragma unroll
        for (int kk = 0; kk < S::BN / 16; kk++) {
            uint32_t pa[4];
            pa[0] = pack_bf16x2(s[2 * kk][0], s[2 * kk][1]);
            pa[1] = pack_bf16x2(s[2 * kk][2], s[2 * kk][3]);
            pa[2] = pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            pa[3] = pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
            for (int dp = 0; dp < S::NO / 2; dp++) {
                uint32_t vb[4];
                ldmatrix_x4_trans(vb, smem_u32(tv + swz<S::CH>(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, dp * 2 + (lane >> 4)) * 8));
                mma_bf16(o[2 * dp], pa, vb[0], vb[1]);
                mma_bf16(o[2 * dp + 1], pa, vb[2], vb[3]);
            }
        }
    }
    cp_async_wait<0>();

    // Epilogue: o / l rounded to bf16 into this warp's own Q rows, then 16-byte stores with the gate applied.
    l_a += __shfl_xor_sync(0xffffffffu, l_a, 1);
    l_a += __shfl_xor_sync(0xffffffffu, l_a, 2);
    l_b += __shfl_xor_sync(0xffffffffu, l_b, 1);
    l_b += __shfl_xor_sync(0xffffffffu, l_b, 2);
    const float inv_a = 1.0f / l_a, inv_b = 1.0f / l_b;
    __syncwarp();
#pragma unroll
    for (int nt = 0; nt < S::NO; nt++) {
        bf16* pa = sq + swz<S::CH>(row_a, nt) * 8 + 2 * tig;
        bf16* pb = sq + swz<S::CH>(row_b, nt) * 8 + 2 * tig;
        *reinterpret_cast<uint32_t*>(pa) = pack_bf16x2(o[nt][0] * inv_a, o[nt][1] * inv_a);
        *reinterpret_cast<uint32_t*>(pb) = pack_bf16x2(o[nt][2] * inv_b, o[nt][3] * inv_b);
    }
    __syncwarp();
    for (int c = lane; c < 16 * S::CH; c += 32) {
        const int r = warp * 16 + c / S::CH, ch = c % S::CH;
        const int tok = r / G;
        if (r >= TOK * G || tok >= tok_valid) continue;
        const int h = kvh * G + r % G;
        const size_t t = (size_t)(row0 + t0 + tok);
        float v[8];
        unpack8(*reinterpret_cast<const bf16x8*>(sq + swz<S::CH>(r, ch) * 8), v);
        if (gate != nullptr) {
            float gv[8];
            unpack8(*reinterpret_cast<const bf16x8*>(gate + t * gate_tok_stride + (size_t)h * gate_head_stride + ch * 8), gv);
#pragma unroll
            for (int i = 0; i < 8; i++) v[i] = gate_bf16(v[i], gv[i]);
        }
        *reinterpret_cast<bf16x8*>(out + (t * num_heads + h) * HD + ch * 8) = pack8(v);
    }
}

#define PREFILL_ENTRY(HD, MIN_BLOCKS)                                                                                           \
    extern "C" __global__ void __launch_bounds__(256, MIN_BLOCKS) attention_prefill_hd##HD(                                     \
        const bf16* q, const bf16* k_cache, const bf16* v_cache, const int* page_table, int pt_stride, const int* cu_seqlens,  \
        const int* past_len, int num_seqs, bf16* out, const bf16* gate, int gate_tok_stride, int gate_head_stride,            \
        int num_heads, int num_kv_heads, float scale_log2) {                                                                   \
        flash_prefill<HD>(q, k_cache, v_cache, page_table, pt_stride, cu_seqlens, past_len, num_seqs, out, gate,              \
                          gate_tok_stride, gate_head_stride, num_heads, num_kv_heads, scale_log2);                             \
    }

PREFILL_ENTRY(256, 1)
PREFILL_ENTRY(128, 1)
PREFILL_ENTRY(64, 2)
PREFILL_ENTRY(32, 2)
