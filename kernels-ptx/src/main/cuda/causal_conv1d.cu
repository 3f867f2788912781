// Causal depthwise conv1d + SiLU of the Gated DeltaNet over [T, C] bf16 rows (C = conv_dim channels, K taps):
//   out[t, c] = bf16(silu(bf16(sum_j w[c, j] * x[t - (K-1) + j, c])))       (fp32 sum; torch's bf16 path rounds the
//   conv output before the SiLU). Inputs before a sequence's first token come from its slot's conv state.
// Conv state pool [slots, C, K-1] bf16 (the model dtype), column 0 the oldest input: a thread's 8 channels x (K-1)
// taps are 8(K-1) consecutive values = (K-1) 16-byte accesses, so both orientations coalesce and this one matches the
// CPU reference (dev.jnext.ops.CausalConv1d) and the design's [slots, conv_dim, K-1]. Weights [C, K] bf16.
// Each thread owns 8 consecutive channels (16-byte loads/stores); C % 8 == 0. Slot -1 = padding: state untouched,
// output rows zeroed.
#include "common.cuh"

#define THREADS 128
#define CHUNK 16   // prefill tokens per thread: all CHUNK rows are loaded before the first is used

template <int K>
__device__ __forceinline__ void load_weights(const bf16* __restrict__ w, int c0, float (&wt)[K][8]) {
    float f[8 * K];
#pragma unroll
    for (int v = 0; v < K; v++) unpack8(*reinterpret_cast<const bf16x8*>(w + (long)c0 * K + v * 8), f + v * 8);
#pragma unroll
    for (int ch = 0; ch < 8; ch++)
#pragma unroll
        for (int j = 0; j < K; j++) wt[j][ch] = f[ch * K + j];
}

// state [C, K-1] slice of 8 channels -> win[j][ch], j = 0 the oldest
template <int K>
__device__ __forceinline__ void load_state(const bf16* __restrict__ st, float (&win)[K - 1][8]) {
    float f[8 * (K - 1)];
#pragma unroll
    for (int v = 0; v < K - 1; v++) unpack8(*reinterpret_cast<const bf16x8*>(st + v * 8), f + v * 8);
#pragma unroll
    for (int ch = 0; ch < 8; ch++)
#pragma unroll
        for (int j = 0; j < K - 1; j++) win[j][ch] = f[ch * (K - 1) + j];
}

template <int K>
__device__ __forceinline__ void store_state(bf16* __restrict__ st, const float (&win)[K - 1][8]) {
    float f[8 * (K - 1)];
#pragma unroll
    for (int ch = 0; ch < 8; ch++)
#pragma unroll
        for (int j = 0; j < K - 1; j++) f[ch * (K - 1) + j] = win[j][ch];
#pragma unroll
    for (int v = 0; v < K - 1; v++) *reinterpret_cast<bf16x8*>(st + v * 8) = pack8(f + v * 8);
}

// out = bf16(silu(bf16(w . [win | x]))), then the window slides by one
template <int K>
__device__ __forceinline__ bf16x8 conv_step(const float (&wt)[K][8], float (&win)[K - 1][8], const float* x) {
    float y[8];
#pragma unroll
    for (int ch = 0; ch < 8; ch++) {
        float acc = 0.f;
#pragma unroll
        for (int j = 0; j < K - 1; j++) acc += wt[j][ch] * win[j][ch];
        acc += wt[K - 1][ch] * x[ch];
        y[ch] = silu_f32(round_bf16(acc));
    }
#pragma unroll
    for (int ch = 0; ch < 8; ch++) {
#pragma unroll
        for (int j = 0; j < K - 2; j++) win[j][ch] = win[j + 1][ch];
        win[K - 2][ch] = x[ch];
    }
    return pack8(y);
}

