// Helpers shared by the attention kernels (attention_prep.cu, attention_prefill.cu, attention_decode.cu):
// the paged KV layout, swizzled shared-memory tiles, cp.async, ldmatrix, mma.sync m16n8k16 (bf16 -> fp32), movmatrix.
#pragma once
#include "common.cuh"

// Tokens per KV page; also the key-tile height of the prefill and decode kernels (one tile = one page).
#define KV_PAGE 64

// KV pool layout of one layer (KvPages.java): [page][kv_head][KV_PAGE][head_dim] bf16, K and V in separate regions.
__device__ __forceinline__ size_t kv_row_offset(int page, int kv_head, int num_kv_heads, int row, int head_dim) {
    return ((size_t)(page * num_kv_heads + kv_head) * KV_PAGE + row) * head_dim;
}

// Tiles in shared memory are rows of CH 16-byte chunks; chunk c of row r is stored at chunk c ^ (r & mask), so the 8 rows
// an ldmatrix phase reads (same logical chunk) fall into 8 different bank groups.
template <int CH>
__device__ __forceinline__ int swz(int row, int chunk) {
    constexpr int mask = CH >= 8 ? 7 : CH - 1;
    return row * CH + (chunk ^ (row & mask));
}

__device__ __forceinline__ uint32_t smem_u32(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

// 16-byte async copy global -> shared; src_bytes = 0 fills the 16 bytes with zeros (rows past the end of the sequence).
__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t* r, uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t* r, uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}

// d += a · b for one m16n8k16 tile: a = 4 regs (A row-major 16x16), b = 2 regs (B 16x8 "col"), d = 4 fp32.
__device__ __forceinline__ void mma_bf16(float* d, const uint32_t* a, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Transposes an 8x8 b16 matrix held in the ldmatrix fragment layout across the warp.
__device__ __forceinline__ uint32_t movmatrix_trans(uint32_t x) {
    uint32_t y;
    asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;\n" : "=r"(y) : "r"(x));
    return y;
}

// Two floats -> bf16x2 (round to nearest even), lo in the low half (the lower column / address).
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
}

// torch's bf16 output gate: o·sigmoid(g), sigmoid rounded to bf16, the product rounded to bf16 (o already bf16).
__device__ __forceinline__ float gate_bf16(float o_bf16, float g) {
    const float s = round_bf16(1.0f / (1.0f + expf(-g)));
    return o_bf16 * s;
}
