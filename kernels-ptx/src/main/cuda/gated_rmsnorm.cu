// Gated RMSNorm of the Gated DeltaNet (Qwen3NextRMSNormGated, torch path), per row of `dim` values:
//   n = bf16(x * rsqrt(mean(x^2) + eps));  y = bf16(w * n);  out = bf16(y * silu(z))   (w plain, not 1 + w)
// One warp per row; ROWS rows per block (entry points _r1, _r2, _r4). Each row is reduced by one warp in the
// same order whatever ROWS is, so the three variants give identical bits; only the block shape differs.
// Requires dim % 4 == 0 (the launcher checks). Register caps: r1/r2/r4 keep full occupancy (32 regs).
#include "common.cuh"

// Rows of up to 128 values live in registers (4 per lane); longer rows take a second pass over global memory.
template <int ROWS>
__device__ __forceinline__ void gated_rmsnorm(const bf16* __restrict__ x, const bf16* __restrict__ z,
                                              const bf16* __restrict__ w, bf16* __restrict__ out, int rows, int dim,
                                              float eps) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const long row = (long)blockIdx.x * ROWS + warp;
    if (row >= rows) return;
    const bf16* xr = x + row * dim;
    const bf16* zr = z + row * dim;
    bf16* outr = out + row * dim;
    float xv[4], zv[4];
    float ss = 0.f;
    for (int c = lane * 4; c < dim; c += 128) {
        unpack4(*reinterpret_cast<const bf16x4*>(xr + c), xv);
        if (dim <= 128) unpack4(*reinterpret_cast<const bf16x4*>(zr + c), zv);
#pragma unroll
        for (int j = 0; j < 4; j++) ss += xv[j] * xv[j];
    }
    const float inv = rsqrtf(warp_sum(ss) / (float)dim + eps);
    for (int c = lane * 4; c < dim; c += 128) {
        if (dim > 128) {
            unpack4(*reinterpret_cast<const bf16x4*>(xr + c), xv);
            unpack4(*reinterpret_cast<const bf16x4*>(zr + c), zv);
        }
        float wf[4], o[4];
        unpack4(*reinterpret_cast<const bf16x4*>(w + c), wf);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const float n = round_bf16(xv[j] * inv);
            const float y = round_bf16(wf[j] * n);
            o[j] = y * silu_f32(zv[j]);
        }
        *reinterpret_cast<bf16x4*>(outr + c) = pack4(o);
    }
}

extern "C" __global__ void __launch_bounds__(32, 32) gated_rmsnorm_bf16_r1(const bf16* x, const bf16* z, const bf16* w, bf16* out,
                                                                       int rows, int dim, float eps) {
    gated_rmsnorm<1>(x, z, w, out, rows, dim, eps);
}
extern "C" __global__ void __launch_bounds__(64, 32) gated_rmsnorm_bf16_r2(const bf16* x, const bf16* z, const bf16* w, bf16* out,
                                                                       int rows, int dim, float eps) {
    gated_rmsnorm<2>(x, z, w, out, rows, dim, eps);
}
extern "C" __global__ void __launch_bounds__(128, 16) gated_rmsnorm_bf16_r4(const bf16* x, const bf16* z, const bf16* w, bf16* out,
                                                                        int rows, int dim, float eps) {
    gated_rmsnorm<4>(x, z, w, out, rows, dim, eps);
}
