// Decode expert MLPs: bandwidth-bound GEMVs over the selected experts only (the expert ids are read from device memory,
// so the launch is graph-capturable). Slots s < tokens·topk are the (token, k) pairs; with a shared expert, slots
// tokens·topk + t are token t's shared expert. Same rounding points as the prefill path (moe_gemm.cu, moe_combine.cu).
//   moe_decode_gate_up  grid (inter / 16, slots): act[s, j] = bf16(bf16(silu(bf16(x_t·Wg_e[j]))) · bf16(x_t·Wu_e[j]))
//   moe_decode_down     grid (hidden / 8, tokens): out[t, h] = bf16( bf16(Σ_k bf16(bf16(act[t,k]·Wd_e[h]) · w_tk))
//                                                                 + bf16(bf16(sigmoid(g_t)) · bf16(act_sh·Wsd[h])) )
// Weights: gate_up [E, 2I, H] (gate rows then up rows), down [E, H, I]; shared gate_up [2I, H], shared down [H, I]
// (0 = no shared expert). One warp per output; each lane streams 16-byte pieces of the weight rows.
// Constraints (checked by the launcher): hidden % 8 == 0, inter % 16 == 0, inter <= 512 (moe_decode_down keeps a
// whole weight row of 8 experts in registers).
#include "common.cuh"

#define DEC_THREADS 256
#define DEC_WARPS (DEC_THREADS / 32)
#define DEC_COLS_PER_WARP 2

__device__ __forceinline__ float dot8(const bf16x8& w, const float* x) {
    float f[8];
    unpack8(w, f);
    float s = 0.f;
#pragma unroll
    for (int j = 0; j < 8; j++) s = fmaf(f[j], x[j], s);
    return s;
}

// 16-byte load (dereferencing a bf16x8 directly compiles to four 4-byte loads)
__device__ __forceinline__ bf16x8 ld8(const bf16* p) {
    uint4 v = *reinterpret_cast<const uint4*>(p);
    return *reinterpret_cast<bf16x8*>(&v);
}

__device__ __forceinline__ bf16x8 ldg_stream(const bf16* p) {
    // weights are read once per step: keep them from evicting activations in L1
    uint4 v = __ldcs(reinterpret_cast<const uint4*>(p));
    return *reinterpret_cast<bf16x8*>(&v);
}

