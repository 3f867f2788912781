// Full-attention input preparation, one block per token of a varlen batch (QWEN3_NEXT_MODEL.md §3.3, §3.6), bf16 mode of
// transformers:
//   q_h  = bf16(rmsnorm(query_h) · (1 + q_norm_w))      query_h = qg[t, h, 0:hd] (q_proj's output is [q_h | gate_h] per head)
//   k_h  = bf16(rmsnorm(k[t, h]) · (1 + k_norm_w))       fp32 inside, one rounding (§3.1)
//   partial RoPE (rotate-half, dims i and i + rd/2 for i < rd/2) at position past + (t − cu_seqlens[b]):
//     cos, sin = bf16(cos/sin(fp32(pos) · inv_freq[i mod rd/2]))          (HF casts its fp32 tables to bf16)
//     x'_i = bf16( bf16(x_i · cos_i) + bf16(rot_i · sin_i) ),  rot = [−x[rd/2:rd], x[0:rd/2]]
//   q goes to q_out [T, nH, hd]; k (after RoPE) and v go to their KV page row (layout in attention.cuh).
// Tokens past cu_seqlens[num_seqs], and sequences with past_len < 0 (padding), get zero q rows and no KV write; a token whose
// page-table entry is −1 gets its q row but no KV write. The gate half of qg is left in place for the attention epilogue.
// Requires head_dim % 8 == 0, head_dim <= 512, rotary_dim even and <= head_dim (the launcher checks).
#include "attention.cuh"

#define PREP_WARPS 4
#define PREP_MAX_HD 512
#define PREP_MAX_ROT 512

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
    int num_seqs, int num_heads, int num_kv_heads, int head_dim, float eps,
    bf16* __restrict__ q_out, bf16* __restrict__ k_cache, bf16* __restrict__ v_cache) {
    __shared__ float row_buf[PREP_WARPS][PREP_MAX_HD];
    __shared__ float cos_t[PREP_MAX_ROT / 2], sin_t[PREP_MAX_ROT / 2];
    const int t = blockIdx.x;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int chunks = head_dim / 8;

    bool skip = t >= cu_seqlens[num_seqs];
    int b = 0, pos = 0;
    if (!skip) {
        b = find_sequence(cu_seqlens, num_seqs, t);
        const int past = past_len[b];
        skip = past < 0;
        pos = past + (t - cu_seqlens[b]);
    }
    if (skip) {
        for (int c = threadIdx.x; c < num_heads * chunks; c += blockDim.x) {
            *reinterpret_cast<uint4*>(q_out + (size_t)t * num_heads * head_dim + c * 8) = make_uint4(0, 0, 0, 0);
        }
        return;
    }
    const int page = page_table[(size_t)b * pt_stride + pos / KV_PAGE];
    const int page_row = pos % KV_PAGE;
    const int half = rotary_dim / 2;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        const float angle = (float)pos * inv_freq[i];
        cos_t[i] = round_bf16(cosf(angle));
        sin_t[i] = round_bf16(sinf(angle));
    }
    __syncthreads();

    float* row = row_buf[warp];
    const int rows = num_heads + 2 * num_kv_heads;
    for (int r = warp; r < rows; r += PREP_WARPS) {
        if (r >= num_heads + num_kv_heads) {  // v: copied to its page row as is
            if (page < 0) continue;
            const int h = r - num_heads - num_kv_heads;
            const bf16* src = v + (size_t)t * kv_stride + h * head_dim;
            bf16* dst = v_cache + kv_row_offset(page, h, num_kv_heads, page_row, head_dim);
            for (int c = lane; c < chunks; c += 32) {
                *reinterpret_cast<uint4*>(dst + c * 8) = *reinterpret_cast<const uint4*>(src + c * 8);
            }
            continue;
        }
        const bool is_q = r < num_heads;
        const int h = is_q ? r : r - num_heads;
        if (!is_q && page < 0) continue;
        const bf16* src = is_q ? qg + (size_t)t * qg_stride + h * 2 * head_dim : k + (size_t)t * kv_stride + h * head_dim;
        const bf16* w = is_q ? q_norm_w : k_norm_w;
        float x[PREP_MAX_HD / 256][8];
        float ss = 0.f;
#pragma unroll
        for (int i = 0; i < PREP_MAX_HD / 256; i++) {
            const int c = lane + 32 * i;
            if (c < chunks) {
                unpack8(*reinterpret_cast<const bf16x8*>(src + c * 8), x[i]);
#pragma unroll
                for (int j = 0; j < 8; j++) ss += x[i][j] * x[i][j];
            }
        }
        const float inv = 1.0f / sqrtf(warp_sum(ss) / (float)head_dim + eps);
#pragma unroll
        for (int i = 0; i < PREP_MAX_HD / 256; i++) {
            const int c = lane + 32 * i;
            if (c < chunks) {
                float wf[8];
                unpack8(*reinterpret_cast<const bf16x8*>(w + c * 8), wf);
#pragma unroll
                for (int j = 0; j < 8; j++) {
                    x[i][j] = round_bf16(x[i][j] * inv * (1.0f + wf[j]));
                    row[c * 8 + j] = x[i][j];
                }
            }
        }
        __syncwarp();
        bf16* dst = is_q ? q_out + ((size_t)t * num_heads + h) * head_dim
                         : k_cache + kv_row_offset(page, h, num_kv_heads, page_row, head_dim);
#pragma unroll
        for (int i = 0; i < PREP_MAX_HD / 256; i++) {
            const int c = lane + 32 * i;
            if (c < chunks) {
                float o[8];
#pragma unroll
                for (int j = 0; j < 8; j++) {
                    const int d = c * 8 + j;
                    if (d < rotary_dim) {
                        const int f = d < half ? d : d - half;
                        const float rot = d < half ? -row[d + half] : row[d - half];
                        o[j] = round_bf16(x[i][j] * cos_t[f]) + round_bf16(rot * sin_t[f]);
                    } else {
                        o[j] = x[i][j];
                    }
                }
                *reinterpret_cast<bf16x8*>(dst + c * 8) = pack8(o);
            }
        }
        __syncwarp();
    }
}
