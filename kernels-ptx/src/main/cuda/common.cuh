// Shared helpers for jnext kernels: bf16 vector loads/stores and deterministic reductions.
#pragma once
#include <cuda_bf16.h>
#include <stdint.h>

typedef __nv_bfloat16 bf16;

__device__ __forceinline__ float silu_f32(float x) { return x / (1.0f + expf(-x)); }

// Round a float to bf16 and back: the value torch holds after a bf16 op.
__device__ __forceinline__ float round_bf16(float x) { return __bfloat162float(__float2bfloat16_rn(x)); }

// Butterfly sum over a warp: every lane ends with the same total, same order every launch.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// 8 bf16 values in one 16-byte access.
struct __align__(16) bf16x8 { __nv_bfloat162 h[4]; };
// 4 bf16 values in one 8-byte access.
struct __align__(8) bf16x4 { __nv_bfloat162 h[2]; };

__device__ __forceinline__ void unpack8(const bf16x8& v, float* f) {
#pragma unroll
    for (int i = 0; i < 4; i++) { float2 t = __bfloat1622float2(v.h[i]); f[2 * i] = t.x; f[2 * i + 1] = t.y; }
}
__device__ __forceinline__ bf16x8 pack8(const float* f) {
    bf16x8 v;
#pragma unroll
    for (int i = 0; i < 4; i++) v.h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
    return v;
}
__device__ __forceinline__ void unpack4(const bf16x4& v, float* f) {
#pragma unroll
    for (int i = 0; i < 2; i++) { float2 t = __bfloat1622float2(v.h[i]); f[2 * i] = t.x; f[2 * i + 1] = t.y; }
}
__device__ __forceinline__ bf16x4 pack4(const float* f) {
    bf16x4 v;
#pragma unroll
    for (int i = 0; i < 2; i++) v.h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
    return v;
}

// Vector loads/stores that really are one 16-byte (8 x bf16) or 8-byte (4 x bf16) access: going through
// uint4/uint2 makes nvcc emit ld.global.v4.u32 / v2.u32, where copying the bf16x8/bf16x4 structs above emits
// several 4-byte accesses. Pointers must be 16- / 8-byte aligned.
__device__ __forceinline__ void load8f(const bf16* p, float* f) {
    const uint4 u = *reinterpret_cast<const uint4*>(p);
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
    for (int i = 0; i < 4; i++) { float2 t = __bfloat1622float2(h[i]); f[2 * i] = t.x; f[2 * i + 1] = t.y; }
}
__device__ __forceinline__ void store8f(bf16* p, const float* f) {
    uint4 u;
    __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&u);
#pragma unroll
    for (int i = 0; i < 4; i++) h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
    *reinterpret_cast<uint4*>(p) = u;
}
__device__ __forceinline__ void load4f(const bf16* p, float* f) {
    const uint2 u = *reinterpret_cast<const uint2*>(p);
    const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&u);
#pragma unroll
    for (int i = 0; i < 2; i++) { float2 t = __bfloat1622float2(h[i]); f[2 * i] = t.x; f[2 * i + 1] = t.y; }
}
__device__ __forceinline__ void store4f(bf16* p, const float* f) {
    uint2 u;
    __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&u);
#pragma unroll
    for (int i = 0; i < 2; i++) h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
    *reinterpret_cast<uint2*>(p) = u;
}
