// Decode expert MLPs: bandwidth-bound GEMVs over the selected experts only (the expert ids are read from device memory,
// so the launch is graph-capturable). Slots s < tokens·topk are the (token, k) pairs; with a shared expert, slots
// tokens·topk + t are token t's shared expert. Same rounding points as the prefill path (moe_gemm.cu, moe_combine.cu).
//   moe_decode_gate_up  grid (inter / 16, slots): act[s, j] = bf16(bf16(silu(bf16(x_t·Wg_e[j]))) · bf16(x_t·Wu_e[j]))
//   moe_decode_down     grid (hidden / 64, slots): contrib[s, h] = bf16(bf16(act_s·Wd_e[h]) · w_s) (shared slot: unweighted),
//                       and the last block of each (token, row block) writes out = bf16(bf16(Σ_k contrib) +
//                       bf16(bf16(sigmoid(g_t)) · contrib[shared slot])) — moe_combine.cu's semantics, in k order
// Weights: gate_up [E, 2I, H] (gate rows then up rows), down [E, H, I]; shared gate_up [2I, H], shared down [H, I]
// (0 = no shared expert). One warp per output; each lane streams 16-byte pieces of the weight rows.
// Constraints (checked by the launcher): hidden % 64 == 0, inter % 16 == 0, inter <= 512 (a slot's activation row and
// its weight pieces stay on chip). Expert ids are bound-checked: a pair whose id is outside [0, experts) reads no weight,
// and its activation row and contribution are zero (the router never writes one; this is the second line of defence).
// Each kernel comes twice from one body: over bf16 weights (moe_decode_gate_up, moe_decode_down) and over fine-grained
// FP8 weights (moe_decode_gate_up_fp8, moe_decode_down_fp8: e4m3 values, one fp32 scale per 128 x 128 block, read as
// one 8-byte load per 8 weights and dequantized as the host loader does, fp8.cuh) — so the FP8 kernels read half the
// bytes and give bit for bit the result of the bf16 kernels on the loader's dequantized image. The FP8 scales of a
// gate|up stack: split = I when gate and up were quantized as separate matrices (the hub's per-expert files), 2I when
// as one (transformers' fused experts); down: split = H.
#include "fp8.cuh"

#define DEC_THREADS 256
#define DEC_WARPS (DEC_THREADS / 32)
#define DEC_COLS_PER_WARP 2

__device__ __forceinline__ float dot8(const bf16x8& w, const float* x) {
    float f[8];
    unpack8(w, f);
    float s = 0.f;
#pragma unroll
    for (int j = 0; j < 8; j++) s = fmaf(f[j], x[j], s);
    return s;
}

// 16-byte load (dereferencing a bf16x8 directly compiles to four 4-byte loads)
__device__ __forceinline__ bf16x8 ld8(const bf16* p) {
    uint4 v = *reinterpret_cast<const uint4*>(p);
    return *reinterpret_cast<bf16x8*>(&v);
}

__device__ __forceinline__ bf16x8 ldg_stream(const bf16* p) {
    // weights are read once per step: keep them from evicting activations in L1
    uint4 v = __ldcs(reinterpret_cast<const uint4*>(p));
    return *reinterpret_cast<bf16x8*>(&v);
}

// A stack of per-expert bf16 matrices [E, rows, cols]: row r of expert e, 8 columns from c.
struct Bf16Experts {
    const bf16* base;
    int rows, cols;
    __device__ __forceinline__ bf16x8 load(int e, int r, int c) const {
        return ldg_stream(base + ((long)e * rows + r) * cols + c);
    }
};

