// On-device sampling over bf16 logits rows [rows, stride] (ids < vocab are candidates); token ids written to device
// memory, so a decode step's graph ends with the next tokens and no host work.
//
// Greedy, two levels: argmax_partial (grid (parts, rows): each block its slice) then argmax_final (one warp per row).
// Ties go to the lowest id; a row with a NaN logit yields -1 (the host reports the broken model).
//
// Stochastic (sample_rows, one 1024-thread block per row), the CPU Sampler's semantics without a sort: candidates are
// ordered by logit descending, equal logits by id ascending; temperature T scales the logits; top-k keeps the first k;
// top-p keeps the shortest prefix whose softmax mass (over the top-k set) reaches top_p; min-p keeps logits whose
// probability is at least min_p times the largest; then one draw proportional to the probabilities of the kept set.
// bf16 logits have 2^16 possible values, so the cut-offs are found on a 16-bit ordered key: a 256-bin histogram of the
// high byte, then 256-bin histograms of the low byte inside the bins where top-k and top-p end (radix select). Masses
// exp((l - max) / T) are accumulated as 2^-40 fixed-point integers, so every sum is exact and order-independent
// (deterministic). The kept set is {key > K*} plus the first c* ids with key == K*; the draw is an inverse CDF in id
// order with a Philox4x32-10 number: key = the row's seed, counter = the row's offset, which the kernel increments
// (state in device memory: a replayed graph draws fresh numbers without a host-side seed).
//   params [rows] float4: (temperature (0 = greedy), top_k as float (0 = off), top_p (1 = off), min_p (0 = off))
//   rng    [rows] 2 x u64: (seed, offset)
#include "common.cuh"

#define SAMPLE_THREADS 1024
#define SAMPLE_WARPS (SAMPLE_THREADS / 32)
#define ARGMAX_THREADS 256
#define FIX_SCALE 1099511627776.0f  // 2^40

// bf16 bits -> 16-bit key whose unsigned order is the value order (NaN excluded by the caller).
__device__ __forceinline__ unsigned order_key(unsigned short b) { return (b & 0x8000u) ? (~b & 0xffffu) : (b | 0x8000u); }
__device__ __forceinline__ float key_value(unsigned k) {
    unsigned short b = (k & 0x8000u) ? (unsigned short)(k & 0x7fffu) : (unsigned short)(~k & 0xffffu);
    return __bfloat162float(__ushort_as_bfloat16(b));
}
__device__ __forceinline__ bool bf16_is_nan(unsigned short b) { return (b & 0x7f80u) == 0x7f80u && (b & 0x7fu) != 0; }

// Packed (key, id) so that max() picks the larger key, then the lower id.
__device__ __forceinline__ unsigned long long pack_best(unsigned key, int id) {
    return ((unsigned long long)key << 32) | (0xffffffffu - (unsigned)id);
}

__device__ __forceinline__ unsigned long long warp_max_u64(unsigned long long v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        unsigned long long t = __shfl_xor_sync(0xffffffffu, v, o);
        v = t > v ? t : v;
    }
    return v;
}

// Loads up to 8 logits starting at id i (16-byte load when all 8 are candidates); returns how many are valid.
__device__ __forceinline__ int load8(const bf16* row, int i, int vocab, unsigned short* b) {
    if (i + 8 <= vocab) {
        uint4 v = *reinterpret_cast<const uint4*>(row + i);
        const unsigned short* s = reinterpret_cast<const unsigned short*>(&v);
#pragma unroll
        for (int j = 0; j < 8; j++) b[j] = s[j];
        return 8;
    }
    int n = vocab - i;
#pragma unroll
    for (int j = 0; j < 8; j++) b[j] = j < n ? __bfloat16_as_ushort(row[i + j]) : 0;
    return n < 0 ? 0 : n;
}

// ---------------------------------------------------------------------------------------------- greedy (two levels)

