// Fine-grained FP8 weights (the official Qwen3-Next FP8 layout): e4m3 values with one fp32 scale per 128 x 128 block.
// A weight is dequantized exactly as the host loader does (WeightImage): bf16(float(e4m3) · scale_inv), one fp32 product
// rounded to nearest even — so a kernel reading FP8 computes on the same bf16 values as the kernel reading the image
// that the loader would have dequantized, and its result is bit for bit the same.
#pragma once
#include "common.cuh"
#include <cuda_fp8.h>

// Eight e4m3 values (one 8-byte word, element 0 in the lowest byte) times one block scale, as eight bf16.
__device__ __forceinline__ bf16x8 fp8x8_dequant(const uint2 v, const float scale) {
    bf16x8 out;
    const unsigned words[2] = {v.x, v.y};
#pragma unroll
    for (int w = 0; w < 2; w++) {
#pragma unroll
        for (int p = 0; p < 2; p++) {
            const __nv_fp8x2_storage_t pair = (__nv_fp8x2_storage_t)((words[w] >> (16 * p)) & 0xFFFFu);
            const float2 f = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(pair, __NV_E4M3)));
            out.h[2 * w + p] = __floats2bfloat162_rn(__fmul_rn(f.x, scale), __fmul_rn(f.y, scale));
        }
    }
    return out;
}

// The scale row of matrix row r when the rows [0, split) and [split, R) were quantized as two matrices (the hub's
// separate gate_proj / up_proj stacked as gate|up: split = I); split = R for one matrix (transformers' fused experts).
__device__ __forceinline__ int fp8_scale_row(int r, int split) {
    return r < split ? r >> 7 : ((split + 127) >> 7) + ((r - split) >> 7);
}

// Scale rows of one R-row matrix split at split.
__device__ __forceinline__ int fp8_scale_rows(int rows, int split) {
    return ((split + 127) >> 7) + ((rows - split + 127) >> 7);
}