// A stack of per-expert FP8 matrices [E, rows, cols] with scales [E, fp8_scale_rows(rows, split), ceil(cols / 128)].
struct Fp8Experts {
    const uint8_t* base;
    const float* scales;
    int rows, cols, split, scale_rows, scale_cols;
    __device__ __forceinline__ Fp8Experts(const uint8_t* b, const float* s, int r, int c, int sp)
        : base(b), scales(s), rows(r), cols(c), split(sp), scale_rows(fp8_scale_rows(r, sp)), scale_cols((c + 127) >> 7) {}
    __device__ __forceinline__ bf16x8 load(int e, int r, int c) const {
        const uint2 v = __ldcs(reinterpret_cast<const uint2*>(base + ((long)e * rows + r) * cols + c));
        const float s = __ldg(scales + ((long)e * scale_rows + fp8_scale_row(r, split)) * scale_cols + (c >> 7));
        return fp8x8_dequant(v, s);
    }
};

template <typename W>
__device__ __forceinline__ void decode_gate_up(const bf16* __restrict__ x, const int* __restrict__ topk_ids, const W routed,
                                               const W shared, bf16* __restrict__ act, int tokens, int topk, int hidden,
                                               int inter, int experts) {
    extern __shared__ __align__(16) float xs[];  // the token's hidden row, fp32
    const int slot = blockIdx.y;
    const int pairs = tokens * topk;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int col0 = blockIdx.x * (DEC_WARPS * DEC_COLS_PER_WARP) + warp * DEC_COLS_PER_WARP;
    int token, e;
    if (slot < pairs) {
        token = slot / topk;
        e = topk_ids[slot];
        if ((unsigned)e >= (unsigned)experts) {  // not an expert: a zero activation row, no weight read (whole block)
            if (lane < DEC_COLS_PER_WARP) act[(long)slot * inter + col0 + lane] = __float2bfloat16_rn(0.f);
            return;
        }
    } else {
        token = slot - pairs;
        e = 0;
    }
    const W w = slot < pairs ? routed : shared;
    // rows of this warp: gate col0, up col0, gate col0+1, up col0+1
    const int rows[4] = {col0, inter + col0, col0 + 1, inter + col0 + 1};
    // the first group of weight loads is issued before x is staged: both round trips overlap
    bf16x8 wv[4][4];
#pragma unroll
    for (int q = 0; q < 4; q++) {
        const int c = lane * 8 + q * 256;
#pragma unroll
        for (int r = 0; r < 4; r++) wv[q][r] = c < hidden ? w.load(e, rows[r], c) : bf16x8{};
    }
    for (int c = threadIdx.x * 8; c < hidden; c += DEC_THREADS * 8) {
        float f[8];
        unpack8(ld8(x + (long)token * hidden + c), f);
#pragma unroll
        for (int j = 0; j < 8; j++) xs[c + j] = f[j];
    }
    __syncthreads();
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
    for (int c0 = lane * 8; c0 < hidden; c0 += 1024) {
#pragma unroll
        for (int q = 0; q < 4; q++) {
            const int c = c0 + q * 256;
            if (c < hidden) {
                float xv[8];
#pragma unroll
                for (int j = 0; j < 8; j++) xv[j] = xs[c + j];
#pragma unroll
                for (int r = 0; r < 4; r++) acc[r] += dot8(wv[q][r], xv);
            }
        }
        // next group of 4 chunks (16 loads in flight per lane)
#pragma unroll
        for (int q = 0; q < 4; q++) {
            const int c = c0 + 1024 + q * 256;
#pragma unroll
            for (int r = 0; r < 4; r++) wv[q][r] = c < hidden ? w.load(e, rows[r], c) : bf16x8{};
        }
    }
#pragma unroll
    for (int j = 0; j < DEC_COLS_PER_WARP; j++) {
        const float g = round_bf16(warp_sum(acc[2 * j]));
        const float u = round_bf16(warp_sum(acc[2 * j + 1]));
        if (lane == j) act[(long)slot * inter + col0 + j] = __float2bfloat16_rn(round_bf16(silu_f32(g)) * u);
    }
}

extern "C" __global__ void __launch_bounds__(DEC_THREADS)
moe_decode_gate_up(const bf16* __restrict__ x, const int* __restrict__ topk_ids, const bf16* __restrict__ w_gate_up,
                   const bf16* __restrict__ shared_gate_up, bf16* __restrict__ act, int tokens, int topk, int hidden,
                   int inter, int experts) {
    decode_gate_up(x, topk_ids, Bf16Experts{w_gate_up, 2 * inter, hidden}, Bf16Experts{shared_gate_up, 2 * inter, hidden},
                   act, tokens, topk, hidden, inter, experts);
}

