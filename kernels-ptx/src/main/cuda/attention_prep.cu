// Full-attention input preparation for a varlen batch (QWEN3_NEXT_MODEL.md §3.3, §3.6), bf16 mode of transformers:
//   q_h  = bf16(rmsnorm(query_h) · (1 + q_norm_w))      query_h = qg[t, h, 0:hd] (q_proj's output is [q_h | gate_h] per head)
//   k_h  = bf16(rmsnorm(k[t, h]) · (1 + k_norm_w))       fp32 inside, one rounding (§3.1)
//   partial RoPE (rotate-half, dims i and i + rd/2 for i < rd/2) at position past + (t − cu_seqlens[b]):
//     cos, sin = bf16(cos/sin(fp32(pos) · inv_freq[i mod rd/2]))          (HF casts its fp32 tables to bf16)
//     x'_i = bf16( bf16(x_i · cos_i) + bf16(rot_i · sin_i) ),  rot = [−x[rd/2:rd], x[0:rd/2]]
//   q goes to q_out [T, nH, hd]; k (after RoPE) and v go to their KV page row (layout in attention.cuh).
// Rows t < num_tokens are written. Tokens past cu_seqlens[num_seqs], and sequences with past_len < 0 (padding), get zero q rows and no KV write; a token whose
// page-table entry is −1 gets its q row but no KV write. The gate half of qg is left in place for the attention epilogue.
//
// One warp per (token, head row): rows of a token are its nH q heads, then nKV k heads, then nKV v heads; warp w of the
// grid takes token w / rows, row w % rows. Lane l holds dims 8l .. 8l+7 (one 16-byte access). A block (PREP_WARPS warps)
// spans at most PREP_WARPS tokens; their positions, pages and cos/sin tables are computed once into shared memory.
// Requires head_dim % 8 == 0, head_dim <= 256, rotary_dim even and <= head_dim (the launcher checks).
#include "attention.cuh"

#define PREP_WARPS 8
#define PREP_MAX_HD 256

__device__ __forceinline__ int find_sequence(const int* cu_seqlens, int num_seqs, int t) {
    int lo = 0, hi = num_seqs - 1;  // last b with cu_seqlens[b] <= t
    while (lo < hi) {
        const int mid = (lo + hi + 1) >> 1;
        if (cu_seqlens[mid] <= t) lo = mid; else hi = mid - 1;
    }
    return lo;
}

