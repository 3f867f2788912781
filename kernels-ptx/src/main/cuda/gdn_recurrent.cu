// Recurrent gated delta rule (Gated DeltaNet decode): one token per sequence, fp32 state updated in place in a
// slot pool [slots, Hv, dk, dv] (element (h, i, j) = S_h[i][j], i over key dims). Per value head h (key head h / r):
//   q <- l2norm(q) * dk^-1/2, k <- l2norm(k)          l2norm(x) = x * rsqrt(sum x^2 + 1e-6)
//   S <- S * exp(g);  delta = (v - S^T k) * beta;  S <- S + k delta^T;  o = S^T q   (o read after the update)
// Inputs: qkv = conv output rows [B, 2*Hk*dk + Hv*dv] = [q | k | v] (bf16); out [B, Hv*dv] bf16; slots[B] int,
// slot -1 = padding row: state untouched, its output row zeroed.
//
// One pass over S: with d = exp(g), rk = 1/|k|, rq = dk^-1/2/|q| and raw q, k,
//   S^T k_hat (decayed) = d*rk*(S^T k),  o = d*rq*(S^T q) + delta*(rk*rq*(k.q))
// so S^T k, S^T q, |k|^2, |q|^2 and k.q are reduced together (one barrier), then S is updated and stored.
//
// Gate modes (template MODE, one entry each):
//   _f32:   beta fp32 [B, Hv], g fp32 [B, Hv]
//   _bf16:  beta bf16 [B, Hv], g fp32 [B, Hv]
//   _fused: raw in_proj_ba rows [B, 2*Hv] bf16, grouped per key head as [b (r) | a (r)], plus A_log, dt_bias fp32 [Hv]:
//           beta = bf16(sigmoid(b)) (torch computes it in the bf16 model dtype), g = -exp(A_log) * softplus(a + dt_bias)
//           (softplus threshold 20). The gating kernel's work is then not needed at decode.
#include "common.cuh"

#define GATES_F32 0
#define GATES_BF16 1
#define GATES_FUSED 2

template <int MODE>
__device__ __forceinline__ void load_gates(const void* __restrict__ gate0, const float* __restrict__ g,
                                           const float* __restrict__ a_log, const float* __restrict__ dt_bias, int seq,
                                           int h, int hv, int r, float& beta, float& decay) {
    const long i = (long)seq * hv + h;
    float glog;
    if (MODE == GATES_F32) {
        beta = static_cast<const float*>(gate0)[i];
        glog = g[i];
    } else if (MODE == GATES_BF16) {
        beta = __bfloat162float(static_cast<const bf16*>(gate0)[i]);
        glog = g[i];
    } else {
        const bf16* ba = static_cast<const bf16*>(gate0) + (long)seq * 2 * hv + (h / r) * 2 * r;
        const float b = __bfloat162float(ba[h % r]);
        const float a = __bfloat162float(ba[r + h % r]) + dt_bias[h];
        beta = round_bf16(1.0f / (1.0f + expf(-b)));
        const float sp = a > 20.0f ? a : log1pf(expf(a));
        glog = -expf(a_log[h]) * sp;
    }
    decay = expf(glog);
}

// ---- dk = 128, dv % 32 == 0: grid (dv / 32, Hv, B), 128 threads ----
// Block (cb, h, seq) owns columns 32cb .. 32cb+31 of S_h. Thread (warp w, lane l): row group rg = 4w + l/8 owns key
// rows 8rg .. 8rg+7, column quad cq = l%8 owns columns 32cb + 4cq .. +3. Its 8 x 4 slice of S lives in registers
// between the load and the store. The column blocks of one head are neighbours in launch order, so the four 128-byte
// pieces of each 512-byte state row are fetched at about the same time (DRAM row locality).
#define K128_THREADS 128
#define K128_BV 32

template <int MODE, bool STREAM = false>
__device__ __forceinline__ void gdn_recurrent_k128(const bf16* __restrict__ qkv, const void* __restrict__ gate0,
                                                   const float* __restrict__ g, const float* __restrict__ a_log,
                                                   const float* __restrict__ dt_bias, float* __restrict__ state,
                                                   const int* __restrict__ slots, bf16* __restrict__ out, int hk, int hv,
                                                   int dv, int seq, int h, int cb) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int rg = warp * 4 + (lane >> 3), cq = lane & 7;
    const int col = cb * K128_BV + cq * 4;
    const int r = hv / hk, kh = h / r;
    bf16* o_ptr = out + (long)seq * hv * dv + (long)h * dv + col;
    const int slot = slots[seq];
    if (slot < 0) {
        const float zero[4] = {0.f, 0.f, 0.f, 0.f};
        if (rg == 0) *reinterpret_cast<bf16x4*>(o_ptr) = pack4(zero);
        return;
    }
    float* s_ptr = state + ((long)slot * hv + h) * 128 * dv + (long)(rg * 8) * dv + col;
    float4 s[8];
