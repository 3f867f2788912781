// Decode expert MLPs: bandwidth-bound GEMVs over the selected experts only (the expert ids are read from device memory,
// so the launch is graph-capturable). Slots s < tokens·topk are the (token, k) pairs; with a shared expert, slots
// tokens·topk + t are token t's shared expert. Same rounding points as the prefill path (moe_gemm.cu, moe_combine.cu).
//   moe_decode_gate_up  grid (inter / 16, slots): act[s, j] = bf16(bf16(silu(bf16(x_t·Wg_e[j]))) · bf16(x_t·Wu_e[j]))
//   moe_decode_down     grid (hidden / 8, tokens): out[t, h] = bf16( bf16(Σ_k bf16(bf16(act[t,k]·Wd_e[h]) · w_tk))
//                                                                 + bf16(bf16(sigmoid(g_t)) · bf16(act_sh·Wsd[h])) )
// Weights: gate_up [E, 2I, H] (gate rows then up rows), down [E, H, I]; shared gate_up [2I, H], shared down [H, I]
// (0 = no shared expert). One warp per output; each lane streams 16-byte pieces of the weight rows.
// Constraints (checked by the launcher): hidden % 8 == 0, inter % 16 == 0.
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
    for (int c = threadIdx.x * 8; c < hidden; c += DEC_THREADS * 8) {
        float f[8];
        unpack8(*reinterpret_cast<const bf16x8*>(x + (long)token * hidden + c), f);
#pragma unroll
        for (int j = 0; j < 8; j++) xs[c + j] = f[j];
    }
    __syncthreads();
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int col0 = blockIdx.x * (DEC_WARPS * DEC_COLS_PER_WARP) + warp * DEC_COLS_PER_WARP;
    float sg[DEC_COLS_PER_WARP], su[DEC_COLS_PER_WARP];
#pragma unroll
    for (int j = 0; j < DEC_COLS_PER_WARP; j++) sg[j] = su[j] = 0.f;
#pragma unroll 2
    for (int c = lane * 8; c < hidden; c += 256) {
        bf16x8 wg[DEC_COLS_PER_WARP], wu[DEC_COLS_PER_WARP];
#pragma unroll
        for (int j = 0; j < DEC_COLS_PER_WARP; j++) {
            wg[j] = ldg_stream(w + (long)(col0 + j) * hidden + c);
            wu[j] = ldg_stream(w + (long)(inter + col0 + j) * hidden + c);
        }
        float xv[8];
#pragma unroll
        for (int q = 0; q < 8; q++) xv[q] = xs[c + q];
#pragma unroll
        for (int j = 0; j < DEC_COLS_PER_WARP; j++) {
            sg[j] += dot8(wg[j], xv);
            su[j] += dot8(wu[j], xv);
        }
    }
#pragma unroll
    for (int j = 0; j < DEC_COLS_PER_WARP; j++) {
        const float g = round_bf16(warp_sum(sg[j]));
        const float u = round_bf16(warp_sum(su[j]));
        if (lane == j) act[(long)slot * inter + col0 + j] = __float2bfloat16_rn(round_bf16(silu_f32(g)) * u);
    }
}

__device__ __forceinline__ float sigmoid_f32(float x) { return 1.0f / (1.0f + expf(-x)); }

extern "C" __global__ void __launch_bounds__(DEC_THREADS)
moe_decode_down(const bf16* __restrict__ act, const int* __restrict__ topk_ids, const bf16* __restrict__ topk_weights,
                const bf16* __restrict__ w_down, const bf16* __restrict__ shared_down, const bf16* __restrict__ gate_logits,
                int gate_stride, bf16* __restrict__ out, int tokens, int topk, int hidden, int inter) {
    extern __shared__ __align__(16) float as[];  // [topk (+1)][inter] fp32: this token's activations
    const int t = blockIdx.y;
    const int pairs = tokens * topk;
    const bool has_shared = shared_down != nullptr;
    const int nrows = topk + (has_shared ? 1 : 0);
    for (int i = threadIdx.x * 8; i < nrows * inter; i += DEC_THREADS * 8) {
        const int k = i / inter, c = i - k * inter;
        const long slot = k < topk ? (long)t * topk + k : pairs + t;
        float f[8];
        unpack8(*reinterpret_cast<const bf16x8*>(act + slot * inter + c), f);
#pragma unroll
        for (int j = 0; j < 8; j++) as[i + j] = f[j];
    }
    __syncthreads();
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int h = blockIdx.x * DEC_WARPS + warp;
    float acc = 0.f;
    // groups of 4 experts: their weight loads are all in flight before the first reduction
    for (int k0 = 0; k0 < topk; k0 += 4) {
        float s[4] = {0.f, 0.f, 0.f, 0.f};
        const bf16* w[4];
#pragma unroll
        for (int q = 0; q < 4; q++) {
            const int k = min(k0 + q, topk - 1);
            w[q] = w_down + ((long)topk_ids[(long)t * topk + k] * hidden + h) * inter;
        }
        for (int c = lane * 8; c < inter; c += 256) {
            bf16x8 wv[4];
#pragma unroll
            for (int q = 0; q < 4; q++) wv[q] = k0 + q < topk ? ldg_stream(w[q] + c) : bf16x8{};
#pragma unroll
            for (int q = 0; q < 4; q++) s[q] += dot8(wv[q], as + min(k0 + q, topk - 1) * inter + c);
        }
#pragma unroll
        for (int q = 0; q < 4; q++) {
            const float y = round_bf16(warp_sum(s[q]));
            if (k0 + q < topk) acc += round_bf16(y * __bfloat162float(topk_weights[(long)t * topk + k0 + q]));
        }
    }
    float o = acc;
    if (has_shared) {
        const bf16* w = shared_down + (long)h * inter;
        float s = 0.f;
#pragma unroll 2
        for (int c = lane * 8; c < inter; c += 256) s += dot8(ldg_stream(w + c), as + topk * inter + c);
        const float y = round_bf16(warp_sum(s));
        const float sg = round_bf16(sigmoid_f32(__bfloat162float(gate_logits[(long)t * gate_stride])));
        o = round_bf16(acc) + round_bf16(sg * y);
    }
    if (lane == 0) out[(long)t * hidden + h] = __float2bfloat16_rn(o);
}