extern "C" __global__ void __launch_bounds__(PREP_WARPS * 32) attention_prep_bf16(
    const bf16* __restrict__ qg, int qg_stride, const bf16* __restrict__ k, const bf16* __restrict__ v, int kv_stride,
    const bf16* __restrict__ q_norm_w, const bf16* __restrict__ k_norm_w, const float* __restrict__ inv_freq, int rotary_dim,
    const int* __restrict__ cu_seqlens, const int* __restrict__ past_len, const int* __restrict__ page_table, int pt_stride,
    int num_seqs, int num_tokens, int num_heads, int num_kv_heads, int head_dim, float eps,
    bf16* __restrict__ q_out, bf16* __restrict__ k_cache, bf16* __restrict__ v_cache) {
    __shared__ float row_buf[PREP_WARPS][PREP_MAX_HD];
    __shared__ float cos_t[PREP_WARPS][PREP_MAX_HD / 2], sin_t[PREP_WARPS][PREP_MAX_HD / 2];
    __shared__ int tok_pos[PREP_WARPS], tok_page[PREP_WARPS];  // pos < 0: no sequence (zero q, no KV write)
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int rows = num_heads + 2 * num_kv_heads;
    const long first_item = (long)blockIdx.x * PREP_WARPS;
    const int t_first = (int)(first_item / rows);
    const int n_tok = (int)((first_item + PREP_WARPS - 1) / rows) - t_first + 1;
    const int total = cu_seqlens[num_seqs];
    const int half = rotary_dim / 2;

    // This warp's row: its loads go out first, so they overlap the metadata lookups below.
    const long item = first_item + warp;
    const int t = (int)(item / rows), r = (int)(item % rows), j = t - t_first;
    const int c = lane;  // this lane's 16-byte chunk
    const bool active = c * 8 < head_dim && t < num_tokens;
    const bool is_v = r >= num_heads + num_kv_heads, is_q = r < num_heads;
    const int h = is_q ? r : is_v ? r - num_heads - num_kv_heads : r - num_heads;
    uint4 raw = make_uint4(0, 0, 0, 0), wraw = make_uint4(0, 0, 0, 0);
    if (active) {
        const bf16* src = is_q ? qg + (size_t)t * qg_stride + h * 2 * head_dim
                               : (is_v ? v : k) + (size_t)t * kv_stride + h * head_dim;
        raw = *reinterpret_cast<const uint4*>(src + c * 8);
        if (!is_v) wraw = *reinterpret_cast<const uint4*>((is_q ? q_norm_w : k_norm_w) + c * 8);
    }

    if (threadIdx.x < n_tok) {
        const int tt = t_first + threadIdx.x;
        int pos = -1, page = -1;
        if (tt < total) {
            const int b = find_sequence(cu_seqlens, num_seqs, tt);
            const int past = past_len[b];
            if (past >= 0) {
                pos = past + (tt - cu_seqlens[b]);
                page = page_table[(size_t)b * pt_stride + pos / KV_PAGE];
            }
        }
        tok_pos[threadIdx.x] = pos;
        tok_page[threadIdx.x] = page;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < n_tok * half; i += blockDim.x) {
        const int jj = i / half, f = i % half;
        const float angle = (float)max(tok_pos[jj], 0) * inv_freq[f];
        cos_t[jj][f] = round_bf16(cosf(angle));
        sin_t[jj][f] = round_bf16(sinf(angle));
    }
    __syncthreads();

    if (t >= num_tokens) return;  // the grid's last block may run past the rows
    const int pos = tok_pos[j], page = tok_page[j];
    if (r < num_heads) {
        if (pos < 0) {  // no sequence: zero q row
            if (active) *reinterpret_cast<uint4*>(q_out + ((size_t)t * num_heads + r) * head_dim + c * 8) = make_uint4(0, 0, 0, 0);
            return;
        }
    } else if (pos < 0 || page < 0) {
        return;  // K/V rows of padding, or of a token without a page
    }
    const int page_row = pos % KV_PAGE;
    if (is_v) {  // v: copied to its page row as is
        if (active) *reinterpret_cast<uint4*>(v_cache + kv_row_offset(page, h, num_kv_heads, page_row, head_dim) + c * 8) = raw;
        return;
    }
    float x[8], wf[8];
    float ss = 0.f;
    unpack8(*reinterpret_cast<const bf16x8*>(&raw), x);
    unpack8(*reinterpret_cast<const bf16x8*>(&wraw), wf);
#pragma unroll
    for (int i = 0; i < 8; i++) ss += x[i] * x[i];  // inactive lanes hold zeros
    const float inv = 1.0f / sqrtf(warp_sum(ss) / (float)head_dim + eps);
    float* row = row_buf[warp];
    if (active) {
#pragma unroll
        for (int i = 0; i < 8; i++) {
            x[i] = round_bf16(x[i] * inv * (1.0f + wf[i]));
            row[c * 8 + i] = x[i];
        }
    }
    __syncwarp();
    if (!active) return;
    float o[8];
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const int d = c * 8 + i;
        if (d < rotary_dim) {
            const int f = d < half ? d : d - half;
            const float rot = d < half ? -row[d + half] : row[d - half];
            o[i] = round_bf16(x[i] * cos_t[j][f]) + round_bf16(rot * sin_t[j][f]);
        } else {
            o[i] = x[i];
        }
    }
    bf16* dst = is_q ? q_out + ((size_t)t * num_heads + h) * head_dim : k_cache + kv_row_offset(page, h, num_kv_heads, page_row, head_dim);
    *reinterpret_cast<bf16x8*>(dst + c * 8) = pack8(o);
}