// gate_up [E, 2I, H] e4m3 with scales [E, scale_rows(2I, split), ceil(H / 128)]; the shared expert's the same for one matrix
extern "C" __global__ void __launch_bounds__(DEC_THREADS)
moe_decode_gate_up_fp8(const bf16* __restrict__ x, const int* __restrict__ topk_ids, const uint8_t* __restrict__ w_gate_up,
                       const float* __restrict__ w_gate_up_scales, int gate_up_split, const uint8_t* __restrict__ shared_gate_up,
                       const float* __restrict__ shared_gate_up_scales, int shared_split, bf16* __restrict__ act, int tokens,
                       int topk, int hidden, int inter, int experts) {
    decode_gate_up(x, topk_ids, Fp8Experts(w_gate_up, w_gate_up_scales, 2 * inter, hidden, gate_up_split),
                   Fp8Experts(shared_gate_up, shared_gate_up_scales, 2 * inter, hidden, shared_split), act, tokens, topk,
                   hidden, inter, experts);
}

#define DOWN_ROWS_PER_WARP 8
#define DOWN_ROWS_PER_BLOCK (DEC_WARPS * DOWN_ROWS_PER_WARP)

__device__ __forceinline__ float sigmoid_f32(float x) { return 1.0f / (1.0f + expf(-x)); }

// Down projection per slot, then the combine: grid (hidden / 64, slots); each warp 8 rows, 16 loads of 16 bytes in
// flight per lane. contrib[s, h] = bf16(bf16(act_s·Wd_e[h]) · w_s) for routed slots, bf16(act_s·Wsd[h]) for a token's
// shared-expert slot (rows tokens·topk + t). The last block to finish a (token, row block) — a counter in device
// memory, reset by that block — sums the token's k rows in order and adds the gated shared expert (moe_combine.cu's
// semantics): out = bf16(bf16(Σ_k contrib) + bf16(bf16(sigmoid(g_t)) · contrib_shared)).
template <typename W>
__device__ __forceinline__ void decode_down(const bf16* __restrict__ act, const int* __restrict__ topk_ids,
                                            const bf16* __restrict__ topk_weights, const W routed_w, const W shared_w,
                                            bool has_shared, const bf16* __restrict__ gate_logits, int gate_stride,
                                            bf16* __restrict__ contrib, unsigned* __restrict__ counters, bf16* __restrict__ out,
                                            int tokens, int topk, int hidden, int inter, int experts) {
    __shared__ __align__(16) float as[512];  // the slot's activation row, fp32 (inter <= 512)
    __shared__ int last;
    const int slot = blockIdx.y;
    const int pairs = tokens * topk;
    const bool routed = slot < pairs;
    const int token = routed ? slot / topk : slot - pairs;
    const int expert = routed ? __ldg(topk_ids + slot) : 0;
    const bool valid = !routed || (unsigned)expert < (unsigned)experts;  // not an expert: contributes zero, reads no weight
    const W w = routed ? routed_w : shared_w;
    const int e = routed && valid ? expert : 0;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int hb0 = blockIdx.x * DOWN_ROWS_PER_BLOCK;
    const int h0 = hb0 + warp * DOWN_ROWS_PER_WARP;
    // weight loads first: they depend only on the expert id, and overlap the activation staging below
    bf16x8 wv[DOWN_ROWS_PER_WARP][2];
#pragma unroll
    for (int r = 0; r < DOWN_ROWS_PER_WARP; r++)
#pragma unroll
        for (int j = 0; j < 2; j++) {
            const int c = lane * 8 + j * 256;
            wv[r][j] = valid && c < inter ? w.load(e, h0 + r, c) : bf16x8{};
        }
    for (int c = threadIdx.x * 8; c < inter; c += DEC_THREADS * 8) {
        float f[8];
        unpack8(ld8(act + (long)slot * inter + c), f);
#pragma unroll
        for (int j = 0; j < 8; j++) as[c + j] = f[j];
    }
    __syncthreads();
    float s[DOWN_ROWS_PER_WARP];
#pragma unroll
    for (int r = 0; r < DOWN_ROWS_PER_WARP; r++) {
        s[r] = 0.f;
#pragma unroll
        for (int j = 0; j < 2; j++) {
            const int c = lane * 8 + j * 256;
            if (c < inter) s[r] += dot8(wv[r][j], as + c);
        }
    }
    const float wk = routed ? __bfloat162float(topk_weights[slot]) : 1.f;
#pragma unroll
    for (int r = 0; r < DOWN_ROWS_PER_WARP; r++) {
        const float y = round_bf16(warp_sum(s[r]));
        if (lane == r) contrib[(long)slot * hidden + h0 + r] = __float2bfloat16_rn(!valid ? 0.f : routed ? y * wk : y);
    }
    // the last of the token's slots for this row block combines them
    __threadfence();
    __syncthreads();
    unsigned* counter = counters + (long)token * gridDim.x + blockIdx.x;
    if (threadIdx.x == 0) last = atomicAdd(counter, 1u) == (unsigned)(topk + (has_shared ? 1 : 0)) - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    if (threadIdx.x < DOWN_ROWS_PER_BLOCK) {
        const int h = hb0 + threadIdx.x;
        float acc = 0.f;
        for (int k = 0; k < topk; k++) acc += __bfloat162float(__ldcg(contrib + ((long)token * topk + k) * hidden + h));
        if (has_shared) {
            const float sg = round_bf16(sigmoid_f32(__bfloat162float(gate_logits[(long)token * gate_stride])));
            acc = round_bf16(acc) + round_bf16(sg * __bfloat162float(__ldcg(contrib + ((long)pairs + token) * hidden + h)));
        }
        out[(long)token * hidden + h] = __float2bfloat16_rn(acc);
    }
    if (threadIdx.x == 0) *counter = 0;  // ready for the next launch (or graph replay)
}

