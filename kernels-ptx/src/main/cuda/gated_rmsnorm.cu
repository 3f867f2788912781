// Gated RMSNorm of the Gated DeltaNet (Qwen3NextRMSNormGated, torch path), per row of `dim` values:
//   n = bf16(x * rsqrt(mean(x^2) + eps));  y = bf16(w * n);  out = bf16(y * silu(z))   (w plain, not 1 + w)
// One warp per row; ROWS rows per block (entry points _r1, _r2, _r4). Each row is reduced by one warp in the
// same order whatever ROWS is, so the three variants give identical bits; only the block shape differs.
// Requires dim % 4 == 0 and dim <= 4 * 32 * MAXC (the launcher checks).
#include "common.cuh"

#define MAXC 2

template <int ROWS>
__device__ __forceinline__ void gated_rmsnorm(const bf16* __restrict__ x, const bf16* __restrict__ z,
                                              const bf16* __restrict__ w, bf16* __restrict__ out, int rows, int dim,
                                              float eps) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const long row = (long)blockIdx.x * ROWS + warp;
    if (row >= rows) return;
    const bf16* xr = x + row * dim;
    const bf16* zr = z + row * dim;
    float xv[MAXC][4], zv[MAXC][4];
    float ss = 0.f;
#pragma unroll
    for (int i = 0; i < MAXC; i++) {
        const int c = (i * 32 + lane) * 4;
        if (c < dim) {
            load4f(xr + c, xv[i]);
            load4f(zr + c, zv[i]);
#pragma unroll
            for (int j = 0; j < 4; j++) ss += xv[i][j] * xv[i][j];
        }
    }
    const float inv = rsqrtf(warp_sum(ss) / (float)dim + eps);
#pragma unroll
    for (int i = 0; i < MAXC; i++) {
        const int c = (i * 32 + lane) * 4;
        if (c < dim) {
            float wf[4], o[4];
            load4f(w + c, wf);
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const float n = round_bf16(xv[i][j] * inv);
                const float y = round_bf16(wf[j] * n);
                o[j] = y * silu_f32(zv[i][j]);
            }
            store4f(out + row * dim + c, o);
        }
    }
}

extern "C" __global__ void __launch_bounds__(32) gated_rmsnorm_bf16_r1(const bf16* x, const bf16* z, const bf16* w, bf16* out,
                                                                       int rows, int dim, float eps) {
    gated_rmsnorm<1>(x, z, w, out, rows, dim, eps);
}
extern "C" __global__ void __launch_bounds__(64) gated_rmsnorm_bf16_r2(const bf16* x, const bf16* z, const bf16* w, bf16* out,
                                                                       int rows, int dim, float eps) {
    gated_rmsnorm<2>(x, z, w, out, rows, dim, eps);
}
extern "C" __global__ void __launch_bounds__(128) gated_rmsnorm_bf16_r4(const bf16* x, const bf16* z, const bf16* w, bf16* out,
                                                                        int rows, int dim, float eps) {
    gated_rmsnorm<4>(x, z, w, out, rows, dim, eps);
}