extern "C" __global__ void __launch_bounds__(ARGMAX_THREADS)
argmax_partial(const bf16* __restrict__ logits, int stride, int vocab, int part_len, unsigned long long* __restrict__ partial) {
    const int row = blockIdx.y, part = blockIdx.x;
    const bf16* l = logits + (long)row * stride;
    const int begin = part * part_len, end = min(vocab, begin + part_len);
    unsigned long long best = 0;
    bool nan = false;
    for (int i = begin + threadIdx.x * 8; i < end; i += ARGMAX_THREADS * 8) {
        unsigned short b[8];
        int n = load8(l, i, end, b);
#pragma unroll
        for (int j = 0; j < 8; j++) {
            if (j < n) {
                nan |= bf16_is_nan(b[j]);
                unsigned long long c = pack_best(order_key(b[j]), i + j);
                best = c > best ? c : best;
            }
        }
    }
    __shared__ unsigned long long wbest[ARGMAX_THREADS / 32];
    __shared__ int any_nan;
    if (threadIdx.x == 0) any_nan = 0;
    __syncthreads();
    if (nan) any_nan = 1;
    best = warp_max_u64(best);
    if ((threadIdx.x & 31) == 0) wbest[threadIdx.x >> 5] = best;
    __syncthreads();
    if (threadIdx.x == 0) {
        unsigned long long b = 0;
        for (int w = 0; w < ARGMAX_THREADS / 32; w++) b = wbest[w] > b ? wbest[w] : b;
        partial[(long)row * gridDim.x + part] = any_nan ? ~0ull : b;  // all ones: NaN marker
    }
}

extern "C" __global__ void __launch_bounds__(32)
argmax_final(const unsigned long long* __restrict__ partial, int parts, int* __restrict__ out_ids) {
    const int row = blockIdx.x;
    unsigned long long best = 0;
    bool nan = false;
    for (int p = threadIdx.x; p < parts; p += 32) {
        unsigned long long v = partial[(long)row * parts + p];
        if (v == ~0ull) nan = true; else best = v > best ? v : best;
    }
    best = warp_max_u64(best);
    nan = __any_sync(0xffffffffu, nan);
    if (threadIdx.x == 0) out_ids[row] = nan ? -1 : (int)(0xffffffffu - (unsigned)(best & 0xffffffffu));
}

// ---------------------------------------------------------------------------------------------- Philox4x32-10

__device__ __forceinline__ uint4 philox4x32_10(uint4 c, uint2 k) {
#pragma unroll
    for (int r = 0; r < 10; r++) {
        const unsigned hi0 = __umulhi(0xD2511F53u, c.x), lo0 = 0xD2511F53u * c.x;
        const unsigned hi1 = __umulhi(0xCD9E8D57u, c.z), lo1 = 0xCD9E8D57u * c.z;
        c = make_uint4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
        k.x += 0x9E3779B9u;
        k.y += 0xBB67AE85u;
    }
    return c;
}

// Test hook: out[i] = Philox4x32-10(counter[i], key[i]).
extern "C" __global__ void philox_blocks(const uint4* __restrict__ counter, const uint2* __restrict__ key, uint4* __restrict__ out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = philox4x32_10(counter[i], key[i]);
}

// ---------------------------------------------------------------------------------------------- stochastic

#define COARSE_SHIFT 5
#define COARSE_BINS (65536 >> COARSE_SHIFT)  // 2048 bins of 32 consecutive keys (about a quarter octave)
#define FINE_BINS (1 << COARSE_SHIFT)
#define BINS_PER_THREAD (COARSE_BINS / SAMPLE_THREADS)

struct SampleShared {
    unsigned cnt[COARSE_BINS];
    unsigned long long mass[COARSE_BINS];
    unsigned fine[FINE_BINS];
    unsigned long long best[SAMPLE_WARPS];
    unsigned long long scan64[SAMPLE_WARPS];
    unsigned scan32[SAMPLE_WARPS];
    unsigned long long z;       // mass of the top-k set
    unsigned long long cum;     // mass before the top-p bin
    int flag;
    int result;
    int k_bin, p_bin;
    unsigned k_need;            // candidates still needed inside k_bin
    unsigned kstar, cstar;      // the kept set: key > kstar, plus the first cstar ids with key == kstar
};

