// Zero-centred RMSNorm (Qwen3NextRMSNorm): y = bf16( x * rsqrt(mean(x^2) + eps) * (1 + w) ), all fp32, one rounding.
// add_rmsnorm also folds in the residual add: residual = bf16(residual + delta) (written back), y = rmsnorm(residual).
// One block of 256 threads per row; each thread owns up to MAXV 16-byte vectors of the row in registers.
// Requires hidden % 8 == 0 and hidden <= 256 * 8 * MAXV (the launcher checks).
#include "common.cuh"

#define THREADS 256
#define MAXV 4

__device__ __forceinline__ float block_sum(float v, float* smem) {
    v = warp_sum(v);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    float t = 0.f;
#pragma unroll
    for (int i = 0; i < THREADS / 32; i++) t += smem[i];  // same order in every block
    return t;
}

template <bool ADD>
__device__ __forceinline__ void rmsnorm_row(const bf16* __restrict__ x, bf16* __restrict__ residual,
                                            const bf16* __restrict__ w, bf16* __restrict__ y, int rows, int hidden,
                                            float eps) {
    __shared__ float smem[THREADS / 32];
    const long row = blockIdx.x;
    if (row >= rows) return;
    const bf16* xr = x + row * hidden;
    bf16* rr = ADD ? residual + row * hidden : nullptr;
    float v[MAXV][8];
    float ss = 0.f;
#pragma unroll
    for (int i = 0; i < MAXV; i++) {
        const int c = (i * THREADS + threadIdx.x) * 8;
        if (c < hidden) {
            load8f(xr + c, v[i]);
            if (ADD) {
                float r[8];
                load8f(rr + c, r);
#pragma unroll
                for (int j = 0; j < 8; j++) v[i][j] = round_bf16(v[i][j] + r[j]);
                store8f(rr + c, v[i]);
            }
#pragma unroll
            for (int j = 0; j < 8; j++) ss += v[i][j] * v[i][j];
        }
    }
    const float inv = rsqrtf(block_sum(ss, smem) / (float)hidden + eps);
#pragma unroll
    for (int i = 0; i < MAXV; i++) {
        const int c = (i * THREADS + threadIdx.x) * 8;
        if (c < hidden) {
            float wf[8], o[8];
            load8f(w + c, wf);
#pragma unroll
            for (int j = 0; j < 8; j++) o[j] = v[i][j] * inv * (1.0f + wf[j]);
            store8f(y + row * hidden + c, o);
        }
    }
}

extern "C" __global__ void __launch_bounds__(THREADS) rmsnorm_bf16(const bf16* __restrict__ x, const bf16* __restrict__ w,
                                                                   bf16* __restrict__ y, int rows, int hidden, float eps) {
    rmsnorm_row<false>(x, nullptr, w, y, rows, hidden, eps);
}

// residual <- bf16(residual + delta); y <- rmsnorm(residual)
extern "C" __global__ void __launch_bounds__(THREADS) add_rmsnorm_bf16(const bf16* __restrict__ delta, bf16* __restrict__ residual,
                                                                       const bf16* __restrict__ w, bf16* __restrict__ y,
                                                                       int rows, int hidden, float eps) {
    rmsnorm_row<true>(delta, residual, w, y, rows, hidden, eps);
}