#pragma unroll
    for (int t = 0; t < 8; t++) {
        const float4* src = reinterpret_cast<const float4*>(s_ptr + (long)t * dv);
        s[t] = STREAM ? __ldcs(src) : *src;
    }

    const bf16* row = qkv + (long)seq * (2 * hk * 128 + hv * dv);
    float q[8], k[8], v[4];
    unpack8(*reinterpret_cast<const bf16x8*>(row + kh * 128 + rg * 8), q);
    unpack8(*reinterpret_cast<const bf16x8*>(row + hk * 128 + kh * 128 + rg * 8), k);
    unpack4(*reinterpret_cast<const bf16x4*>(row + 2 * hk * 128 + h * dv + col), v);
    float beta, decay;
    load_gates<MODE>(gate0, g, a_log, dt_bias, seq, h, hv, r, beta, decay);

    float m[4] = {0.f, 0.f, 0.f, 0.f}, p[4] = {0.f, 0.f, 0.f, 0.f};
    float kk = 0.f, qq = 0.f, kq = 0.f;
#pragma unroll
    for (int t = 0; t < 8; t++) {
        m[0] += s[t].x * k[t]; m[1] += s[t].y * k[t]; m[2] += s[t].z * k[t]; m[3] += s[t].w * k[t];
        p[0] += s[t].x * q[t]; p[1] += s[t].y * q[t]; p[2] += s[t].z * q[t]; p[3] += s[t].w * q[t];
        kk += k[t] * k[t];
        qq += q[t] * q[t];
        kq += k[t] * q[t];
    }
    // the 4 row groups of a warp: lanes 8 and 16 apart
#pragma unroll
    for (int o = 8; o <= 16; o <<= 1) {
#pragma unroll
        for (int c = 0; c < 4; c++) {
            m[c] += __shfl_xor_sync(0xffffffffu, m[c], o);
            p[c] += __shfl_xor_sync(0xffffffffu, p[c], o);
        }
        kk += __shfl_xor_sync(0xffffffffu, kk, o);
        qq += __shfl_xor_sync(0xffffffffu, qq, o);
        kq += __shfl_xor_sync(0xffffffffu, kq, o);
    }
    __shared__ float4 red_m[4][8], red_p[4][8];
    __shared__ float red_s[4][3];
    if (lane < 8) {
        red_m[warp][lane] = make_float4(m[0], m[1], m[2], m[3]);
        red_p[warp][lane] = make_float4(p[0], p[1], p[2], p[3]);
    }
    if (lane == 0) {
        red_s[warp][0] = kk;
        red_s[warp][1] = qq;
        red_s[warp][2] = kq;
    }
    __syncthreads();
    float4 M = red_m[0][cq], P = red_p[0][cq];
    kk = red_s[0][0];
    qq = red_s[0][1];
    kq = red_s[0][2];
#pragma unroll
    for (int w = 1; w < 4; w++) {
        const float4 a = red_m[w][cq], b = red_p[w][cq];
        M.x += a.x; M.y += a.y; M.z += a.z; M.w += a.w;
        P.x += b.x; P.y += b.y; P.z += b.z; P.w += b.w;
        kk += red_s[w][0];
        qq += red_s[w][1];
        kq += red_s[w][2];
    }
    const float rk = rsqrtf(kk + 1e-6f);
    const float rq = rsqrtf(qq + 1e-6f) * rsqrtf(128.0f);
    const float mk = decay * rk, pq = decay * rq, kqn = kq * rk * rq;
    const float mm[4] = {M.x, M.y, M.z, M.w}, pp[4] = {P.x, P.y, P.z, P.w};
    float delta[4], o[4];
#pragma unroll
    for (int c = 0; c < 4; c++) {
        delta[c] = (v[c] - mk * mm[c]) * beta;
        o[c] = pq * pp[c] + delta[c] * kqn;
    }
    if (rg == 0) *reinterpret_cast<bf16x4*>(o_ptr) = pack4(o);
#pragma unroll
    for (int t = 0; t < 8; t++) {
        const float kn = k[t] * rk;
        float4 n;
        n.x = decay * s[t].x + kn * delta[0];
        n.y = decay * s[t].y + kn * delta[1];
        n.z = decay * s[t].z + kn * delta[2];
        n.w = decay * s[t].w + kn * delta[3];
        float4* dst = reinterpret_cast<float4*>(s_ptr + (long)t * dv);
        if (STREAM) __stcs(dst, n);
        else *dst = n;
    }
}