extern "C" __global__ void __launch_bounds__(DEC_THREADS)
moe_decode_gate_up(const bf16* __restrict__ x, const int* __restrict__ topk_ids, const bf16* __restrict__ w_gate_up,
                   const bf16* __restrict__ shared_gate_up, bf16* __restrict__ act, int tokens, int topk, int hidden,
                   int inter) {
    extern __shared__ __align__(16) float xs[];  // the token's hidden row, fp32
    const int slot = blockIdx.y;
    const int pairs = tokens * topk;
    int token;
    const bf16* w;
    if (slot < pairs) {
        token = slot / topk;
        w = w_gate_up + (long)topk_ids[slot] * 2 * inter * hidden;
    } else {
        token = slot - pairs;
        w = shared_gate_up;
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int col0 = blockIdx.x * (DEC_WARPS * DEC_COLS_PER_WARP) + warp * DEC_COLS_PER_WARP;
    // rows of this warp: gate col0, up col0, gate col0+1, up col0+1
    const bf16* rows[4] = {w + (long)col0 * hidden, w + (long)(inter + col0) * hidden, w + (long)(col0 + 1) * hidden,
                           w + (long)(inter + col0 + 1) * hidden};
    // the first group of weight loads is issued before x is staged: both round trips overlap
    bf16x8 wv[4][4];
#pragma unroll
    for (int q = 0; q < 4; q++) {
        const int c = lane * 8 + q * 256;
#pragma unroll
        for (int r = 0; r < 4; r++) wv[q][r] = c < hidden ? ldg_stream(rows[r] + c) : bf16x8{};
    }
    for (int c = threadIdx.x * 8; c < hidden; c += DEC_THREADS * 8) {
        float f[8];
        unpack8(ld8(x + (long)token * hidden + c), f);
#pragma unroll
        for (int j = 0; j < 8; j++) xs[c + j] = f[j];
    }
    __syncthreads();
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
    for (int c0 = lane * 8; c0 < hidden; c0 += 1024) {
#pragma unroll
        for (int q = 0; q < 4; q++) {
            const int c = c0 + q * 256;
            if (c < hidden) {
                float xv[8];
#pragma unroll
                for (int j = 0; j < 8; j++) xv[j] = xs[c + j];
#pragma unroll
                for (int r = 0; r < 4; r++) acc[r] += dot8(wv[q][r], xv);
            }
        }
        // next group of 4 chunks (16 loads in flight per lane)
#pragma unroll
        for (int q = 0; q < 4; q++) {
            const int c = c0 + 1024 + q * 256;
#pragma unroll
            for (int r = 0; r < 4; r++) wv[q][r] = c < hidden ? ldg_stream(rows[r] + c) : bf16x8{};
        }
    }
#pragma unroll
    for (int j = 0; j < DEC_COLS_PER_WARP; j++) {
        const float g = round_bf16(warp_sum(acc[2 * j]));
        const float u = round_bf16(warp_sum(acc[2 * j + 1]));
        if (lane == j) act[(long)slot * inter + col0 + j] = __float2bfloat16_rn(round_bf16(silu_f32(g)) * u);
    }
}

__device__ __forceinline__ float sigmoid_f32(float x) { return 1.0f / (1.0f + expf(-x)); }

#define DOWN_GROUP 6  // expert rows whose loads are in flight together (12 x 16 bytes per lane)

extern "C" __global__ void __launch_bounds__(DEC_THREADS, 2)
moe_decode_down(const bf16* __restrict__ act, const int* __restrict__ topk_ids, const bf16* __restrict__ topk_weights,
                const bf16* __restrict__ w_down, const bf16* __restrict__ shared_down, const bf16* __restrict__ gate_logits,
                int gate_stride, bf16* __restrict__ out, int tokens, int topk, int hidden, int inter) {
    extern __shared__ __align__(16) float as[];  // [topk (+1)][inter] fp32: this token's activations
    __shared__ const bf16* rows[33];            // weight row h of each expert (row topk: the shared expert)
    const int t = blockIdx.y;
    const int pairs = tokens * topk;
    const bool has_shared = shared_down != nullptr;
    const int nrows = topk + (has_shared ? 1 : 0);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int h = blockIdx.x * DEC_WARPS + warp;
    const int h0 = blockIdx.x * DEC_WARPS;
    // row pointers of the block's first row; a warp adds (h - h0) rows. The first group's ids are read directly
    // (one round trip), its weight loads issued before the activations are staged (overlapping round trips).
    const bf16* first[DOWN_GROUP];
#pragma unroll
    for (int q = 0; q < DOWN_GROUP; q++) {
        const int k = min(q, nrows - 1);
        first[q] = k < topk ? w_down + ((long)__ldg(topk_ids + (long)t * topk + k) * hidden + h) * inter : shared_down + (long)h * inter;
    }
    bf16x8 wv[DOWN_GROUP][2];
#pragma unroll
    for (int q = 0; q < DOWN_GROUP; q++)
#pragma unroll
        for (int j = 0; j < 2; j++) {
            const int c = lane * 8 + j * 256;
            wv[q][j] = (q < nrows && c < inter) ? ldg_stream(first[q] + c) : bf16x8{};
        }
    if (threadIdx.x < nrows)
        rows[threadIdx.x] = threadIdx.x < topk ? w_down + ((long)topk_ids[(long)t * topk + threadIdx.x] * hidden + h0) * inter
                                               : shared_down + (long)h0 * inter;
    for (int i = threadIdx.x * 8; i < nrows * inter; i += DEC_THREADS * 8) {
        const int k = i / inter, c = i - k * inter;
        const long slot = k < topk ? (long)t * topk + k : pairs + t;
        float f[8];
        unpack8(ld8(act + slot * inter + c), f);
#pragma unroll
        for (int j = 0; j < 8; j++) as[i + j] = f[j];
    }
    __syncthreads();
    const long dh = (long)(h - h0) * inter;
    float acc = 0.f, shared_y = 0.f;
    for (int k0 = 0; k0 < nrows; k0 += DOWN_GROUP) {
        float s[DOWN_GROUP];
#pragma unroll
        for (int q = 0; q < DOWN_GROUP; q++) {
            s[q] = 0.f;
#pragma unroll
            for (int j = 0; j < 2; j++) {
                const int c = lane * 8 + j * 256;
                if (c < inter) s[q] += dot8(wv[q][j], as + min(k0 + q, nrows - 1) * inter + c);
            }
        }
        // issue the next group's loads (branch-free, predicated) before this group's reductions
        if (k0 + DOWN_GROUP < nrows) {
#pragma unroll
            for (int q = 0; q < DOWN_GROUP; q++) {
                const int k = k0 + DOWN_GROUP + q;
                const bf16* w = rows[min(k, nrows - 1)] + dh;
#pragma unroll
                for (int j = 0; j < 2; j++) {
                    const int c = lane * 8 + j * 256;
                    wv[q][j] = (k < nrows && c < inter) ? ldg_stream(w + c) : bf16x8{};
                }
            }
        }
#pragma unroll
        for (int q = 0; q < DOWN_GROUP; q++) {
            const int k = k0 + q;
            const float y = round_bf16(warp_sum(s[q]));
            if (k < topk) acc += round_bf16(y * __bfloat162float(topk_weights[(long)t * topk + k]));
            else if (k == topk && has_shared) shared_y = y;
        }
    }
    float o = acc;
    if (has_shared) {
        const float sg = round_bf16(sigmoid_f32(__bfloat162float(gate_logits[(long)t * gate_stride])));
        o = round_bf16(acc) + round_bf16(sg * shared_y);
    }
    if (lane == 0) out[(long)t * hidden + h] = __float2bfloat16_rn(o);
}
