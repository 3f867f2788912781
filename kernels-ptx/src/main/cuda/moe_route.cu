// MoE router: per token row, fp32 softmax over the E router logits, top-k (descending; equal probabilities go to the
// lower expert index), optional renormalisation of the k weights in fp32, weights cast to bf16 (transformers 5.17).
//   logits      [rows, logit_stride] bf16 (the router GEMM's output; columns >= experts are ignored, e.g. the
//               shared-expert gate logit when the two projections share one GEMM)
//   topk_ids    [rows, topk] int32, topk_weights [rows, topk] bf16, written in descending order
// One warp per row; lane l holds experts l, l+32, ... in registers (experts <= 32 * ROUTE_MAX_PER_LANE).
// Any row, including garbage in padded rows, yields k distinct ids in [0, experts) and finite weights: a NaN logit counts
// as −inf; +inf logits share the mass; a row with no finite logit (all NaN/−inf) picks experts 0..k−1 with weight 0
// (renormalisation of a zero sum gives 0). MoeRouterKernel.reference has the same rules.
#include "common.cuh"

#define ROUTE_MAX_PER_LANE 32
#define ROUTE_WARPS 8

// Warp-wide argmax with the lowest index winning ties; every lane ends with the winner.
__device__ __forceinline__ void warp_argmax(float& v, int& i) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, v, o);
        int oi = __shfl_xor_sync(0xffffffffu, i, o);
        if (ov > v || (ov == v && oi < i)) { v = ov; i = oi; }
    }
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

extern "C" __global__ void __launch_bounds__(ROUTE_WARPS * 32)
moe_route_topk(const bf16* __restrict__ logits, int logit_stride, int* __restrict__ topk_ids, bf16* __restrict__ topk_weights,
               int rows, int experts, int topk, int renorm) {
    const int lane = threadIdx.x & 31;
    const int row = blockIdx.x * ROUTE_WARPS + (threadIdx.x >> 5);
    if (row >= rows) return;
    const bf16* l = logits + (long)row * logit_stride;
    float p[ROUTE_MAX_PER_LANE];
    float m = -INFINITY;
#pragma unroll
    for (int j = 0; j < ROUTE_MAX_PER_LANE; j++) {
        int e = lane + 32 * j;
        const float v = e < experts ? __bfloat162float(l[e]) : -INFINITY;
        p[j] = isnan(v) ? -INFINITY : v;  // NaN: never preferred over a number
        m = fmaxf(m, p[j]);
    }
    m = warp_max(m);
    // exp(x − max), with x == max giving 1 so that +inf logits do not make inf − inf; all −inf: every mass 0
    float s = 0.f;
#pragma unroll
    for (int j = 0; j < ROUTE_MAX_PER_LANE; j++) {
        int e = lane + 32 * j;
        p[j] = e < experts && m != -INFINITY ? (p[j] == m ? 1.f : expf(p[j] - m)) : 0.f;
        s += p[j];
    }
    s = warp_sum(s);  // >= 1 unless the row has no finite logit
#pragma unroll
    for (int j = 0; j < ROUTE_MAX_PER_LANE; j++) {
        int e = lane + 32 * j;
        p[j] = e < experts ? (s > 0.f ? p[j] / s : 0.f) : -1.f;  // -1: never selected; every expert >= 0 > -2
    }
    // k rounds of warp argmax; the winner's lane retires that expert. Lane-local scan in j order keeps the lowest index.
    float chosen_w = 0.f;  // lane k keeps the k-th weight
    int chosen_e = 0;
    float wsum = 0.f;
    for (int k = 0; k < topk; k++) {
        float bv = -2.f;
        int bi = 0x7fffffff;
#pragma unroll
        for (int j = 0; j < ROUTE_MAX_PER_LANE; j++) {
            if (p[j] > bv) { bv = p[j]; bi = lane + 32 * j; }
        }
        warp_argmax(bv, bi);
        if ((bi & 31) == lane) {
#pragma unroll
            for (int j = 0; j < ROUTE_MAX_PER_LANE; j++) if (lane + 32 * j == bi) p[j] = -1.f;
        }
        if (lane == k) { chosen_w = bv; chosen_e = bi; }
        wsum += bv;  // top-k order, as the reference sums
    }
    if (lane < topk) {
        float w = renorm ? (wsum > 0.f ? chosen_w / wsum : 0.f) : chosen_w;
        topk_ids[(long)row * topk + lane] = chosen_e;
        topk_weights[(long)row * topk + lane] = __float2bfloat16_rn(w);
    }
}
