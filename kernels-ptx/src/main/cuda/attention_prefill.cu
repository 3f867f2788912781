// Prefill/extend flash attention over the paged KV cache (causal, GQA), with the sigmoid output gate in the epilogue.
//
// For each sequence b of a varlen batch (new tokens cu_seqlens[b] .. cu_seqlens[b+1], past_len[b] tokens cached before them,
// their K/V already written to the pages by attention_prep), query token t (absolute position past + t) of head h attends
// to keys 0 .. past + t of KV head h / G (G = num_heads / num_kv_heads):
//   o = softmax(q·Kᵀ·scale) · V      (fp32 scores and softmax, probabilities rounded to bf16 before P·V, fp32 accumulation)
//   out[t, h] = bf16(bf16(o) · bf16(sigmoid(gate[t, h])))     or bf16(o) when gate is null
//
// Work split: a block owns BM = 128 query rows of one (sequence, KV head): TOK = 128 / G tokens × the G query heads that share
// the KV head (row r = token r / G, head r % G), so every K/V tile is loaded once for all of them. 8 warps in 4 pairs of
// 32 rows (see flash_prefill). Key tiles are KV pages (64 keys); K and V are double-buffered with cp.async; S = Q·Kᵀ and
// O += P·V on mma.sync m16n8k16 (bf16 in, fp32 accumulate) with ldmatrix from XOR-swizzled shared memory; online softmax
// in the log2 domain.
// Grid: (num_seqs + ceil(num_tokens / TOK), num_kv_heads), sized from the step's fixed shape only (graph-safe): block x
// of a KV head is work item x. Sequence b owns items base(b) .. base(b) + ceil(n_b / TOK) − 1 with base(b) = b + cu[b] / TOK
// (distinct for every batch, so no host-side prefix sum), taken from its last (heaviest) token block; the rows past the
// last entry, cu[num_seqs] .. num_tokens − 1, are items from base(num_seqs) on. Items nobody owns exit at once.
// Padded sequences (past_len < 0) and the rows past the last entry get zero output rows; empty entries own no item.
#include "attention.cuh"

// W = warps per group of 32 query rows (2: the default, 8 warps; 4: 16 warps with half the registers each).
template <int HD, int W>
struct PrefillShape {
    static constexpr int BM = 128, BN = KV_PAGE, WARPS = 4 * W, THREADS = WARPS * 32;
    static constexpr int CH = HD / 8;       // 16-byte chunks per Q/K/V row
    static constexpr int CHP = BN / 8;      // 16-byte chunks per P row
    static constexpr int KSTEPS = HD / 16;  // k-steps of Q·Kᵀ
    static constexpr int KW = BN / W;       // keys of S per warp
    static constexpr int NS = KW / 8;       // n-tiles of S per warp
    static constexpr int NOW = HD / W / 8;  // n-tiles of O per warp (its share of the head dim)
    static constexpr int SMEM_BYTES = (BM + 4 * BN) * HD * 2 + BM * BN * 2 + 2 * W * BM * 4;  // Q, 2×K, 2×V, P, max/sum exchange
    static_assert(NS % 2 == 0 && NOW % 2 == 0, "a warp needs pairs of n-tiles for S and for O");
};

template <int HD, int W>
__device__ __forceinline__ void load_kv_tile(bf16* sk, bf16* sv, const bf16* k_cache, const bf16* v_cache, int page, int kv_head,
                                             int num_kv_heads, int first_key, int kv_total) {
    using S = PrefillShape<HD, W>;
    for (int c = threadIdx.x; c < S::BN * S::CH; c += S::THREADS) {
        const int r = c / S::CH, ch = c % S::CH;
        const bool ok = page >= 0 && first_key + r < kv_total;
        const size_t off = ok ? kv_row_offset(page, kv_head, num_kv_heads, r, HD) + ch * 8 : 0;
        cp_async16(smem_u32(sk + swz<S::CH>(r, ch) * 8), k_cache + off, ok ? 16 : 0);
        cp_async16(smem_u32(sv + swz<S::CH>(r, ch) * 8), v_cache + off, ok ? 16 : 0);
    }
}

