// MoE combine (prefill path): the un-permute that sums each token's k weighted expert rows in a fixed order, plus the
// shared expert with its sigmoid gate, at transformers' bf16 rounding points:
//   routed = bf16( Σ_k contrib[t·topk + k] )            fp32 sum in k order, one rounding (5.17 grouped_mm backend)
//   out    = bf16( routed + bf16( bf16(sigmoid(g_t)) · shared[t] ) ),  g_t = gate_logits[t · gate_stride]
// shared == 0 skips the shared expert (out = routed). One thread per 8 columns; hidden % 8 == 0.
// A pair whose expert id (topk_ids) is outside [0, experts) was dropped by the grouping, so its contrib row was never
// written: it is skipped (contributes zero), never read.
#include "common.cuh"

// 16-byte load (dereferencing a bf16x8 directly compiles to four 4-byte loads)
__device__ __forceinline__ bf16x8 ld8(const bf16* p) {
    uint4 v = *reinterpret_cast<const uint4*>(p);
    return *reinterpret_cast<bf16x8*>(&v);
}

__device__ __forceinline__ float sigmoid_f32(float x) { return 1.0f / (1.0f + expf(-x)); }

extern "C" __global__ void __launch_bounds__(256)
moe_combine(const bf16* __restrict__ contrib, const int* __restrict__ topk_ids, int experts, const bf16* __restrict__ shared,
            const bf16* __restrict__ gate_logits, int gate_stride, bf16* __restrict__ out, int rows, int topk, int hidden) {
    const int vecs = hidden / 8;
    const long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)rows * vecs) return;
    const long t = i / vecs;
    const int c = (int)(i - t * vecs) * 8;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, v[8];
    for (int k = 0; k < topk; k++) {
        if ((unsigned)topk_ids[t * topk + k] >= (unsigned)experts) continue;
        unpack8(ld8(contrib + (t * topk + k) * hidden + c), v);
#pragma unroll
        for (int j = 0; j < 8; j++) acc[j] += v[j];
    }
    if (shared != nullptr) {
        const float sg = round_bf16(sigmoid_f32(__bfloat162float(gate_logits[t * gate_stride])));
        unpack8(ld8(shared + t * hidden + c), v);
#pragma unroll
        for (int j = 0; j < 8; j++) acc[j] = round_bf16(acc[j]) + round_bf16(sg * v[j]);
    }
    *reinterpret_cast<bf16x8*>(out + t * hidden + c) = pack8(acc);
}