// ---- prefill: grid (ceil(C / 8 / THREADS), ceil(T / CHUNK) + B), block THREADS ----
// Block y is the n-th chunk of CHUNK tokens counted sequence by sequence (a chunk never crosses a sequence start);
// blocks past the last chunk exit. Chunk 0 of a sequence is the only reader of its slot's old state, so it also writes
// the new one (its final window when the sequence fits in one chunk, else the last K-1 inputs read from x): no other
// block touches that slot.
template <int K>
__device__ __forceinline__ void conv_prefill(const bf16* __restrict__ x, const bf16* __restrict__ w,
                                             bf16* __restrict__ state, const int* __restrict__ cu_seqlens,
                                             const int* __restrict__ slots, bf16* __restrict__ out, int batch,
                                             int channels) {
    __shared__ int chunk[4];   // sequence, its first token, its end, this chunk's first token
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (warp == 0) {
        int remaining = blockIdx.y, found = -1, s0 = 0, s1 = 0, t0 = 0;
        for (int b0 = 0; b0 < batch; b0 += 32) {
            const int b = b0 + lane;
            int a = 0, e = 0, n = 0;
            if (b < batch) {
                a = cu_seqlens[b];
                e = cu_seqlens[b + 1];
                n = (e - a + CHUNK - 1) / CHUNK;
            }
            int incl = n;
#pragma unroll
            for (int o = 1; o < 32; o <<= 1) {
                const int y = __shfl_up_sync(0xffffffffu, incl, o);
                if (lane >= o) incl += y;
            }
            const bool mine = remaining >= incl - n && remaining < incl;
            const unsigned ball = __ballot_sync(0xffffffffu, mine);
            if (ball) {
                const int src = __ffs(ball) - 1;
                found = b0 + src;
                s0 = __shfl_sync(0xffffffffu, a, src);
                s1 = __shfl_sync(0xffffffffu, e, src);
                t0 = s0 + (remaining - __shfl_sync(0xffffffffu, incl - n, src)) * CHUNK;
                break;
            }
            remaining -= __shfl_sync(0xffffffffu, incl, 31);
        }
        if (lane == 0) {
            chunk[0] = found;
            chunk[1] = s0;
            chunk[2] = s1;
            chunk[3] = t0;
        }
    }
    __syncthreads();
    const int seq = chunk[0];
    const int c0 = (blockIdx.x * THREADS + threadIdx.x) * 8;
    if (seq < 0 || c0 >= channels) return;
    const int seq_start = chunk[1], seq_end = chunk[2], t0 = chunk[3];
    const int t1 = min(t0 + CHUNK, seq_end);
    const int slot = slots[seq];
    if (slot < 0) {
        const float zero[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
        for (int t = t0; t < t1; t++) *reinterpret_cast<bf16x8*>(out + (long)t * channels + c0) = pack8(zero);
        return;
    }
    // this chunk's inputs, all loads in flight before the first use
    bf16x8 xin[CHUNK];
#pragma unroll
    for (int i = 0; i < CHUNK; i++)
        if (t0 + i < t1) xin[i] = *reinterpret_cast<const bf16x8*>(x + (long)(t0 + i) * channels + c0);
    float wt[K][8], win[K - 1][8];
    load_weights<K>(w, c0, wt);
    bf16* st = state + ((long)slot * channels + c0) * (K - 1);
    const bool first = t0 == seq_start;
    if (first) {
        load_state<K>(st, win);
        if (seq_end - seq_start > CHUNK) {
            // the new state is the sequence's last K-1 inputs (len > CHUNK >= K-1): read them from x now; the block of
            // the last chunk never touches the state
            float last[K - 1][8];
#pragma unroll
            for (int j = 0; j < K - 1; j++) unpack8(*reinterpret_cast<const bf16x8*>(x + (long)(seq_end - (K - 1) + j) * channels + c0), last[j]);
            store_state<K>(st, last);
        }
    } else {
#pragma unroll
        for (int j = 0; j < K - 1; j++) unpack8(*reinterpret_cast<const bf16x8*>(x + (long)(t0 - (K - 1) + j) * channels + c0), win[j]);
    }
#pragma unroll
    for (int i = 0; i < CHUNK; i++) {
        if (t0 + i < t1) {
            float f[8];
            unpack8(xin[i], f);
            *reinterpret_cast<bf16x8*>(out + (long)(t0 + i) * channels + c0) = conv_step<K>(wt, win, f);
        }
    }
    // a sequence of at most CHUNK tokens: the final window is the last K-1 of [old state | sequence]
    if (first && seq_end - seq_start <= CHUNK) store_state<K>(st, win);
}

// ---- decode: one token per sequence; grid (ceil(C / 8 / THREADS), B), block THREADS ----
// window = [state | x]; out = conv; state <- the last K-1 of the window.
template <int K>
__device__ __forceinline__ void conv_update(const bf16* __restrict__ x, const bf16* __restrict__ w,
                                            bf16* __restrict__ state, const int* __restrict__ slots,
                                            bf16* __restrict__ out, int channels) {
    const int seq = blockIdx.y;
    const int c0 = (blockIdx.x * THREADS + threadIdx.x) * 8;
    if (c0 >= channels) return;
    const long at = (long)seq * channels + c0;
    const int slot = slots[seq];
    if (slot < 0) {
        const float zero[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
        *reinterpret_cast<bf16x8*>(out + at) = pack8(zero);
        return;
    }
    bf16* st = state + ((long)slot * channels + c0) * (K - 1);
    float win[K - 1][8], wt[K][8], f[8];
    load_state<K>(st, win);
    unpack8(*reinterpret_cast<const bf16x8*>(x + at), f);
    load_weights<K>(w, c0, wt);
    *reinterpret_cast<bf16x8*>(out + at) = conv_step<K>(wt, win, f);
    store_state<K>(st, win);
}

#define PREFILL(K)                                                                                                    \
    extern "C" __global__ void __launch_bounds__(THREADS) causal_conv1d_prefill_k##K(                                 \
        const bf16* x, const bf16* w, bf16* state, const int* cu_seqlens, const int* slots, bf16* out, int batch,     \
        int channels) {                                                                                               \
        conv_prefill<K>(x, w, state, cu_seqlens, slots, out, batch, channels);                                        \
    }
#define UPDATE(K)                                                                                                     \
    extern "C" __global__ void __launch_bounds__(THREADS) causal_conv1d_update_k##K(                                  \
        const bf16* x, const bf16* w, bf16* state, const int* slots, bf16* out, int channels) {                       \
        conv_update<K>(x, w, state, slots, out, channels);                                                            \
    }
PREFILL(2)
PREFILL(3)
PREFILL(4)
UPDATE(2)
UPDATE(3)
UPDATE(4)