// ---- any dk, dv: grid (B, Hv), 128 threads, dynamic shared memory 2 * dk floats ----
// Thread j walks column j (and j + 128, ...) of S: loads are coalesced across the block; the sums over key dims run
// in the reference's order (decay, S^T k, update, S^T q).
#define ANY_THREADS 128

template <int MODE>
__device__ __forceinline__ void gdn_recurrent_any(const bf16* __restrict__ qkv, const void* __restrict__ gate0,
                                                  const float* __restrict__ g, const float* __restrict__ a_log,
                                                  const float* __restrict__ dt_bias, float* __restrict__ state,
                                                  const int* __restrict__ slots, bf16* __restrict__ out, int hk, int hv,
                                                  int dk, int dv) {
    extern __shared__ float smem[];
    float* qn = smem;
    float* kn = smem + dk;
    __shared__ float red[2][ANY_THREADS / 32];
    const int seq = blockIdx.x, h = blockIdx.y, tid = threadIdx.x;
    const int r = hv / hk, kh = h / r;
    bf16* o_row = out + (long)seq * hv * dv + (long)h * dv;
    const int slot = slots[seq];
    if (slot < 0) {
        for (int j = tid; j < dv; j += ANY_THREADS) o_row[j] = __float2bfloat16_rn(0.f);
        return;
    }
    const bf16* row = qkv + (long)seq * (2 * hk * dk + hv * dv);
    float sq = 0.f, sk = 0.f;
    for (int i = tid; i < dk; i += ANY_THREADS) {
        const float qv = __bfloat162float(row[kh * dk + i]);
        const float kv = __bfloat162float(row[hk * dk + kh * dk + i]);
        qn[i] = qv;
        kn[i] = kv;
        sq += qv * qv;
        sk += kv * kv;
    }
    sq = warp_sum(sq);
    sk = warp_sum(sk);
    if ((tid & 31) == 0) {
        red[0][tid >> 5] = sq;
        red[1][tid >> 5] = sk;
    }
    __syncthreads();
    sq = 0.f;
    sk = 0.f;
#pragma unroll
    for (int w = 0; w < ANY_THREADS / 32; w++) {
        sq += red[0][w];
        sk += red[1][w];
    }
    const float rq = rsqrtf(sq + 1e-6f) * rsqrtf((float)dk), rk = rsqrtf(sk + 1e-6f);
    float beta, decay;
    load_gates<MODE>(gate0, g, a_log, dt_bias, seq, h, hv, r, beta, decay);
    float* S = state + ((long)slot * hv + h) * dk * dv;
    for (int j = tid; j < dv; j += ANY_THREADS) {
        float m = 0.f;
        for (int i = 0; i < dk; i++) m += decay * S[(long)i * dv + j] * (kn[i] * rk);
        const float delta = (__bfloat162float(row[2 * hk * dk + h * dv + j]) - m) * beta;
        float o = 0.f;
        for (int i = 0; i < dk; i++) {
            const float s = decay * S[(long)i * dv + j] + (kn[i] * rk) * delta;
            S[(long)i * dv + j] = s;
            o += s * (qn[i] * rq);
        }
        o_row[j] = __float2bfloat16_rn(o);
    }
}

#define SIG const bf16 *qkv, const void *gate0, const float *g, const float *a_log, const float *dt_bias, float *state, \
            const int *slots, bf16 *out, int batch, int hk, int hv, int dk, int dv
#define ARGS_K128 qkv, gate0, g, a_log, dt_bias, state, slots, out, hk, hv, dv, blockIdx.z, blockIdx.y, blockIdx.x
#define ARGS_ANY qkv, gate0, g, a_log, dt_bias, state, slots, out, hk, hv, dk, dv

extern "C" __global__ void __launch_bounds__(K128_THREADS) gdn_recurrent_k128_f32(SIG) {
    gdn_recurrent_k128<GATES_F32>(ARGS_K128);
}
extern "C" __global__ void __launch_bounds__(K128_THREADS) gdn_recurrent_k128_bf16(SIG) {
    gdn_recurrent_k128<GATES_BF16>(ARGS_K128);
}
extern "C" __global__ void __launch_bounds__(K128_THREADS) gdn_recurrent_k128_fused(SIG) {
    gdn_recurrent_k128<GATES_FUSED>(ARGS_K128);
}
extern "C" __global__ void __launch_bounds__(ANY_THREADS) gdn_recurrent_any_f32(SIG) {
    gdn_recurrent_any<GATES_F32>(ARGS_ANY);
}
extern "C" __global__ void __launch_bounds__(ANY_THREADS) gdn_recurrent_any_bf16(SIG) {
    gdn_recurrent_any<GATES_BF16>(ARGS_ANY);
}
extern "C" __global__ void __launch_bounds__(ANY_THREADS) gdn_recurrent_any_fused(SIG) {
    gdn_recurrent_any<GATES_FUSED>(ARGS_ANY);
}
