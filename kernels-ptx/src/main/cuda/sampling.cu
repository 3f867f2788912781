// On-device sampling over bf16 logits rows [rows, stride] (ids < vocab are candidates); token ids written to device
// memory, so a decode step's graph ends with the next tokens and no host work.
//
// Greedy, two levels in one launch: argmax_rows (grid (parts, rows); the last block of a row reduces the partials).
// Ties go to the lowest id; a row with a NaN logit yields -1 (the host reports the broken model).
//
// Stochastic (sample_rows, one 1024-thread block per row), the CPU Sampler's semantics without a sort: candidates are
// ordered by logit descending, equal logits by id ascending; temperature T scales the logits; top-k keeps the first k;
// top-p keeps the shortest prefix whose softmax mass (over the top-k set) reaches top_p; min-p keeps logits whose
// probability is at least min_p times the largest; then one draw proportional to the probabilities of the kept set.
// bf16 logits have 2^16 possible values, so the cut-offs come from an exact histogram of 16-bit ordered keys (the
// 57,344 keys below the largest, in shared memory: every key with nonzero mass), scanned from the top by the whole
// block. Masses exp((l - max)/T) (1 for the largest key: no NaN for any T > 0) are 2^-40 fixed-point integers, so every sum is exact and order-independent
// (deterministic). Three passes over the row: max, histogram, draw. The kept set is {key > K*} plus the first c*
// ids with key == K*; the draw is an inverse CDF in id
// order with a Philox4x32-10 number: key = the row's seed, counter = the row's offset, which the kernel increments
// (state in device memory: a replayed graph draws fresh numbers without a host-side seed).
//   params [rows] 2 x float4: (temperature (0 = greedy), top_k as float (0 = off), top_p (1 = off), min_p (0 = off)),
//                             (repetition penalty (1 = off), presence penalty (0 = off), 0, 0)
//   rng    [rows] 2 x u64: (seed, offset)
//
// Token history (optional, both kernels): bitmask pools seen, generated [num_slots][words] u32 (bit i % 32 of word i / 32
// is token id i) and row_slot [rows], the sequence slot of each row. A row whose slot is −1 (or not below num_slots) is
// padding: its id is −1 and nothing else is read or written for it. Penalties are the CPU Sampler's rules on the bf16
// logits promoted to fp32: v = logit; a seen id: v = v > 0 ? v / rp : v · rp; a generated id: v −= pp (the logits are not
// modified). Greedy compares the penalized fp32 values exactly; the stochastic path orders bf16 keys, so a penalized value
// is rounded to bf16 there (unpenalized ids are unchanged). The picked id is then marked seen and generated in the row's
// slot (atomicOr: order-independent). Rows of one launch must have distinct slots.
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