// Barrier of the W warps that share a row group (ids 1..4; 0 is __syncthreads).
template <int W>
__device__ __forceinline__ void group_sync(int group) { asm volatile("bar.sync %0, %1;\n" ::"r"(group + 1), "n"(32 * W)); }

// Warp w = W·grp + part owns query rows 32·grp .. 32·grp+31 (two m16 tiles). For S it takes keys KW·part .. KW·part+KW−1 of the
// tile, for O the head dims (HD/W)·part .. (HD/W)·(part+1) − 1; the group exchanges row maxima and P (bf16) through shared
// memory. W = 2, HD = 256: per tile a warp issues 64 + 40 ldmatrix.x4 for 256 mma, instead of 144 when one warp owns 16
// whole rows.
template <int HD, int W>
__device__ __forceinline__ void flash_prefill(const bf16* __restrict__ q, const bf16* __restrict__ k_cache,
                                              const bf16* __restrict__ v_cache, const int* __restrict__ page_table, int pt_stride,
                                              const int* __restrict__ cu_seqlens, const int* __restrict__ past_len, int num_seqs,
                                              int num_tokens, bf16* __restrict__ out, const bf16* __restrict__ gate, int gate_tok_stride,
                                              int gate_head_stride, int num_heads, int num_kv_heads, float scale_log2) {
    using S = PrefillShape<HD, W>;
    extern __shared__ __align__(128) unsigned char smem_raw[];
    bf16* sq = reinterpret_cast<bf16*>(smem_raw);
    bf16* sk = sq + S::BM * HD;  // sk[2][BN*HD] then sv[2][BN*HD]
    bf16* sv = sk + 2 * S::BN * HD;
    bf16* sp = sv + 2 * S::BN * HD;                              // P [BM][BN], swizzled
    float* xmax = reinterpret_cast<float*>(sp + S::BM * S::BN);  // [W parts][BM]
    float* xsum = xmax + W * S::BM;                              // [W parts][BM]

    const int kvh = blockIdx.y;
    const int G = num_heads / num_kv_heads;
    const int TOK = S::BM / G;
    // this block's work item, in the row-sum exchange (first written in the epilogue, long after it is read):
    // sequence (num_seqs: the rows past the last entry, −1: nothing), first row, rows
    int* item = reinterpret_cast<int*>(xsum);
    if (threadIdx.x == 0) {
        const int id = blockIdx.x;
        int lo = 0, hi = num_seqs;  // last b with base(b) <= id
        while (lo < hi) {
            const int mid = (lo + hi + 1) >> 1;
            if (mid + cu_seqlens[mid] / TOK <= id) lo = mid; else hi = mid - 1;
        }
        const int c = id - (lo + cu_seqlens[lo] / TOK);
        int seq = -1, first = 0, rows = 0;
        if (lo == num_seqs) {  // rows past the last entry: TOK per item
            first = cu_seqlens[num_seqs] + c * TOK;
            rows = min(TOK, num_tokens - first);
            seq = c >= 0 && rows > 0 ? lo : -1;
        } else {
            const int n_new = cu_seqlens[lo + 1] - cu_seqlens[lo], nb = (n_new + TOK - 1) / TOK;
            if (c >= 0 && c < nb) {
                const int t0 = (nb - 1 - c) * TOK;  // heaviest block of the sequence first
                seq = lo;
                first = cu_seqlens[lo] + t0;
                rows = min(TOK, n_new - t0);
            }
        }
        item[0] = seq;
        item[1] = first;
        item[2] = rows;
    }
    __syncthreads();
    const int b = item[0];
    if (b < 0) return;
    const int tok_valid = item[2];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, tig = lane & 3;
    const int grp = warp / W, part = warp % W;

    if (b == num_seqs || past_len[b] < 0) {  // no sequence, or a padded one: zero rows, nothing read
        const int first = item[1];
        for (int c = threadIdx.x; c < tok_valid * G * S::CH; c += S::THREADS) {
            const int r = c / S::CH, ch = c % S::CH;
            const int tok = r / G, h = kvh * G + r % G;
            *reinterpret_cast<uint4*>(out + ((size_t)(first + tok) * num_heads + h) * HD + ch * 8) = make_uint4(0, 0, 0, 0);
        }
        return;
    }
    const int past = past_len[b];
    const int row0 = cu_seqlens[b], n_new = cu_seqlens[b + 1] - row0;
    const int t0 = item[1] - row0;
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
    load_kv_tile<HD, W>(sk, sv, k_cache, v_cache, pages[0], kvh, num_kv_heads, 0, kv_total);
    cp_async_commit();

    const int rbase = grp * 32;  // first row of the group
    int pos[2][2];               // [m-tile][row g, row g+8]
#pragma unroll
    for (int mi = 0; mi < 2; mi++) {
        pos[mi][0] = past + t0 + (rbase + 16 * mi + g) / G;
        pos[mi][1] = past + t0 + (rbase + 16 * mi + g + 8) / G;
    }
    const int min_pos = past + t0;
    float o[2][S::NOW][4];
#pragma unroll
    for (int mi = 0; mi < 2; mi++)
#pragma unroll
        for (int i = 0; i < S::NOW; i++) o[mi][i][0] = o[mi][i][1] = o[mi][i][2] = o[mi][i][3] = 0.f;
    float m[2][2], l[2][2];
#pragma unroll
    for (int mi = 0; mi < 2; mi++) m[mi][0] = m[mi][1] = -INFINITY, l[mi][0] = l[mi][1] = 0.f;

    for (int j = 0; j < n_tiles; j++) {
        const int buf = j & 1;
        cp_async_wait<0>();
        __syncthreads();  // K_j, V_j visible; every warp is done with tile j−1 (K/V buffers, P, exchange slots)
        if (j + 1 < n_tiles) {
            load_kv_tile<HD, W>(sk + (buf ^ 1) * S::BN * HD, sv + (buf ^ 1) * S::BN * HD, k_cache, v_cache, pages[j + 1], kvh,
                             num_kv_heads, (j + 1) * S::BN, kv_total);
        }
        cp_async_commit();
        const bf16* tk = sk + buf * S::BN * HD;
        const bf16* tv = sv + buf * S::BN * HD;

        // S[32 rows, KW keys] = Q · Kᵀ for this warp's rows and keys
        float s[2][S::NS][4];
#pragma unroll
        for (int mi = 0; mi < 2; mi++)
#pragma unroll
            for (int i = 0; i < S::NS; i++) s[mi][i][0] = s[mi][i][1] = s[mi][i][2] = s[mi][i][3] = 0.f;
#pragma unroll(W == 2 ? S::KSTEPS : 4)  // W = 4 has 128 registers: full unrolling would spill
        for (int ks = 0; ks < S::KSTEPS; ks++) {
            uint32_t a0[4], a1[4];
            ldmatrix_x4(a0, smem_u32(sq + swz<S::CH>(rbase + (lane & 15), ks * 2 + (lane >> 4)) * 8));
            ldmatrix_x4(a1, smem_u32(sq + swz<S::CH>(rbase + 16 + (lane & 15), ks * 2 + (lane >> 4)) * 8));
#pragma unroll
            for (int np = 0; np < S::NS / 2; np++) {
                uint32_t kb[4];
                ldmatrix_x4(kb, smem_u32(tk + swz<S::CH>(S::KW * part + np * 16 + (lane & 7) + ((lane >> 4) << 3),
                                                         ks * 2 + ((lane >> 3) & 1)) * 8));
                mma_bf16(s[0][2 * np], a0, kb[0], kb[1]);
                mma_bf16(s[0][2 * np + 1], a0, kb[2], kb[3]);
                mma_bf16(s[1][2 * np], a1, kb[0], kb[1]);
                mma_bf16(s[1][2 * np + 1], a1, kb[2], kb[3]);
            }
        }

        // scale into the log2 domain, causal mask where the tile reaches past the block's first token, row maxima
        const int key0 = j * S::BN + S::KW * part;
        const bool need_mask = j * S::BN + S::BN - 1 > min_pos;
        float mx[2][2];
#pragma unroll
        for (int mi = 0; mi < 2; mi++) {
            mx[mi][0] = mx[mi][1] = -INFINITY;
#pragma unroll
            for (int nt = 0; nt < S::NS; nt++) {
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int key = key0 + nt * 8 + 2 * tig + (e & 1);
                    float v = s[mi][nt][e] * scale_log2;
                    if (need_mask && key > pos[mi][e >> 1]) v = -INFINITY;
                    s[mi][nt][e] = v;
                    mx[mi][e >> 1] = fmaxf(mx[mi][e >> 1], v);
                }
            }
#pragma unroll
            for (int r = 0; r < 2; r++) {
                mx[mi][r] = fmaxf(mx[mi][r], __shfl_xor_sync(0xffffffffu, mx[mi][r], 1));
                mx[mi][r] = fmaxf(mx[mi][r], __shfl_xor_sync(0xffffffffu, mx[mi][r], 2));
                if (tig == 0) xmax[part * S::BM + rbase + 16 * mi + 8 * r + g] = mx[mi][r];
            }
        }
        group_sync<W>(grp);
        float ref[2][2];
#pragma unroll
        for (int mi = 0; mi < 2; mi++) {
#pragma unroll
            for (int r = 0; r < 2; r++) {
                float mn = m[mi][r];
#pragma unroll
                for (int w = 0; w < W; w++) mn = fmaxf(mn, xmax[w * S::BM + rbase + 16 * mi + 8 * r + g]);
                ref[mi][r] = mn == -INFINITY ? 0.f : mn;
                const float alpha = exp2f(m[mi][r] - ref[mi][r]);
                m[mi][r] = mn;
                l[mi][r] *= alpha;
#pragma unroll
                for (int i = 0; i < S::NOW; i++) {
                    o[mi][i][2 * r] *= alpha;
                    o[mi][i][2 * r + 1] *= alpha;
                }
            }
            // P = 2^(s − max), rounded to bf16 into shared memory: rows of the group, keys KW·part + 8nt + 2tig
#pragma unroll
            for (int nt = 0; nt < S::NS; nt++) {
                const float p0 = exp2f(s[mi][nt][0] - ref[mi][0]), p1 = exp2f(s[mi][nt][1] - ref[mi][0]);
                const float p2 = exp2f(s[mi][nt][2] - ref[mi][1]), p3 = exp2f(s[mi][nt][3] - ref[mi][1]);
                l[mi][0] += p0 + p1;
                l[mi][1] += p2 + p3;
                const int ra = rbase + 16 * mi + g, chunk = (S::KW / 8) * part + nt;
                *reinterpret_cast<uint32_t*>(sp + swz<S::CHP>(ra, chunk) * 8 + 2 * tig) = pack_bf16x2(p0, p1);
                *reinterpret_cast<uint32_t*>(sp + swz<S::CHP>(ra + 8, chunk) * 8 + 2 * tig) = pack_bf16x2(p2, p3);
            }
        }
        group_sync<W>(grp);

        // O[32 rows, HD/W dims] += P[32 rows, 64 keys] · V[64 keys, this warp's dims]
#pragma unroll
        for (int kk = 0; kk < S::BN / 16; kk++) {
            uint32_t pa0[4], pa1[4];
            ldmatrix_x4(pa0, smem_u32(sp + swz<S::CHP>(rbase + (lane & 15), kk * 2 + (lane >> 4)) * 8));
            ldmatrix_x4(pa1, smem_u32(sp + swz<S::CHP>(rbase + 16 + (lane & 15), kk * 2 + (lane >> 4)) * 8));
#pragma unroll
            for (int dp = 0; dp < S::NOW / 2; dp++) {
                uint32_t vb[4];
                ldmatrix_x4_trans(vb, smem_u32(tv + swz<S::CH>(kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8,
                                                               part * (S::CH / W) + dp * 2 + (lane >> 4)) * 8));
                mma_bf16(o[0][2 * dp], pa0, vb[0], vb[1]);
                mma_bf16(o[0][2 * dp + 1], pa0, vb[2], vb[3]);
                mma_bf16(o[1][2 * dp], pa1, vb[0], vb[1]);
                mma_bf16(o[1][2 * dp + 1], pa1, vb[2], vb[3]);
            }
        }
    }
    cp_async_wait<0>();

    // Epilogue: add the group's row sums, o / l rounded to bf16 into this warp's part of the Q rows (the group finished
    // reading Q before the last P barrier), then 16-byte stores with the gate applied.
    float inv[2][2];
