// Gated DeltaNet input layout and gates, from the two projection GEMM outputs (QWEN3_NEXT_MODEL.md §3.4 a, b, e):
//   qkvz [T, Hk * (2dk + 2r*dv)] grouped per key head g as [q_g | k_g | v_g (r*dv) | z_g (r*dv)], r = Hv / Hk
//     -> mixed [T, 2*Hk*dk + Hv*dv] = [all q | all k | all v] (the conv input, channel order of conv1d.weight)
//     -> z     [T, Hv*dv]
//   ba   [T, 2*Hv] grouped per key head as [b (r) | a (r)]
//     -> beta [T, Hv] fp32 = bf16(sigmoid(b))   (torch computes it in the bf16 model dtype; stored widened to fp32, which
//                                               is lossless, because the delta-rule kernels read fp32 β)
//     -> g    [T, Hv] fp32 = -exp(A_log) * softplus(a + dt_bias), softplus threshold 20
// A pure permutation of 16-byte vectors (8 bf16; dk % 8 == 0 and dv % 8 == 0) plus one gate pair per (token, head):
// work item i of a token row is a copy vector for i < W/8, else the gates of head i - W/8.
#include "common.cuh"

#define THREADS 256

extern "C" __global__ void __launch_bounds__(THREADS) gdn_split_gating(const bf16* __restrict__ qkvz,
                                                                        const bf16* __restrict__ ba,
                                                                        const float* __restrict__ a_log,
                                                                        const float* __restrict__ dt_bias,
                                                                        bf16* __restrict__ mixed, bf16* __restrict__ z,
                                                                        float* __restrict__ beta, float* __restrict__ g,
                                                                        int tokens, int hk, int hv, int dk, int dv) {
    const int r = hv / hk;
    const int group = 2 * dk + 2 * r * dv;
    const int width = hk * group;            // qkvz row
    const int vecs = width / 8;
    const int per_row = vecs + hv;
    const long item = (long)blockIdx.x * THREADS + threadIdx.x;
    if (item >= (long)tokens * per_row) return;
    const long t = item / per_row;
    const int i = (int)(item - t * per_row);
    if (i < vecs) {
        const int e = i * 8;
        const int grp = e / group, o = e - grp * group;
        const int conv = 2 * hk * dk + hv * dv, rv = r * dv;
        const bf16x8 v = *reinterpret_cast<const bf16x8*>(qkvz + t * width + e);
        bf16* dst;
        if (o < dk) dst = mixed + t * conv + grp * dk + o;
        else if (o < 2 * dk) dst = mixed + t * conv + hk * dk + grp * dk + (o - dk);
        else if (o < 2 * dk + rv) dst = mixed + t * conv + 2 * hk * dk + grp * rv + (o - 2 * dk);
        else dst = z + t * (long)(hv * dv) + grp * rv + (o - 2 * dk - rv);
        *reinterpret_cast<bf16x8*>(dst) = v;
    } else {
        const int h = i - vecs;
        const bf16* row = ba + t * 2 * hv + (h / r) * 2 * r;
        const float b = __bfloat162float(row[h % r]);
        const float a = __bfloat162float(row[r + h % r]) + dt_bias[h];
        beta[t * hv + h] = round_bf16(1.0f / (1.0f + expf(-b)));
        g[t * hv + h] = -expf(a_log[h]) * (a > 20.0f ? a : log1pf(expf(a)));
    }
}
