// Causal depthwise conv1d + SiLU of the Gated DeltaNet over [T, C] bf16 rows (C = conv_dim channels, K taps):
//   out[t, c] = bf16(silu(bf16(sum_j w[c, j] * x[t - (K-1) + j, c])))       (fp32 sum; torch's bf16 path rounds the
//   conv output before the SiLU). Inputs before a sequence's first token come from its slot's conv state.
// Conv state pool [slots, C, K-1] bf16 (the model dtype), column 0 the oldest input: a thread's 8 channels x (K-1)
// taps are 8(K-1) consecutive values = (K-1) 16-byte accesses, so both orientations coalesce and this one matches the
// CPU reference (dev.jnext.ops.CausalConv1d) and the design's [slots, conv_dim, K-1]. Weights [C, K] bf16.
// Each thread owns 8 consecutive channels (16-byte loads/stores); C % 8 == 0. Slot -1 = padding: state untouched,
// output rows zeroed. Prefill: entries with no tokens do nothing, and rows past the last entry (cu_seqlens[batch] ..
// tokens-1) get zero outputs, so every row of the step is written whatever the activations there hold.
#include "common.cuh"

#define THREADS 128
#define CHUNK 8    // prefill tokens per thread: all CHUNK rows are loaded before the first is used

// silu of a value that is rounded to bf16 right after: the approximate exp and divide (a few fp32 ulps) are far below
// the bf16 rounding step
__device__ __forceinline__ float silu_fast(float x) { return __fdividef(x, 1.0f + __expf(-x)); }

// 8 bf16 values as 4 packed pairs; element ch of a packed vector as fp32 (bf16 -> fp32 is a shift)
__device__ __forceinline__ float lane_of(const bf16x8& v, int ch) {
    const unsigned u = reinterpret_cast<const unsigned*>(&v)[ch >> 1];
    return __uint_as_float((ch & 1) ? (u & 0xffff0000u) : (u << 16));
}

// weights [C, K] of 8 channels (8K consecutive values) -> wv[j] = tap j of the 8 channels
template <int K>
__device__ __forceinline__ void load_weights(const bf16* __restrict__ w, int c0, bf16x8 (&wv)[K]) {
    float f[8 * K];
#pragma unroll
    for (int v = 0; v < K; v++) unpack8(*reinterpret_cast<const bf16x8*>(w + (long)c0 * K + v * 8), f + v * 8);
#pragma unroll
    for (int j = 0; j < K; j++) {
        float t[8];
#pragma unroll
        for (int ch = 0; ch < 8; ch++) t[ch] = f[ch * K + j];
        wv[j] = pack8(t);   // exact: the values are bf16
    }
}

// state [C, K-1] of 8 channels (8(K-1) consecutive values) <-> win[j] = input j of the 8 channels, j = 0 the oldest
template <int K>
__device__ __forceinline__ void load_state(const bf16* __restrict__ st, bf16x8 (&win)[K - 1]) {
    float f[8 * (K - 1)];
#pragma unroll
    for (int v = 0; v < K - 1; v++) unpack8(*reinterpret_cast<const bf16x8*>(st + v * 8), f + v * 8);
#pragma unroll
    for (int j = 0; j < K - 1; j++) {
        float t[8];
#pragma unroll
        for (int ch = 0; ch < 8; ch++) t[ch] = f[ch * (K - 1) + j];
        win[j] = pack8(t);
    }
}

template <int K>
__device__ __forceinline__ void store_state(bf16* __restrict__ st, const bf16x8 (&win)[K - 1]) {
    float f[8 * (K - 1)];
#pragma unroll
    for (int ch = 0; ch < 8; ch++)
#pragma unroll
        for (int j = 0; j < K - 1; j++) f[ch * (K - 1) + j] = lane_of(win[j], ch);
#pragma unroll
    for (int v = 0; v < K - 1; v++) *reinterpret_cast<bf16x8*>(st + v * 8) = pack8(f + v * 8);
}

// out = bf16(silu(bf16(w . [win | x]))), then the window slides by one
template <int K>
__device__ __forceinline__ bf16x8 conv_step(const bf16x8 (&wv)[K], bf16x8 (&win)[K - 1], const bf16x8& x) {
    float y[8];
#pragma unroll
    for (int ch = 0; ch < 8; ch++) {
        float acc = 0.f;
#pragma unroll
        for (int j = 0; j < K - 1; j++) acc += lane_of(wv[j], ch) * lane_of(win[j], ch);
        acc += lane_of(wv[K - 1], ch) * lane_of(x, ch);
        y[ch] = silu_fast(round_bf16(acc));
    }
#pragma unroll
    for (int j = 0; j < K - 2; j++) win[j] = win[j + 1];
    win[K - 2] = x;
    return pack8(y);
}