// Block-wide exclusive scan (thread order); every thread also gets the total.
template <typename T>
__device__ __forceinline__ T block_exclusive_scan(T v, T* warp_buf, T& total) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    T incl = v;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        T t = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += t;
    }
    __syncthreads();
    if (lane == 31) warp_buf[warp] = incl;
    __syncthreads();
    if (warp == 0) {
        T w = warp_buf[lane];
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
            T t = __shfl_up_sync(0xffffffffu, w, o);
            if (lane >= o) w += t;
        }
        warp_buf[lane] = w;
    }
    __syncthreads();
    total = warp_buf[SAMPLE_WARPS - 1];
    return incl - v + (warp > 0 ? warp_buf[warp - 1] : T(0));
}

// Probability mass of a key relative to the largest logit, formed as the CPU Sampler does: exp(l/T - max/T).
__device__ __forceinline__ float key_mass(unsigned key, float temperature, float max_scaled) {
    return expf(key_value(key) / temperature - max_scaled);
}
// 2^-40 fixed point: integer sums are exact, so every total is independent of the summation order.
__device__ __forceinline__ unsigned long long fixed_mass(float m) { return (unsigned long long)__float2ull_rn(m * FIX_SCALE); }

// Fine histogram (FINE_BINS keys) of the candidates whose coarse bin is `bin`.
__device__ __forceinline__ void fine_histogram(const bf16* l, int vocab, int bin, unsigned* fine) {
    for (int i = threadIdx.x; i < FINE_BINS; i += SAMPLE_THREADS) fine[i] = 0;
    __syncthreads();
    for (int i = threadIdx.x * 8; i < vocab; i += SAMPLE_THREADS * 8) {
        unsigned short b[8];
        int n = load8(l, i, vocab, b);
#pragma unroll
        for (int j = 0; j < 8; j++) {
            unsigned key = order_key(b[j]);
            if (j < n && (int)(key >> COARSE_SHIFT) == bin) atomicAdd(&fine[key & (FINE_BINS - 1)], 1u);
        }
    }
    __syncthreads();
}

extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS, 1)
sample_rows(const bf16* __restrict__ logits, int stride, int vocab, const float4* __restrict__ params,
            unsigned long long* __restrict__ rng, int* __restrict__ out_ids) {
    __shared__ SampleShared sh;
    const int row = blockIdx.x, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const bf16* l = logits + (long)row * stride;
    const float4 p = params[row];
    const float temperature = p.x, top_p = p.z, min_p = p.w;
    const int top_k = (int)p.y;

    // pass A: largest key (lowest id among equals) and the NaN check; clear the histograms meanwhile
    for (int i = tid; i < COARSE_BINS; i += SAMPLE_THREADS) { sh.cnt[i] = 0; sh.mass[i] = 0; }
    if (tid == 0) { sh.flag = 0; sh.result = -1; sh.k_bin = -1; sh.p_bin = -1; sh.cum = 0; sh.z = 0; }
    unsigned long long best = 0;
    bool nan = false;
    for (int i = tid * 8; i < vocab; i += SAMPLE_THREADS * 8) {
        unsigned short b[8];
        int n = load8(l, i, vocab, b);
#pragma unroll
        for (int j = 0; j < 8; j++) {
            if (j < n) {
                nan |= bf16_is_nan(b[j]);
                unsigned long long c = pack_best(order_key(b[j]), i + j);
                best = c > best ? c : best;
            }
        }
    }
    best = warp_max_u64(best);
    __syncthreads();
    if (lane == 0) sh.best[warp] = best;
    if (nan) sh.flag = 1;
    __syncthreads();
    if (warp == 0) {
        unsigned long long b = warp_max_u64(sh.best[lane]);
        if (lane == 0) sh.best[0] = b;
    }
    __syncthreads();
    best = sh.best[0];
    const int argmax = (int)(0xffffffffu - (unsigned)(best & 0xffffffffu));
    if (sh.flag || vocab <= 0) {
        if (tid == 0) { out_ids[row] = -1; if (temperature > 0.f) rng[2 * row + 1] += 1; }
        return;
    }
    if (!(temperature > 0.f)) {
        if (tid == 0) out_ids[row] = argmax;
        return;
    }
    const unsigned max_key = (unsigned)(best >> 32);
    const float max_scaled = key_value(max_key) / temperature;

    // pass B: coarse histogram: counts and fixed-point masses per bin of 32 keys
    for (int i = tid * 8; i < vocab; i += SAMPLE_THREADS * 8) {
        unsigned short b[8];
        int n = load8(l, i, vocab, b);
#pragma unroll
        for (int j = 0; j < 8; j++) {
            if (j < n) {
                unsigned key = order_key(b[j]);
                atomicAdd(&sh.cnt[key >> COARSE_SHIFT], 1u);
                unsigned long long q = fixed_mass(key_mass(key, temperature, max_scaled));
                if (q) atomicAdd(&sh.mass[key >> COARSE_SHIFT], q);
            }
        }
    }
    __syncthreads();
    // descending scans over the bins: thread t owns bins COARSE_BINS-1-BINS_PER_THREAD*t ... (highest keys first)
    unsigned c_own[BINS_PER_THREAD];
    unsigned long long m_own[BINS_PER_THREAD];
    unsigned c_sum = 0;
    unsigned long long m_sum = 0;
#pragma unroll
    for (int j = 0; j < BINS_PER_THREAD; j++) {
        const int bin = COARSE_BINS - 1 - (BINS_PER_THREAD * tid + j);
        c_own[j] = sh.cnt[bin];
        m_own[j] = sh.mass[bin];
        c_sum += c_own[j];
        m_sum += m_own[j];
    }
    unsigned c_total;
    unsigned long long m_total;
    const unsigned c_before = block_exclusive_scan<unsigned>(c_sum, sh.scan32, c_total);
    const unsigned long long m_before = block_exclusive_scan<unsigned long long>(m_sum, sh.scan64, m_total);

    // top-k: the coarse bin holding the k-th candidate, then its fine histogram
    const bool use_k = top_k > 0 && top_k < vocab;
    if (use_k) {
        unsigned above = c_before;
        unsigned long long mass_above = m_before;
#pragma unroll
        for (int j = 0; j < BINS_PER_THREAD; j++) {
            if (above < (unsigned)top_k && (unsigned)top_k <= above + c_own[j]) {
                sh.k_bin = COARSE_BINS - 1 - (BINS_PER_THREAD * tid + j);
                sh.k_need = (unsigned)top_k - above;
                sh.z = mass_above;  // mass of the bins above k_bin; the fine part is added below
            }
            above += c_own[j];
            mass_above += m_own[j];
        }
        __syncthreads();
        const int k_bin = sh.k_bin;
        fine_histogram(l, vocab, k_bin, sh.fine);
        if (tid == 0) {
            unsigned need = sh.k_need;
            int lo = FINE_BINS - 1;
            unsigned long long z = sh.z;
            while (sh.fine[lo] < need) {
                const unsigned key = ((unsigned)k_bin << COARSE_SHIFT) | lo;
                z += (unsigned long long)sh.fine[lo] * fixed_mass(key_mass(key, temperature, max_scaled));
                need -= sh.fine[lo--];
            }
            sh.kstar = ((unsigned)k_bin << COARSE_SHIFT) | lo;
            sh.cstar = need;
            sh.z = z + (unsigned long long)need * fixed_mass(key_mass(sh.kstar, temperature, max_scaled));
        }
    } else if (tid == 0) {
        sh.kstar = 0;  // no candidate has key 0 (that pattern is a NaN)
        sh.cstar = 0;
        sh.z = m_total;
    }
    __syncthreads();

    // top-p over the top-k set: keep while the mass before a candidate is below top_p * Z
    if (top_p < 1.0f) {
        unsigned long long target = (unsigned long long)((double)top_p * (double)sh.z);
        if (target < 1) target = 1;
        const int k_bin = use_k ? sh.k_bin : -1;
        unsigned long long mass_above = m_before;
#pragma unroll
        for (int j = 0; j < BINS_PER_THREAD; j++) {
            const int bin = COARSE_BINS - 1 - (BINS_PER_THREAD * tid + j);
            // bins above the top-k bin count whole; the top-k bin itself is resolved with its fine histogram
            if (bin > k_bin && mass_above < target && target <= mass_above + m_own[j]) { sh.p_bin = bin; sh.cum = mass_above; }
            if (bin == k_bin && mass_above < target) { sh.p_bin = bin; sh.cum = mass_above; }
            mass_above += m_own[j];
        }
        __syncthreads();
        const int p_bin = sh.p_bin;
        if (p_bin >= 0) {
            if (p_bin != k_bin) fine_histogram(l, vocab, p_bin, sh.fine);
            if (tid == 0) {
                unsigned long long cum = sh.cum;
                for (int lo = FINE_BINS - 1; lo >= 0; lo--) {
                    const unsigned key = ((unsigned)p_bin << COARSE_SHIFT) | lo;
                    unsigned c = sh.fine[lo];
                    if (p_bin == k_bin) {
                        if (key < sh.kstar) break;
                        if (key == sh.kstar) c = sh.cstar;
                    }
                    if (c == 0) continue;
                    const unsigned long long q = fixed_mass(key_mass(key, temperature, max_scaled));
                    if (cum + (unsigned long long)c * q >= target) {
                        // the j-th id of this key is kept iff cum + j*q < target
                        unsigned long long keep = q == 0 ? c : (target - cum + q - 1) / q;
                        sh.kstar = key;
                        sh.cstar = (unsigned)(keep < c ? (keep < 1 ? 1 : keep) : c);
                        break;
                    }
                    cum += (unsigned long long)c * q;
                }
            }
            __syncthreads();
        }
    }
    const unsigned kstar = sh.kstar, cstar = sh.cstar;

    // pass E: inverse CDF in id order; thread t owns the contiguous ids [t*seg, (t+1)*seg).
    // min-p: probability >= min_p times the largest, i.e. mass >= min_p (the largest has mass 1).
    const int seg = ((vocab + SAMPLE_THREADS - 1) / SAMPLE_THREADS + 7) / 8 * 8;
    const int seg_begin = min(vocab, tid * seg), seg_end = min(vocab, seg_begin + seg);
    unsigned n_eq = 0;
    unsigned long long m_above = 0;
    for (int i = seg_begin; i < seg_end; i += 8) {
        unsigned short b[8];
        int n = load8(l, i, seg_end, b);
#pragma unroll
        for (int j = 0; j < 8; j++) {
            if (j < n) {
                const unsigned key = order_key(b[j]);
                if (key == kstar) n_eq++;
                else if (key > kstar) {
                    const float m = key_mass(key, temperature, max_scaled);
                    if (m >= min_p) m_above += fixed_mass(m);
                }
            }
        }
    }
    unsigned eq_total;
    const unsigned eq_before = block_exclusive_scan<unsigned>(n_eq, sh.scan32, eq_total);
    const float m_star = key_mass(kstar, temperature, max_scaled);
    const bool star_ok = kstar != 0 && m_star >= min_p;
    const unsigned long long q_star = fixed_mass(m_star);
    const unsigned eq_kept = star_ok && eq_before < cstar ? min(n_eq, cstar - eq_before) : 0u;
    const unsigned long long mine = m_above + (unsigned long long)eq_kept * q_star;
    unsigned long long total;
    const unsigned long long before = block_exclusive_scan<unsigned long long>(mine, sh.scan64, total);

    // one Philox draw: u uniform in [0, total)
    const unsigned long long seed = rng[2 * row], offset = rng[2 * row + 1];
    const uint4 r = philox4x32_10(make_uint4((unsigned)offset, (unsigned)(offset >> 32), 0u, 0u),
                                  make_uint2((unsigned)seed, (unsigned)(seed >> 32)));
    const unsigned long long u = __umul64hi(((unsigned long long)r.x << 32) | r.y, total);
    if (u >= before && u < before + mine) {
        unsigned long long cum = before;
        unsigned eq_seen = eq_before;
        for (int i = seg_begin; i < seg_end; i++) {
            const unsigned key = order_key(__bfloat16_as_ushort(l[i]));
            unsigned long long q = 0;
            if (key == kstar) {
                if (star_ok && eq_seen < cstar) q = q_star;
                eq_seen++;
            } else if (key > kstar) {
                const float m = key_mass(key, temperature, max_scaled);
                if (m >= min_p) q = fixed_mass(m);
            }
            if (q > 0 && u < cum + q) { sh.result = i; break; }
            cum += q;
        }
    }
    __syncthreads();
    if (tid == 0) {
        // total > 0 always (the largest candidate has mass 2^40); the argmax is only a guard
        out_ids[row] = sh.result >= 0 ? sh.result : argmax;
        rng[2 * row + 1] = offset + 1;
    }
}
