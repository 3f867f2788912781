// Token -> expert grouping on the device (graph-capturable: nothing goes back to the host), the "align block size"
// scheme of fused-MoE kernels. The (token, k) pairs, pair = token * topk + k, are counting-sorted by expert,
// stably (ascending pair index inside an expert), and each expert's segment is padded to a multiple of the grouped
// GEMM's tile height block_m. Three launches over the same chunking of the pairs:
//   moe_align_count    per chunk of ALIGN_CHUNK pairs, how many go to each expert          -> chunk_counts [chunks, E]
//   moe_align_offsets  one block: per-expert prefix over chunks (in place), padded segment starts, the expert of
//                      every m-tile (-1 past the end) and -1 in the padding slots of sorted_pairs
//   moe_align_scatter  per chunk: sorted_pairs[row] = pair, pair_row[pair] = row
// Outputs: expert_start [E + 1] (expert_start[E] = padded rows in use), sorted_pairs [max_tiles * block_m],
// pair_row [pairs], tile_expert [max_tiles]. Expert ids outside [0, E) are dropped (pair_row = -1).
#include "common.cuh"

#define ALIGN_CHUNK 2048
#define ALIGN_THREADS 256
#define ALIGN_WARPS (ALIGN_THREADS / 32)
#define ALIGN_MAX_EXPERTS 1024

extern "C" __global__ void __launch_bounds__(ALIGN_THREADS)
moe_align_count(const int* __restrict__ expert_ids, int* __restrict__ chunk_counts, int pairs, int experts) {
    __shared__ int count[ALIGN_MAX_EXPERTS];
    for (int e = threadIdx.x; e < experts; e += ALIGN_THREADS) count[e] = 0;
    __syncthreads();
    const int base = blockIdx.x * ALIGN_CHUNK;
    for (int i = threadIdx.x; i < ALIGN_CHUNK; i += ALIGN_THREADS) {
        int p = base + i;
        if (p < pairs) {
            int e = expert_ids[p];
            if (e >= 0 && e < experts) atomicAdd(&count[e], 1);  // integer counts: order-independent
        }
    }
    __syncthreads();
    for (int e = threadIdx.x; e < experts; e += ALIGN_THREADS) chunk_counts[(long)blockIdx.x * experts + e] = count[e];
}

// One block of 1024 threads; experts <= 1024.
extern "C" __global__ void __launch_bounds__(1024)
moe_align_offsets(int* __restrict__ chunk_counts, int* __restrict__ expert_start, int* __restrict__ tile_expert,
                  int* __restrict__ sorted_pairs, int chunks, int experts, int block_m, int max_tiles) {
    __shared__ int start[ALIGN_MAX_EXPERTS + 1];
    __shared__ int warp_total[32];
    const int e = threadIdx.x;
    int total = 0;
    if (e < experts) {
        for (int b = 0; b < chunks; b++) {
            int c = chunk_counts[(long)b * experts + e];
            chunk_counts[(long)b * experts + e] = total;
            total += c;
        }
    }
    const int padded = (total + block_m - 1) / block_m * block_m;
    // block-wide exclusive scan of the padded sizes
    const int lane = e & 31, warp = e >> 5;
    int incl = padded;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        int t = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += t;
    }
    if (lane == 31) warp_total[warp] = incl;
    __syncthreads();
    if (warp == 0) {
        int w = warp_total[lane];
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            int t = __shfl_up_sync(0xffffffffu, w, o);
            if (lane >= o) w += t;
        }
        warp_total[lane] = w;  // inclusive over warps
    }
    __syncthreads();
    const int excl = incl - padded + (warp > 0 ? warp_total[warp - 1] : 0);
    if (e < experts) start[e] = excl;
    if (e == experts - 1) start[experts] = excl + padded;
    __syncthreads();
    if (e < experts) expert_start[e] = start[e];
    if (e == 0) expert_start[experts] = start[experts];
    if (e < experts) {
        for (int r = start[e] + total; r < start[e + 1]; r++) sorted_pairs[r] = -1;
    }
    const int used = start[experts];
    for (int t = threadIdx.x; t < max_tiles; t += blockDim.x) {
        int row = t * block_m;
        int owner = -1;
        if (row < used) {
            int lo = 0, hi = experts - 1;  // largest expert with start <= row (empty experts share the next start)
            while (lo < hi) {
                int mid = (lo + hi + 1) >> 1;
                if (start[mid] <= row) lo = mid; else hi = mid - 1;
            }
            owner = lo;
        }
        tile_expert[t] = owner;
    }
}

extern "C" __global__ void __launch_bounds__(ALIGN_THREADS)
moe_align_scatter(const int* __restrict__ expert_ids, const int* __restrict__ chunk_offsets, const int* __restrict__ expert_start,
                  int* __restrict__ sorted_pairs, int* __restrict__ pair_row, int pairs, int experts) {
    __shared__ int next[ALIGN_WARPS][ALIGN_MAX_EXPERTS];  // per warp: next free row of each expert
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int per_warp = ALIGN_CHUNK / ALIGN_WARPS;
    const int base = blockIdx.x * ALIGN_CHUNK + warp * per_warp;
    for (int i = threadIdx.x; i < ALIGN_WARPS * experts; i += ALIGN_THREADS) next[i / experts][i % experts] = 0;
    __syncthreads();
    for (int i = lane; i < per_warp; i += 32) {
        int p = base + i;
        if (p < pairs) {
            int e = expert_ids[p];
            if (e >= 0 && e < experts) atomicAdd(&next[warp][e], 1);
        }
    }
    __syncthreads();
    for (int e = threadIdx.x; e < experts; e += ALIGN_THREADS) {
        int row = expert_start[e] + chunk_offsets[(long)blockIdx.x * experts + e];
        for (int w = 0; w < ALIGN_WARPS; w++) {
            int c = next[w][e];
            next[w][e] = row;
            row += c;
        }
    }
    __syncthreads();
    const unsigned lower = (1u << lane) - 1u;
    for (int i = 0; i < per_warp; i += 32) {
        int p = base + i + lane;
        int e = p < pairs ? expert_ids[p] : -1;
        bool valid = e >= 0 && e < experts;
        if (!valid) e = -1 - (p < pairs ? 0 : 1);  // invalid ids never share a group with valid ones
        unsigned peers = __match_any_sync(0xffffffffu, e);
        int rank = __popc(peers & lower);
        int row = valid ? next[warp][e] + rank : -1;
        __syncwarp();
        if (valid && rank == 0) next[warp][e] += __popc(peers);
        __syncwarp();
        if (p < pairs) {
            pair_row[p] = row;
            if (valid) sorted_pairs[row] = p;
        }
    }
}