// fp32 -> 32-bit key whose unsigned order is the value order (NaN excluded); −0 counts as +0 (equal logits: lowest id).
__device__ __forceinline__ unsigned order_key32(float v) {
    const unsigned u = __float_as_uint(v == 0.f ? 0.f : v);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// ---------------------------------------------------------------------------------------------- penalties

// The penalty state of one row: its slot's words of the seen / generated pools (nullptr: that penalty is off).
struct Penalty {
    const unsigned* seen;
    const unsigned* gen;
    float rp, pp;
};

__device__ __forceinline__ Penalty row_penalty(const float4* params, int row, const unsigned* seen, const unsigned* generated,
                                               int words, int slot) {
    Penalty p{nullptr, nullptr, 1.f, 0.f};
    if (params == nullptr || seen == nullptr || slot < 0) return p;
    const float4 q = params[2 * row + 1];
    p.rp = q.x;
    p.pp = q.y;
    if (p.rp != 1.f) p.seen = seen + (long)slot * words;
    if (p.pp != 0.f) p.gen = generated + (long)slot * words;
    return p;
}

// Bits of ids id0 .. id0 + 7 (id0 % 8 == 0) in a row's words: one byte of one word.
__device__ __forceinline__ unsigned mask8(const unsigned* words, int id0) {
    return words != nullptr ? (words[id0 >> 5] >> (id0 & 31)) & 0xffu : 0u;
}

__device__ __forceinline__ float bits_value(unsigned short b) { return __uint_as_float((unsigned)b << 16); }

// The CPU Sampler's penalties on one logit (fp32, exact IEEE operations as in Java; SamplingRules.penalize): a finite
// logit stays finite, saturating at +-FLT_MAX (a repetition penalty of 1e-44 would otherwise make +Inf keys).
__device__ __forceinline__ float penalize(float v, bool seen, bool generated, const Penalty& p) {
    const float v0 = v;
    if (seen) v = v > 0.f ? v / p.rp : v * p.rp;
    if (generated) v -= p.pp;
    if (isfinite(v0) && isinf(v)) v = copysignf(__int_as_float(0x7f7fffff), v);  // FLT_MAX
    return v;
}

// Element j of a piece: its penalized fp32 value, and the same rounded to bf16 bits (the stochastic path's key).
__device__ __forceinline__ float pen_value(unsigned short b, unsigned sm, unsigned gm, int j, const Penalty& p) {
    const bool s = (sm >> j) & 1u, g = (gm >> j) & 1u;
    return (s | g) ? penalize(bits_value(b), s, g, p) : bits_value(b);
}
__device__ __forceinline__ unsigned short pen_bits(unsigned short b, unsigned sm, unsigned gm, int j, const Penalty& p) {
    if ((((sm | gm) >> j) & 1u) == 0u) return b;
    return __bfloat16_as_ushort(__float2bfloat16_rn(penalize(bits_value(b), (sm >> j) & 1u, (gm >> j) & 1u, p)));
}
// The same for any id (the tie walk).
__device__ __forceinline__ unsigned short pen_bits_id(const bf16* l, int i, const Penalty& p) {
    const unsigned short b = __bfloat16_as_ushort(l[i]);
    const unsigned sm = p.seen != nullptr ? p.seen[i >> 5] >> (i & 31) : 0u;
    const unsigned gm = p.gen != nullptr ? p.gen[i >> 5] >> (i & 31) : 0u;
    return pen_bits(b, sm & 1u, gm & 1u, 0, p);
}

// Marks the picked id in the row's slot: seen (the repetition penalty's set) and generated (the presence penalty's).
__device__ __forceinline__ void mark_picked(unsigned* seen, unsigned* generated, int words, int slot, int id) {
    if (seen == nullptr || slot < 0 || id < 0) return;
    const long w = (long)slot * words + (id >> 5);
    const unsigned bit = 1u << (id & 31);
    atomicOr(seen + w, bit);
    atomicOr(generated + w, bit);
}

// Marks the step's input ids as seen in each row's slot (row_slot −1 or out of range: skipped; ids outside
// [0, vocab) ignored). One thread per row.
extern "C" __global__ void history_observe(const int* __restrict__ ids, const int* __restrict__ row_slot, int rows,
                                           unsigned* __restrict__ seen, int words, int num_slots, int vocab) {
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) return;
    const int slot = row_slot[r], id = ids[r];
    if (slot < 0 || slot >= num_slots || id < 0 || id >= vocab) return;
    atomicOr(seen + (long)slot * words + (id >> 5), 1u << (id & 31));
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

// Calls f(piece, bits[8], n, seen_mask, generated_mask) for each 16-byte piece of a row this thread owns: piece
// p = threadIdx.x + 1024 j holds ids 8p .. 8p + 7 (n of them valid: the last piece may be short); the masks are the
// pieces's bits of the row's history (0 without penalties). Four loads are issued before any is used.
template <typename F>
__device__ __forceinline__ void row_pieces(const bf16* l, int vocab, const Penalty& pen, F&& f) {
    const int full = vocab / 8;
    const uint4* v = reinterpret_cast<const uint4*>(l);
    int p = threadIdx.x;
    for (; p + 3 * SAMPLE_THREADS < full; p += 4 * SAMPLE_THREADS) {
        uint4 q[4];
#pragma unroll
        for (int u = 0; u < 4; u++) q[u] = v[p + u * SAMPLE_THREADS];
#pragma unroll
        for (int u = 0; u < 4; u++) {
            const int pc = p + u * SAMPLE_THREADS;
            f(pc, reinterpret_cast<const unsigned short*>(&q[u]), 8, mask8(pen.seen, 8 * pc), mask8(pen.gen, 8 * pc));
        }
    }
    for (; p < full; p += SAMPLE_THREADS) {
        uint4 q = v[p];
        f(p, reinterpret_cast<const unsigned short*>(&q), 8, mask8(pen.seen, 8 * p), mask8(pen.gen, 8 * p));
    }
    if (p == full && vocab % 8 != 0) {
        unsigned short b[8];
        const int n = vocab - 8 * full;
#pragma unroll
        for (int j = 0; j < 8; j++) b[j] = j < n ? __bfloat16_as_ushort(l[8 * full + j]) : 0;
        f(p, b, n, mask8(pen.seen, 8 * p), mask8(pen.gen, 8 * p));
    }
}

// ---------------------------------------------------------------------------------------------- greedy (two levels)

// Grid (parts, rows): each block reduces its slice to a packed (key, id) partial; the last block of a row to finish
// (a per-row counter in device memory, reset by that block) reduces the row's partials in a fixed order. Keys are the
// penalized fp32 values (part_len % 8 == 0, so each 8-id piece is one byte of a history word).
extern "C" __global__ void __launch_bounds__(ARGMAX_THREADS)
argmax_rows(const bf16* __restrict__ logits, int stride, int vocab, int part_len, const float4* __restrict__ params,
            const int* __restrict__ row_slot, unsigned* __restrict__ seen, unsigned* __restrict__ generated, int words,
            int num_slots, unsigned long long* __restrict__ partial, unsigned* __restrict__ counters, int* __restrict__ out_ids) {
    const int row = blockIdx.y, part = blockIdx.x, parts = gridDim.x;
    const int slot = row_slot != nullptr ? row_slot[row] : -1;
    if (row_slot != nullptr && (slot < 0 || slot >= num_slots)) {  // padding row: skipped (no block touches the counter)
        if (part == 0 && threadIdx.x == 0) out_ids[row] = -1;
        return;
    }
    const Penalty pen = row_penalty(params, row, seen, generated, words, slot);
    const bf16* l = logits + (long)row * stride;
    const int begin = part * part_len, end = min(vocab, begin + part_len);
    unsigned long long best = 0;
    bool nan = false;
    for (int i = begin + threadIdx.x * 8; i < end; i += ARGMAX_THREADS * 8) {
        unsigned short b[8];
        int n = load8(l, i, end, b);
        const unsigned sm = mask8(pen.seen, i), gm = mask8(pen.gen, i);
#pragma unroll
        for (int j = 0; j < 8; j++) {
            if (j < n) {
                nan |= bf16_is_nan(b[j]);
                unsigned long long c = pack_best(order_key32(pen_value(b[j], sm, gm, j, pen)), i + j);
                best = c > best ? c : best;
            }
        }
    }
    __shared__ unsigned long long wbest[ARGMAX_THREADS / 32];
    __shared__ int any_nan, last;
    if (threadIdx.x == 0) any_nan = 0;
    __syncthreads();
    if (nan) any_nan = 1;
    best = warp_max_u64(best);
    if ((threadIdx.x & 31) == 0) wbest[threadIdx.x >> 5] = best;
    __syncthreads();
    if (threadIdx.x == 0) {
        unsigned long long b = 0;
        for (int w = 0; w < ARGMAX_THREADS / 32; w++) b = wbest[w] > b ? wbest[w] : b;
        partial[(long)row * parts + part] = any_nan ? ~0ull : b;  // all ones: NaN marker
        __threadfence();
        last = atomicAdd(&counters[row], 1u) == (unsigned)parts - 1;
    }
    __syncthreads();
    if (!last || threadIdx.x >= 32) return;
    __threadfence();
    unsigned long long b = 0;
    bool row_nan = false;
    for (int p = threadIdx.x; p < parts; p += 32) {
        unsigned long long v = __ldcg(partial + (long)row * parts + p);
        if (v == ~0ull) row_nan = true; else b = v > b ? v : b;
    }
    b = warp_max_u64(b);
    row_nan = __any_sync(0xffffffffu, row_nan);
    if (threadIdx.x == 0) {
        const int id = row_nan ? -1 : (int)(0xffffffffu - (unsigned)(b & 0xffffffffu));
        out_ids[row] = id;
        if (row_slot != nullptr) mark_picked(seen, generated, words, slot, id);
        counters[row] = 0;  // ready for the next launch (or graph replay)
    }
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

#define WINDOW_PER_THREAD 56
#define WINDOW (SAMPLE_THREADS * WINDOW_PER_THREAD)  // 57,344 keys below the largest: every key with nonzero mass
                                                    // unless |logits| / T spans ~220 octaves

#define MAX_CHUNKS 24   // per-(chunk, thread) masses kept for vocabularies up to 24 x 8192 = 196,608 ids
#define EQ_CAP 4096     // ids tied at the cut-off key kept in a list (larger ties take a slow, exact walk)

struct SampleShared {
    unsigned long long best[SAMPLE_WARPS];
    unsigned eq_count;
    unsigned long long scan64[SAMPLE_WARPS];
    unsigned scan32[SAMPLE_WARPS];
    unsigned long long z;       // mass of the top-k set
    int flag;
    int result;
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

// Probability mass of a key relative to the largest key, as SamplingRules.mass forms it: 1 for the largest key itself,
// else exp((l - max) / T). Never NaN: l < max, so l - max is negative or -Inf (never Inf - Inf), and so is its quotient
// by any T > 0, however small. (The former exp(l/T - max/T) overflowed l/T to +-Inf for T ~ 1e-38 or l ~ 1e38 and
// gave NaN masses, which broke every sum and cut after them.) Key 0 is a NaN pattern, never a candidate: mass 0.
__device__ __forceinline__ float key_mass(unsigned key, unsigned max_key, float temperature) {
    if (key == max_key) return 1.f;
    if (key == 0u) return 0.f;
    return expf((key_value(key) - key_value(max_key)) / temperature);
}
// 2^-40 fixed point: integer sums are exact, so every total is independent of the summation order.
__device__ __forceinline__ unsigned long long fixed_mass(float m) { return (unsigned long long)__float2ull_rn(m * FIX_SCALE); }

// One 1024-thread block per row; dynamic shared memory: the WINDOW-bin key histogram (u32).
extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS, 1)
sample_rows(const bf16* __restrict__ logits, int stride, int vocab, const float4* __restrict__ params,
            unsigned long long* __restrict__ rng, const int* __restrict__ row_slot, unsigned* __restrict__ seen,
            unsigned* __restrict__ generated, int words, int num_slots, int* __restrict__ out_ids) {
    __shared__ SampleShared sh;
    extern __shared__ unsigned hist[];  // hist[d] = candidates with key == max_key - d
    const int row = blockIdx.x, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int slot = row_slot != nullptr ? row_slot[row] : -1;
    if (row_slot != nullptr && (slot < 0 || slot >= num_slots)) {  // padding row: skipped, its generator untouched
        if (tid == 0) out_ids[row] = -1;
        return;
    }
    const bf16* l = logits + (long)row * stride;
    const float4 p = params[2 * row];
    const float temperature = p.x, top_p = p.z, min_p = p.w;
    const int top_k = (int)p.y;
    const Penalty pen = row_penalty(params, row, seen, generated, words, slot);
    const bool greedy = !(temperature > 0.f);

    // pass A: largest key (lowest id among equals) and the NaN check; clear the histogram meanwhile. Greedy rows key the
    // penalized fp32 values; stochastic rows the penalized bf16 keys, shifted up (their max key is then best >> 48).
    if (!greedy)
        for (int i = tid; i < WINDOW; i += SAMPLE_THREADS) hist[i] = 0;
    if (tid == 0) { sh.flag = 0; sh.result = -1; }
    // a thread visits its ids in increasing order, so a strictly larger key is the only update (lowest id on ties)
    unsigned best_key = 0;
    int best_id = 0;
    bool nan = false;
    row_pieces(l, vocab, pen, [&](int piece, const unsigned short* b, int n, unsigned sm, unsigned gm) {
#pragma unroll
        for (int j = 0; j < 8; j++) {
            if (j < n) {
                nan |= (b[j] & 0x7fffu) > 0x7f80u;
                const unsigned key = greedy ? order_key32(pen_value(b[j], sm, gm, j, pen)) : order_key(pen_bits(b[j], sm, gm, j, pen)) << 16;
                if (key > best_key) { best_key = key; best_id = 8 * piece + j; }
            }
        }
    });
    unsigned long long best = best_key ? pack_best(best_key, best_id) : 0ull;
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
        if (tid == 0) { out_ids[row] = -1; if (!greedy) rng[2 * row + 1] += 1; }
        return;
    }
    if (greedy) {
        if (tid == 0) {
            out_ids[row] = argmax;
            mark_picked(seen, generated, words, slot, argmax);
        }
        return;
    }
    const unsigned max_key = (unsigned)(best >> 48);

    // pass B: exact key histogram over the window below the largest key (integer counts: order-independent)
    row_pieces(l, vocab, pen, [&](int, const unsigned short* b, int n, unsigned sm, unsigned gm) {
#pragma unroll
        for (int j = 0; j < 8; j++) {
            const unsigned d = max_key - order_key(pen_bits(b[j], sm, gm, j, pen));
            if (j < n && d < WINDOW) atomicAdd(&hist[d], 1u);
        }
    });
    __syncthreads();
    // descending scans: thread t owns d in [t*56, t*56+56), i.e. keys max_key - d, highest first
    const int d0 = tid * WINDOW_PER_THREAD;
    unsigned c_sum = 0;
    unsigned long long m_sum = 0;
    for (int j = 0; j < WINDOW_PER_THREAD; j++) {
        const unsigned c = hist[d0 + j];
        if (c) {
            c_sum += c;
            if (d0 + j <= (int)max_key) m_sum += (unsigned long long)c * fixed_mass(key_mass(max_key - (d0 + j), max_key, temperature));
        }
    }
    unsigned c_total;
    unsigned long long m_total;
    const unsigned c_before = block_exclusive_scan<unsigned>(c_sum, sh.scan32, c_total);
    const unsigned long long m_before = block_exclusive_scan<unsigned long long>(m_sum, sh.scan64, m_total);

    // top-k: the thread whose keys hold the k-th candidate finds its key and the mass of the top-k set
    const bool use_k = top_k > 0 && (unsigned)top_k < c_total;
    if (tid == 0) { sh.kstar = 0; sh.cstar = 0; sh.z = m_total; }  // no cut: key 0 is a NaN pattern, never a candidate
    __syncthreads();
    if (use_k && c_before < (unsigned)top_k && (unsigned)top_k <= c_before + c_sum) {
        unsigned above = c_before;
        unsigned long long mass = m_before;
        for (int j = 0; j < WINDOW_PER_THREAD; j++) {
            const unsigned c = hist[d0 + j];
            const unsigned key = max_key - (d0 + j);
            const unsigned long long q = c ? fixed_mass(key_mass(key, max_key, temperature)) : 0;
            if (above + c >= (unsigned)top_k) {
                sh.kstar = key;
                sh.cstar = (unsigned)top_k - above;
                sh.z = mass + (unsigned long long)sh.cstar * q;
                break;
            }
            above += c;
            mass += (unsigned long long)c * q;
        }
    }
    __syncthreads();

    // top-p over the top-k set: keep while the mass before a candidate is below top_p * Z
    if (top_p < 1.0f) {
        unsigned long long target = (unsigned long long)((double)top_p * (double)sh.z);
        if (target < 1) target = 1;
        const unsigned kk = sh.kstar, kc = sh.cstar;
        __syncthreads();
        if (m_before < target && target <= m_before + m_sum) {
            unsigned long long mass = m_before;
            for (int j = 0; j < WINDOW_PER_THREAD; j++) {
                const unsigned key = max_key - (d0 + j);
                if (use_k && key < kk) break;
                unsigned c = hist[d0 + j];
                if (use_k && key == kk) c = kc;
                if (c == 0) continue;
                const unsigned long long q = fixed_mass(key_mass(key, max_key, temperature));
                if (mass + (unsigned long long)c * q >= target) {
                    // the j-th id of this key is kept iff mass + j*q < target
                    const unsigned long long keep = q == 0 ? c : (target - mass + q - 1) / q;
                    sh.kstar = key;
                    sh.cstar = (unsigned)(keep < c ? (keep < 1 ? 1 : keep) : c);
                    break;
                }
                mass += (unsigned long long)c * q;
            }
        }
        __syncthreads();
    }
    const unsigned kstar = sh.kstar, cstar = sh.cstar;

    // pass E (coalesced: chunk j, thread t holds ids j*8192 + 8t .. +8). The kept set in draw order: first every kept
    // candidate with key > K* (order: thread, then chunk, then id), then the c* kept candidates with key == K* in id
    // order. Per (chunk, thread) masses go to shared memory (the histogram is no longer needed) so that the thread
    // where the draw lands finds its chunk without rereading the row; ids with key == K* go to a list.
    // min-p: probability >= min_p times the largest, i.e. mass >= min_p (the largest has mass 1).
    const unsigned lowest = max_key >= WINDOW ? max_key - (WINDOW - 1) : 0u;  // keys below the window have no mass
    const int pieces = (vocab + 7) / 8;
    const int chunks = (pieces + SAMPLE_THREADS - 1) / SAMPLE_THREADS;
    const bool keep_chunks = chunks <= MAX_CHUNKS;
    unsigned long long* chunk_mass = reinterpret_cast<unsigned long long*>(hist);         // [MAX_CHUNKS][1024]
    int* eq_list = reinterpret_cast<int*>(chunk_mass + MAX_CHUNKS * SAMPLE_THREADS);     // [EQ_CAP]
    __syncthreads();  // everyone is done reading the histogram
    if (tid == 0) sh.eq_count = 0;
    __syncthreads();
    unsigned long long m_above = 0;
    row_pieces(l, vocab, pen, [&](int piece, const unsigned short* b, int n, unsigned sm, unsigned gm) {
        unsigned long long m_chunk = 0;
#pragma unroll
        for (int e = 0; e < 8; e++) {
            if (e < n) {
                const unsigned key = order_key(pen_bits(b[e], sm, gm, e, pen));
                if (key == kstar) {
                    const unsigned at = atomicAdd(&sh.eq_count, 1u);
                    if (at < EQ_CAP) eq_list[at] = 8 * piece + e;
                } else if (key > kstar && key >= lowest) {
                    const float m = key_mass(key, max_key, temperature);
                    if (m >= min_p) m_chunk += fixed_mass(m);
                }
            }
        }
        if (keep_chunks) chunk_mass[piece] = m_chunk;  // piece = chunk * 1024 + thread
        m_above += m_chunk;
    });
    unsigned long long above_total;
    const unsigned long long before = block_exclusive_scan<unsigned long long>(m_above, sh.scan64, above_total);
    const float m_star = key_mass(kstar, max_key, temperature);
    const bool star_ok = kstar != 0 && kstar >= lowest && m_star >= min_p;
    const unsigned long long q_star = fixed_mass(m_star);
    const unsigned eq_total = sh.eq_count;
    const unsigned eq_kept = star_ok ? min(cstar, eq_total) : 0u;
    const unsigned long long total = above_total + (unsigned long long)eq_kept * q_star;

    // one Philox draw: u uniform in [0, total)
    const unsigned long long seed = rng[2 * row], offset = rng[2 * row + 1];
    const uint4 r = philox4x32_10(make_uint4((unsigned)offset, (unsigned)(offset >> 32), 0u, 0u),
                                  make_uint2((unsigned)seed, (unsigned)(seed >> 32)));
    const unsigned long long u = __umul64hi(((unsigned long long)r.x << 32) | r.y, total);
    if (u < above_total) {
        if (u >= before && u < before + m_above) {  // the draw lands among this thread's candidates
            unsigned long long cum = before;
            for (int j = 0; j < chunks; j++) {
                const int piece = j * SAMPLE_THREADS + tid;
                if (piece >= pieces) break;
                const unsigned long long m_chunk = keep_chunks ? chunk_mass[piece] : ~0ull;
                if (keep_chunks && u >= cum + m_chunk) { cum += m_chunk; continue; }
                const int i = 8 * piece;
                unsigned short b[8];
                const int n = load8(l, i, vocab, b);
                const unsigned sm = mask8(pen.seen, i), gm = mask8(pen.gen, i);
                bool found = false;
                for (int e = 0; e < n; e++) {
                    const unsigned key = order_key(pen_bits(b[e], sm, gm, e, pen));
                    if (key > kstar && key >= lowest) {
                        const float m = key_mass(key, max_key, temperature);
                        const unsigned long long q = m >= min_p ? fixed_mass(m) : 0ull;
                        if (q > 0 && u < cum + q) { sh.result = i + e; found = true; break; }
                        cum += q;
                    }
                }
                if (found) break;
            }
        }
    } else {
        // the (u - above) / q*-th kept id with key == K*, in id order
        const unsigned want = (unsigned)((u - above_total) / q_star);
        if (eq_total <= EQ_CAP) {
            for (unsigned x = tid; x < eq_total; x += SAMPLE_THREADS) {
                const int id = eq_list[x];
                unsigned rank = 0;
                for (unsigned y = 0; y < eq_total; y++) rank += eq_list[y] < id;
                if (rank == want) sh.result = id;
            }
        } else if (tid == 0) {
            // more tied candidates than the list holds (a degenerate row): walk the row in id order
            unsigned tied = 0;
            for (int i = 0; i < vocab; i++) {
                if (order_key(pen_bits_id(l, i, pen)) == kstar && tied++ == want) { sh.result = i; break; }
            }
        }
    }
    __syncthreads();
    if (tid == 0) {
        // total > 0 always (the largest candidate has mass 2^40); the argmax is only a guard
        const int id = sh.result >= 0 ? sh.result : argmax;
        out_ids[row] = id;
        rng[2 * row + 1] = offset + 1;
        mark_picked(seen, generated, words, slot, id);
    }
}

// ---------------------------------------------------------------------------------------------- token masks

// Constrained decoding (structured output): in each row whose flag is set, the logits of the ids its mask does not allow
// become -Inf (bf16 0xff80) before the sampler runs, as the CPU Sampler does (TokenMask.apply: -Inf before the
// penalties, the temperature and the cuts; the sampler already treats -Inf logits as mass 0). masks [rows][words] u32, bit
// i % 32 of word i / 32 allows id i (the TokenMask layout); flags [rows] i32, 0: the row is left as it is. The host reads
// back any raw logits it reports before this runs. Grid (ceil(vocab / 256), rows), 256 threads: one id per thread.
extern "C" __global__ void mask_logits(bf16* __restrict__ logits, int stride, int vocab, const unsigned* __restrict__ masks,
                                       int words, const int* __restrict__ flags) {
    const int row = blockIdx.y, i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= vocab || flags[row] == 0) return;
    if (((masks[(long)row * words + (i >> 5)] >> (i & 31)) & 1u) == 0u) {
        logits[(long)row * stride + i] = __ushort_as_bfloat16((unsigned short)0xff80u);
    }
}