// ---- prefill: grid (ceil(C / 8 / THREADS), ceil(T / CHUNK) + B + 1), block THREADS ----
// Block y is the n-th chunk of CHUNK tokens counted sequence by sequence (a chunk never crosses a sequence start), then
// the chunks of the rows past the last entry (zeroed); blocks past those exit. Chunk 0 of a sequence is the only reader of its slot's old state, so it also writes
// the new one (its final window when the sequence fits in one chunk, else the last K-1 inputs read from x): no other
// block touches that slot.
template <int K, int CH>
__device__ __forceinline__ void conv_prefill(const bf16* __restrict__ x, const bf16* __restrict__ w,
                                             bf16* __restrict__ state, const int* __restrict__ cu_seqlens,
                                             const int* __restrict__ slots, bf16* __restrict__ out, int batch,
                                             int tokens, int channels) {
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
                n = (e - a + CH - 1) / CH;
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
                t0 = s0 + (remaining - __shfl_sync(0xffffffffu, incl - n, src)) * CH;
                break;
            }
            remaining -= __shfl_sync(0xffffffffu, incl, 31);
        }
        if (found < 0) {  // past every entry's chunks: the rows after the last entry, CH per chunk (entry `batch`)
            const int end = cu_seqlens[batch], first = end + remaining * CH;
            if (first < tokens) {
                found = batch;
                s0 = end;
                s1 = tokens;
                t0 = first;
            }
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
    const int t1 = min(t0 + CH, seq_end);
    const int slot = seq == batch ? -1 : slots[seq];
    if (slot < 0) {  // a padding entry, or no entry: zero rows, nothing read
        const float zero[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
        for (int t = t0; t < t1; t++) *reinterpret_cast<bf16x8*>(out + (long)t * channels + c0) = pack8(zero);
        return;
    }
    // this chunk's inputs, all loads in flight before the first use
    bf16x8 xin[CH];
#pragma unroll
    for (int i = 0; i < CH; i++)
        if (t0 + i < t1) xin[i] = *reinterpret_cast<const bf16x8*>(x + (long)(t0 + i) * channels + c0);
    bf16x8 wv[K], win[K - 1];
    load_weights<K>(w, c0, wv);
    bf16* st = state + ((long)slot * channels + c0) * (K - 1);
    const bool first = t0 == seq_start;
    if (first) {
        load_state<K>(st, win);
    } else {
#pragma unroll
        for (int j = 0; j < K - 1; j++) win[j] = *reinterpret_cast<const bf16x8*>(x + (long)(t0 - (K - 1) + j) * channels + c0);
    }
#pragma unroll
    for (int i = 0; i < CH; i++) {
        if (t0 + i < t1) *reinterpret_cast<bf16x8*>(out + (long)(t0 + i) * channels + c0) = conv_step<K>(wv, win, xin[i]);
    }
    if (first) {
        // new state = the last K-1 of [old state | sequence]: the final window when the sequence fits in this chunk,
        // else the sequence's last K-1 inputs (len > CH >= K-1), read from x; no other block touches this slot
        if (seq_end - seq_start > CH) {
#pragma unroll
            for (int j = 0; j < K - 1; j++) win[j] = *reinterpret_cast<const bf16x8*>(x + (long)(seq_end - (K - 1) + j) * channels + c0);
        }
        store_state<K>(st, win);
    }
}

// ---- decode: one token per sequence; grid (ceil(C / 8 / THREADS), B), block THREADS ----
// window = [state | x]; out = conv; state <- the last K-1 of the window. The block's slice of the slot (THREADS x 8
// channels x (K-1) taps, contiguous) moves through shared memory with lane-contiguous 16-byte accesses: 2.2x faster on
// an H100 at B = 64 than each thread touching its own 48 bytes at a 48-byte stride. x and w are fetched before the
// slot is known.
template <int K>
__device__ __forceinline__ void conv_update(const bf16* __restrict__ x, const bf16* __restrict__ w,
                                            bf16* __restrict__ state, const int* __restrict__ slots,
                                            bf16* __restrict__ out, int channels) {
    __shared__ bf16x8 slab[(K - 1) * THREADS];
    const int seq = blockIdx.y, tid = threadIdx.x;
    const int cb0 = blockIdx.x * THREADS * 8;                         // the block's first channel
    const int c0 = cb0 + tid * 8;
    const int nvec = min(THREADS, (channels - cb0) / 8) * (K - 1);    // 16-byte vectors of the block's slice
    const long at = (long)seq * channels + c0;
    bf16x8 xv, wv[K];
    if (c0 < channels) {
        xv = *reinterpret_cast<const bf16x8*>(x + at);
        load_weights<K>(w, c0, wv);
    }
    const int slot = slots[seq];
    if (slot < 0) {
        const float zero[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
        if (c0 < channels) *reinterpret_cast<bf16x8*>(out + at) = pack8(zero);
        return;
    }
    bf16x8* st = reinterpret_cast<bf16x8*>(state + ((long)slot * channels + cb0) * (K - 1));
#pragma unroll
    for (int v = 0; v < K - 1; v++)
        if (v * THREADS + tid < nvec) slab[v * THREADS + tid] = st[v * THREADS + tid];
    __syncthreads();
    if (c0 < channels) {
        bf16x8 win[K - 1];
        load_state<K>(reinterpret_cast<const bf16*>(slab + tid * (K - 1)), win);
        *reinterpret_cast<bf16x8*>(out + at) = conv_step<K>(wv, win, xv);
        store_state<K>(reinterpret_cast<bf16*>(slab + tid * (K - 1)), win);
    }
    __syncthreads();
#pragma unroll
    for (int v = 0; v < K - 1; v++)
        if (v * THREADS + tid < nvec) st[v * THREADS + tid] = slab[v * THREADS + tid];
}

#define PREFILL(K)                                                                                                    \
    extern "C" __global__ void __launch_bounds__(THREADS) causal_conv1d_prefill_k##K(                                 \
        const bf16* x, const bf16* w, bf16* state, const int* cu_seqlens, const int* slots, bf16* out, int batch,     \
        int tokens, int channels, int chunk) {                                                                        \
        if (chunk != CHUNK) __trap(); /* the launcher sized the grid for another chunk length */                      \
        conv_prefill<K, CHUNK>(x, w, state, cu_seqlens, slots, out, batch, tokens, channels);                         \
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
