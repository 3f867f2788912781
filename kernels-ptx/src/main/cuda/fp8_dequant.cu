// Dequantizes fine-grained FP8 matrices to bf16 on the device, exactly as the host loader does (fp8.cuh):
//   fp8_dequant_bf16  out[m, r, c] = bf16(float(e4m3(q[m, r, c])) · scales[m, scale_row(r, split), c / 128])
// q [mats, rows, cols] e4m3, scales [mats, scale_rows(rows, split), ceil(cols / 128)] fp32, out [mats, rows, cols] bf16.
// Grid-stride over groups of 8 elements; cols % 8 == 0 and 8-byte aligned q (checked by the launcher).
#include "fp8.cuh"

extern "C" __global__ void __launch_bounds__(256)
fp8_dequant_bf16(const uint8_t* __restrict__ q, const float* __restrict__ scales, bf16* __restrict__ out, int mats, int rows,
                 int cols, int split) {
    const int groups_per_row = cols >> 3;
    const int scale_cols = (cols + 127) >> 7;
    const int scale_rows = fp8_scale_rows(rows, split);
    const long total = (long)mats * rows * groups_per_row;
    for (long g = (long)blockIdx.x * blockDim.x + threadIdx.x; g < total; g += (long)gridDim.x * blockDim.x) {
        const long row_all = g / groups_per_row;  // m · rows + r
        const int c = (int)(g - row_all * groups_per_row) << 3;
        const int m = (int)(row_all / rows), r = (int)(row_all - (long)m * rows);
        const float s = __ldg(scales + ((long)m * scale_rows + fp8_scale_row(r, split)) * scale_cols + (c >> 7));
        const uint2 v = __ldcs(reinterpret_cast<const uint2*>(q + row_all * cols + c));
        const bf16x8 w = fp8x8_dequant(v, s);
        *reinterpret_cast<uint4*>(out + row_all * cols + c) = *reinterpret_cast<const uint4*>(&w);
    }
}
