// SiLU-and-multiply of a fused gate|up projection (the MLP / expert activation), torch bf16 semantics:
//   out[r, i] = bf16( bf16(silu(gate[r, i])) * up[r, i] ),  gate = gate_up[r, 0:inter], up = gate_up[r, inter:2*inter]
// Each thread handles 8 consecutive outputs with 16-byte accesses; requires inter % 8 == 0.
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(256) silu_mul_bf16(const bf16* __restrict__ gate_up, bf16* __restrict__ out,
                                                                int rows, int inter) {
    const int vecs = inter / 8;
    const long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)rows * vecs) return;
    const long row = i / vecs;
    const int c = (int)(i - row * vecs) * 8;
    float g[8], u[8], o[8];
    load8f(gate_up + row * 2 * inter + c, g);
    load8f(gate_up + row * 2 * inter + inter + c, u);
#pragma unroll
    for (int j = 0; j < 8; j++) o[j] = round_bf16(silu_f32(g[j])) * u[j];
    store8f(out + row * inter + c, o);
}