#pragma unroll
    for (int mi = 0; mi < 2; mi++) {
#pragma unroll
        for (int r = 0; r < 2; r++) {
            l[mi][r] += __shfl_xor_sync(0xffffffffu, l[mi][r], 1);
            l[mi][r] += __shfl_xor_sync(0xffffffffu, l[mi][r], 2);
            if (tig == 0) xsum[part * S::BM + rbase + 16 * mi + 8 * r + g] = l[mi][r];
        }
    }
    group_sync<W>(grp);
#pragma unroll
    for (int mi = 0; mi < 2; mi++) {
#pragma unroll
        for (int r = 0; r < 2; r++) {
            float lt = 0.f;
#pragma unroll
            for (int w = 0; w < W; w++) lt += xsum[w * S::BM + rbase + 16 * mi + 8 * r + g];
            inv[mi][r] = 1.0f / lt;
        }
    }
#pragma unroll
    for (int mi = 0; mi < 2; mi++) {
#pragma unroll
        for (int nt = 0; nt < S::NOW; nt++) {
            const int chunk = part * (S::CH / W) + nt, ra = rbase + 16 * mi + g;
            *reinterpret_cast<uint32_t*>(sq + swz<S::CH>(ra, chunk) * 8 + 2 * tig) =
                pack_bf16x2(o[mi][nt][0] * inv[mi][0], o[mi][nt][1] * inv[mi][0]);
            *reinterpret_cast<uint32_t*>(sq + swz<S::CH>(ra + 8, chunk) * 8 + 2 * tig) =
                pack_bf16x2(o[mi][nt][2] * inv[mi][1], o[mi][nt][3] * inv[mi][1]);
        }
    }
    __syncwarp();
    constexpr int HCH = S::CH / W;  // chunks of this warp's dims per row
    for (int c = lane; c < 32 * HCH; c += 32) {
        const int r = rbase + c / HCH, ch = part * HCH + c % HCH;
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

#define PREFILL_ENTRY(NAME, HD, W, MIN_BLOCKS)                                                                                 \
    extern "C" __global__ void __launch_bounds__(4 * W * 32, MIN_BLOCKS) NAME(                                                 \
        const bf16* q, const bf16* k_cache, const bf16* v_cache, const int* page_table, int pt_stride, const int* cu_seqlens,  \
        const int* past_len, int num_seqs, int num_tokens, bf16* out, const bf16* gate, int gate_tok_stride,                  \
        int gate_head_stride, int num_heads, int num_kv_heads, float scale_log2) {                                            \
        flash_prefill<HD, W>(q, k_cache, v_cache, page_table, pt_stride, cu_seqlens, past_len, num_seqs, num_tokens, out, gate,  \
                          gate_tok_stride, gate_head_stride, num_heads, num_kv_heads, scale_log2);                             \
    }

PREFILL_ENTRY(attention_prefill_hd256, 256, 2, 1)
PREFILL_ENTRY(attention_prefill_hd128, 128, 2, 1)
PREFILL_ENTRY(attention_prefill_hd64, 64, 2, 1)
PREFILL_ENTRY(attention_prefill_hd32, 32, 2, 2)
// Experimental: 16 warps (4 per row group), 64 accumulator registers each; benchmarked against the default, not yet the default.
PREFILL_ENTRY(attention_prefill_hd256_w4, 256, 4, 1)