extern "C" __global__ void __launch_bounds__(DEC_THREADS)
moe_decode_down(const bf16* __restrict__ act, const int* __restrict__ topk_ids, const bf16* __restrict__ topk_weights,
                const bf16* __restrict__ w_down, const bf16* __restrict__ shared_down, const bf16* __restrict__ gate_logits,
                int gate_stride, bf16* __restrict__ contrib, unsigned* __restrict__ counters, bf16* __restrict__ out, int tokens,
                int topk, int hidden, int inter, int experts) {
    decode_down(act, topk_ids, topk_weights, Bf16Experts{w_down, hidden, inter}, Bf16Experts{shared_down, hidden, inter},
                shared_down != nullptr, gate_logits, gate_stride, contrib, counters, out, tokens, topk, hidden, inter, experts);
}

// down [E, H, I] e4m3 with scales [E, ceil(H / 128), ceil(I / 128)]; the shared expert's [H, I] likewise (one matrix)
extern "C" __global__ void __launch_bounds__(DEC_THREADS)
moe_decode_down_fp8(const bf16* __restrict__ act, const int* __restrict__ topk_ids, const bf16* __restrict__ topk_weights,
                    const uint8_t* __restrict__ w_down, const float* __restrict__ w_down_scales,
                    const uint8_t* __restrict__ shared_down, const float* __restrict__ shared_down_scales,
                    const bf16* __restrict__ gate_logits, int gate_stride, bf16* __restrict__ contrib,
                    unsigned* __restrict__ counters, bf16* __restrict__ out, int tokens, int topk, int hidden, int inter,
                    int experts) {
    decode_down(act, topk_ids, topk_weights, Fp8Experts(w_down, w_down_scales, hidden, inter, hidden),
                Fp8Experts(shared_down, shared_down_scales, hidden, inter, hidden), shared_down != nullptr, gate_logits,
                gate_stride, contrib, counters, out, tokens, topk, hidden, inter, experts);
}
