// Variant sweep for the GDN decode kernels (not shipped): builds on the GPU host with
//   nvcc -O3 -arch=sm_90 -std=c++17 -I kernels-ptx/src/main/cuda src/device/gdn_variants.cu -o /tmp/gdnv
// and times, on one card in one process: the copy ceiling (memcpy in a graph, eager memcpy, a float4 copy kernel), the
// recurrent rule (launch order, register cap), conv1d prefill and the decode update (against a copy kernel moving the
// same bytes). Variants are first compared with the shipped kernels (outputs and state). GDNV_PROFILE=1 launches each
// kernel once without timing, for ncu. Timing: a CUDA graph of >= 20 back-to-back launches cycling through buffer sets
// (> 200 MB touched), median of 30 replays. Results: jmh/results/2026-11-27-h100-gdn-decode/.
#include "gdn_recurrent.cu"
#include "causal_conv1d.cu"
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <algorithm>
#include <functional>
#include <string>
#include <cmath>
#include <cstring>

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); exit(1); } } while (0)

template <int MINB, bool STREAM>
__global__ void __launch_bounds__(K128_THREADS, MINB) reg_kernel(SIG) {
    gdn_recurrent_k128<GATES_F32, STREAM>(ARGS_K128);
}
// round 1's launch order: grid (B, Hv, dv / 32), sequences fastest
__global__ void __launch_bounds__(K128_THREADS) reg_kernel_seq_fastest(SIG) {
    gdn_recurrent_k128<GATES_F32>(qkv, gate0, g, a_log, dt_bias, state, slots, out, hk, hv, dv, blockIdx.x, blockIdx.y, blockIdx.z);
}

// conv update, variant: the block's state slab (128 threads x 8 channels x (K-1) = 6 KB, contiguous) staged through
// shared memory with lane-contiguous 16-byte accesses; x and w loaded before the slot test
template <int K>
__global__ void __launch_bounds__(128) update_staged(const bf16* __restrict__ x, const bf16* __restrict__ w,
                                                     bf16* __restrict__ state, const int* __restrict__ slots,
                                                     bf16* __restrict__ out, int channels) {
    __shared__ bf16x8 slab[(K - 1) * 128];
    const int seq = blockIdx.y, tid = threadIdx.x;
    const int cb0 = blockIdx.x * 128 * 8;                        // first channel of the block
    const int c0 = cb0 + tid * 8;
    const int nvec = min(128, (channels - cb0) / 8) * (K - 1);   // 16-byte vectors of the block's slab
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
        if (v * 128 + tid < nvec) slab[v * 128 + tid] = st[v * 128 + tid];
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
        if (v * 128 + tid < nvec) st[v * 128 + tid] = slab[v * 128 + tid];
}

// conv update, variant: x and w loaded before the slot test, state accessed per thread as in the shipped kernel
template <int K>
__global__ void __launch_bounds__(128) update_hoisted(const bf16* __restrict__ x, const bf16* __restrict__ w,
                                                      bf16* __restrict__ state, const int* __restrict__ slots,
                                                      bf16* __restrict__ out, int channels) {
    const int seq = blockIdx.y;
    const int c0 = (blockIdx.x * 128 + threadIdx.x) * 8;
    if (c0 >= channels) return;
    const long at = (long)seq * channels + c0;
    const bf16x8 xv = *reinterpret_cast<const bf16x8*>(x + at);
    bf16x8 wv[K];
    load_weights<K>(w, c0, wv);
    const int slot = slots[seq];
    if (slot < 0) {
        const float zero[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
        *reinterpret_cast<bf16x8*>(out + at) = pack8(zero);
        return;
    }
    bf16* st = state + ((long)slot * channels + c0) * (K - 1);
    bf16x8 win[K - 1];
    load_state<K>(st, win);
    *reinterpret_cast<bf16x8*>(out + at) = conv_step<K>(wv, win, xv);
    store_state<K>(st, win);
}

__global__ void copy_kernel(const float4* __restrict__ a, float4* __restrict__ b, long n) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) b[i] = a[i];
}

template <int CH, int MINB>
__global__ void __launch_bounds__(128, MINB) conv_pre(const bf16* x, const bf16* w, bf16* state, const int* cu,
                                                       const int* slots, bf16* out, int batch, int channels) {
    conv_prefill<4, CH>(x, w, state, cu, slots, out, batch, channels);
}

__global__ void fill_random(float* p, long n, unsigned seed, float scale) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        unsigned h = (unsigned)i * 2654435761u ^ seed;
        h ^= h >> 13; h *= 0x5bd1e995u; h ^= h >> 15;
        p[i] = ((h & 0xffffff) / 16777216.0f - 0.5f) * scale;
    }
}
__global__ void fill_random_bf16(bf16* p, long n, unsigned seed, float scale) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        unsigned h = (unsigned)i * 2654435761u ^ seed;
        h ^= h >> 13; h *= 0x5bd1e995u; h ^= h >> 15;
        p[i] = __float2bfloat16_rn(((h & 0xffffff) / 16777216.0f - 0.5f) * scale);
    }
}

static cudaStream_t stream;
static bool profile = false;   // GDNV_PROFILE=1: one eager launch of each kernel for ncu, no timing
static double copy_tbps = 0;

static double time_graph(const std::function<void(int)>& launch, int sets) {
    if (profile) return 1.0;
    const int launches = std::max(sets, 20);
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    for (int i = 0; i < launches; i++) launch(i % sets);
    CK(cudaStreamEndCapture(stream, &g));
    CK(cudaGraphInstantiate(&ge, g, 0));
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    for (int i = 0; i < 5; i++) CK(cudaGraphLaunch(ge, stream));
    std::vector<float> t;
    for (int i = 0; i < 30; i++) {
        CK(cudaEventRecord(a, stream));
        CK(cudaGraphLaunch(ge, stream));
        CK(cudaEventRecord(b, stream));
        CK(cudaEventSynchronize(b));
        float ms;
        CK(cudaEventElapsedTime(&ms, a, b));
        t.push_back(ms);
    }
    std::sort(t.begin(), t.end());
    CK(cudaGraphExecDestroy(ge));
    CK(cudaGraphDestroy(g));
    return t[t.size() / 2] * 1e3 / launches;   // us per launch
}

static void row(const char* name, const std::string& shape, double us, double bytes) {
    double tbps = bytes / us / 1e6;
    printf("%-44s %-26s %9.2f us %6.2f TB/s %5.1f%%\n", name, shape.c_str(), us, tbps, 100 * tbps / copy_tbps);
    fflush(stdout);
}

static double max_rel(const std::vector<float>& a, const std::vector<float>& b) {
    double m = 0, s = 0;
    for (size_t i = 0; i < a.size(); i++) s = std::max(s, (double)std::fabs(a[i]));
    for (size_t i = 0; i < a.size(); i++) {
        double d = std::fabs((double)a[i] - b[i]);
        if (!(d == d)) return 1e30;
        m = std::max(m, d);
    }
    return m / (s > 0 ? s : 1);
}

static std::vector<float> bf16_to_f(const std::vector<bf16>& v) {
    std::vector<float> f(v.size());
    for (size_t i = 0; i < v.size(); i++) f[i] = __bfloat162float(v[i]);
    return f;
}

int main() {
    CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    profile = getenv("GDNV_PROFILE") != nullptr;
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    printf("card: %s, %d SMs, L2 %d MB\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20);
    const int sms = prop.multiProcessorCount;
    {
        size_t bytes = 1ul << 30;
        void *a, *b;
        CK(cudaMalloc(&a, bytes));
        CK(cudaMalloc(&b, bytes));
        CK(cudaMemset(a, 1, bytes));
        double us = time_graph([&](int) { CK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream)); }, 1);
        cudaEvent_t e0, e1;
        CK(cudaEventCreate(&e0));
        CK(cudaEventCreate(&e1));
        std::vector<float> t;
        for (int i = 0; i < 23; i++) {
            CK(cudaEventRecord(e0, stream));
            CK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream));
            CK(cudaEventRecord(e1, stream));
            CK(cudaEventSynchronize(e1));
            float ms;
            CK(cudaEventElapsedTime(&ms, e0, e1));
            if (i >= 3) t.push_back(ms);
        }
        std::sort(t.begin(), t.end());
        double eager = t[t.size() / 2] * 1e3;
        double kern = time_graph([&](int) { copy_kernel<<<sms * 8, 256, 0, stream>>>((const float4*)a, (float4*)b, (long)(bytes / 16)); }, 1);
        copy_tbps = 2.0 * bytes / std::min(us, std::min(eager, kern)) / 1e6;
        row("copy: memcpy in a graph", "1 GiB", us, 2.0 * bytes);
        row("copy: memcpy eager, events", "1 GiB", eager, 2.0 * bytes);
        row("copy: float4 kernel in a graph (ceiling = best)", "1 GiB", kern, 2.0 * bytes);
        CK(cudaFree(a));
        CK(cudaFree(b));
    }

    // ---------------- recurrent rule ----------------
    const int hk = 16, hv = 32, dv = 128, conv = 2 * hk * 128 + hv * dv;
    const long head = 128L * dv, seqState = hv * head;
    const int poolSlots = 256;
    float *pool, *backup, *beta, *g;
    bf16 *qkv, *out;
    int* slots;
    const int maxB = 128;
    CK(cudaMalloc(&pool, poolSlots * seqState * 4));
    CK(cudaMalloc(&backup, poolSlots * seqState * 4));
    CK(cudaMalloc(&qkv, (long)maxB * conv * 2));
    CK(cudaMalloc(&out, (long)maxB * hv * dv * 2));
    CK(cudaMalloc(&beta, maxB * hv * 4));
    CK(cudaMalloc(&g, maxB * hv * 4));
    CK(cudaMalloc(&slots, poolSlots * 4));
    fill_random<<<1024, 256, 0, stream>>>(pool, poolSlots * seqState, 1, 1.0f);
    fill_random_bf16<<<1024, 256, 0, stream>>>(qkv, (long)maxB * conv, 2, 3.0f);
    fill_random<<<64, 256, 0, stream>>>(beta, maxB * hv, 3, 1.0f);   // beta in (-0.5, 0.5): fine for timing and checks
    fill_random<<<64, 256, 0, stream>>>(g, maxB * hv, 4, 1.0f);      // g in (-0.5, 0.5)
    {
        std::vector<int> s(poolSlots);
        for (int i = 0; i < poolSlots; i++) s[i] = (i * 37 + 11) % poolSlots;   // a permutation: scattered slots
        s[5] = -1;   // one padding row in every B >= 6 set 0
        CK(cudaMemcpy(slots, s.data(), poolSlots * 4, cudaMemcpyHostToDevice));
    }
    CK(cudaMemcpy(backup, pool, poolSlots * seqState * 4, cudaMemcpyDeviceToDevice));

    struct Variant {
        std::string name;
        std::function<void(int B, const int* sl)> launch;
    };
    std::vector<Variant> vars;
    vars.push_back({"register kernel, column blocks fastest", [&](int B, const int* sl) {
        gdn_recurrent_k128_f32<<<dim3(dv / 32, hv, B), 128, 0, stream>>>(qkv, beta, g, nullptr, nullptr, pool, sl, out, B, hk, hv, 128, dv);
    }});
    vars.push_back({"register kernel, sequences fastest (round 1)", [&](int B, const int* sl) {
        reg_kernel_seq_fastest<<<dim3(B, hv, dv / 32), 128, 0, stream>>>(qkv, beta, g, nullptr, nullptr, pool, sl, out, B, hk, hv, 128, dv);
    }});
    vars.push_back({"register kernel, col fastest, minB 8", [&](int B, const int* sl) {
        reg_kernel<8, false><<<dim3(dv / 32, hv, B), 128, 0, stream>>>(qkv, beta, g, nullptr, nullptr, pool, sl, out, B, hk, hv, 128, dv);
    }});

    // correctness: every variant against the register kernel at B = 64 (set 0)
    {
        const int B = 64;
        std::vector<float> refState(B * seqState), st(B * seqState);
        std::vector<bf16> refOut(B * hv * dv), o(B * hv * dv);
        std::vector<int> hs(B);
        CK(cudaMemcpy(hs.data(), slots, B * 4, cudaMemcpyDeviceToHost));
        for (size_t v = 0; v < vars.size(); v++) {
            CK(cudaMemcpy(pool, backup, poolSlots * seqState * 4, cudaMemcpyDeviceToDevice));
            CK(cudaMemset(out, 0xff, B * hv * dv * 2));
            vars[v].launch(B, slots);
            CK(cudaStreamSynchronize(stream));
            CK(cudaGetLastError());
            CK(cudaMemcpy(o.data(), out, o.size() * 2, cudaMemcpyDeviceToHost));
            for (int b = 0; b < B; b++) {
                if (hs[b] < 0) continue;
                CK(cudaMemcpy(st.data() + b * seqState, pool + hs[b] * seqState, seqState * 4, cudaMemcpyDeviceToHost));
            }
            if (v == 0) {
                refState = st;
                refOut = o;
            } else {
                printf("check %-44s out rel %.2e  state rel %.2e\n", vars[v].name.c_str(), max_rel(bf16_to_f(refOut), bf16_to_f(o)), max_rel(refState, st));
            }
        }
        CK(cudaMemcpy(pool, backup, poolSlots * seqState * 4, cudaMemcpyDeviceToDevice));
    }
    for (int B : {1, 32, 64, 128}) {
        if (profile) break;
        const double bytes = 2.0 * B * seqState * 4;
        const int sets = std::max(1, std::min(poolSlots / B, (int)std::ceil(200e6 / bytes)));
        for (auto& v : vars) {
            double us = time_graph([&](int i) { v.launch(B, slots + i * B); }, sets);
            row(v.name.c_str(), "B=" + std::to_string(B), us, bytes);
        }
    }
    CK(cudaFree(pool));
    CK(cudaFree(backup));

    // ---------------- conv1d ----------------
    const int C = 8192, K = 4;
    bf16 *x, *y, *w, *cst, *cstb;
    int *cu, *cslots;
    const long maxT = 16384 * 2;
    CK(cudaMalloc(&x, maxT * C * 2));
    CK(cudaMalloc(&y, maxT * C * 2));
    CK(cudaMalloc(&w, C * K * 2));
    const int cslotsN = 1700;
    CK(cudaMalloc(&cst, (long)cslotsN * C * (K - 1) * 2));
    CK(cudaMalloc(&cstb, (long)cslotsN * C * (K - 1) * 2));
    CK(cudaMalloc(&cu, 4 * 2000));
    CK(cudaMalloc(&cslots, 4 * 2000));
    fill_random_bf16<<<1024, 256, 0, stream>>>(x, maxT * C, 5, 4.0f);
    fill_random_bf16<<<64, 256, 0, stream>>>(w, C * K, 6, 1.0f);
    fill_random_bf16<<<1024, 256, 0, stream>>>(cst, (long)cslotsN * C * (K - 1), 7, 4.0f);
    CK(cudaMemcpy(cstb, cst, (long)cslotsN * C * (K - 1) * 2, cudaMemcpyDeviceToDevice));
    {
        std::vector<int> s(2000);
        for (int i = 0; i < 2000; i++) s[i] = i % cslotsN;
        CK(cudaMemcpy(cslots, s.data(), 4 * 2000, cudaMemcpyHostToDevice));
    }
    struct ConvVar {
        std::string name;
        int chunk;
        std::function<void(dim3, const bf16*, bf16*, const int*, const int*, int)> launch;
    };
    std::vector<ConvVar> cv;
    cv.push_back({"conv prefill CH=8 (80 regs)", 8, [&](dim3 gr, const bf16* xx, bf16* yy, const int* c, const int* sl, int nb) { conv_pre<8, 1><<<gr, 128, 0, stream>>>(xx, w, cst, c, sl, yy, nb, C); }});
    if (false) cv.push_back({"conv prefill CH=4", 4, [&](dim3 gr, const bf16* xx, bf16* yy, const int* c, const int* sl, int nb) { conv_pre<4, 1><<<gr, 128, 0, stream>>>(xx, w, cst, c, sl, yy, nb, C); }});
    if (false) cv.push_back({"conv prefill CH=16", 16, [&](dim3 gr, const bf16* xx, bf16* yy, const int* c, const int* sl, int nb) { conv_pre<16, 1><<<gr, 128, 0, stream>>>(xx, w, cst, c, sl, yy, nb, C); }});
    if (false) cv.push_back({"conv prefill CH=8 minB 8", 8, [&](dim3 gr, const bf16* xx, bf16* yy, const int* c, const int* sl, int nb) { conv_pre<8, 8><<<gr, 128, 0, stream>>>(xx, w, cst, c, sl, yy, nb, C); }});
    if (false) cv.push_back({"conv prefill CH=32", 32, [&](dim3 gr, const bf16* xx, bf16* yy, const int* c, const int* sl, int nb) { conv_pre<32, 1><<<gr, 128, 0, stream>>>(xx, w, cst, c, sl, yy, nb, C); }});
    for (int T : {4096, 16384}) {
        for (int seqs : {1, 64}) {
            if (profile && (T != 4096 || seqs != 1)) continue;
            std::vector<int> hcu(seqs + 1);
            for (int i = 0; i <= seqs; i++) hcu[i] = (int)((long)T * i / seqs);
            CK(cudaMemcpy(cu, hcu.data(), 4 * (seqs + 1), cudaMemcpyHostToDevice));
            const double bytes = 4.0 * T * C + 4.0 * seqs * C * (K - 1) + 2.0 * C * K;
            const int sets = (int)std::max(1L, std::min(maxT / T, (long)std::ceil(200e6 / bytes)));
            std::vector<bf16> ref, o((long)T * C);
            for (size_t v = 0; v < cv.size(); v++) {
                dim3 gr((C / 8 + 127) / 128, (T + cv[v].chunk - 1) / cv[v].chunk + seqs);
                CK(cudaMemcpy(cst, cstb, (long)cslotsN * C * (K - 1) * 2, cudaMemcpyDeviceToDevice));
                cv[v].launch(gr, x, y, cu, cslots, seqs);
                CK(cudaStreamSynchronize(stream));
                CK(cudaGetLastError());
                CK(cudaMemcpy(o.data(), y, o.size() * 2, cudaMemcpyDeviceToHost));
                std::vector<bf16> sto((long)seqs * C * (K - 1));
                CK(cudaMemcpy(sto.data(), cst, sto.size() * 2, cudaMemcpyDeviceToHost));
                if (v == 0) ref = o;
                else if (T == 4096) printf("check %-30s T=%d seqs=%d out rel %.2e\n", cv[v].name.c_str(), T, seqs, max_rel(bf16_to_f(ref), bf16_to_f(o)));
                double us = time_graph([&](int i) { cv[v].launch(gr, x + (long)i * T * C, y + (long)i * T * C, cu, cslots + i * seqs, seqs); }, sets);
                row(cv[v].name.c_str(), "T=" + std::to_string(T) + " seqs=" + std::to_string(seqs), us, bytes);
            }
        }
    }
    if (profile) {
        causal_conv1d_update_k4<<<dim3(8, 64), 128, 0, stream>>>(x, w, cst, cslots, y, C);
        update_staged<4><<<dim3(8, 64), 128, 0, stream>>>(x, w, cst, cslots, y, C);
        CK(cudaStreamSynchronize(stream));
    }
    {   // update variants agree bitwise (outputs and state) with the shipped kernel
        const int B = 64;
        std::vector<bf16> o0(B * C), o1(B * C), s0((long)B * C * 3), s1((long)B * C * 3);
        std::vector<int> hs(B);
        for (int v = 0; v < 3; v++) {
            CK(cudaMemcpy(cst, cstb, (long)cslotsN * C * (K - 1) * 2, cudaMemcpyDeviceToDevice));
            dim3 gr(8, B);
            if (v == 0) causal_conv1d_update_k4<<<gr, 128, 0, stream>>>(x, w, cst, cslots, y, C);
            if (v == 1) update_staged<4><<<gr, 128, 0, stream>>>(x, w, cst, cslots, y, C);
            if (v == 2) update_hoisted<4><<<gr, 128, 0, stream>>>(x, w, cst, cslots, y, C);
            CK(cudaStreamSynchronize(stream));
            CK(cudaMemcpy(v == 0 ? o0.data() : o1.data(), y, B * C * 2, cudaMemcpyDeviceToHost));
            CK(cudaMemcpy(v == 0 ? s0.data() : s1.data(), cst, s0.size() * 2, cudaMemcpyDeviceToHost));
            if (v > 0) printf("check update variant %d: out %s, state %s\n", v, memcmp(o0.data(), o1.data(), o0.size() * 2) ? "DIFFER" : "same",
                              memcmp(s0.data(), s1.data(), s0.size() * 2) ? "DIFFER" : "same");
        }
    }
    for (int B : {1, 64, 256}) {
        if (profile) break;
        const double bytes = 4.0 * B * C + 4.0 * B * C * (K - 1) + 2.0 * C * K;
        const int sets = (int)std::max(1L, std::min((long)(cslotsN / B), (long)std::ceil(200e6 / bytes)));
        dim3 gr((C / 8 + 127) / 128, B);
        double us = time_graph([&](int i) { causal_conv1d_update_k4<<<gr, 128, 0, stream>>>(x + (long)i * B * C, w, cst, cslots + i * B, y + (long)i * B * C, C); }, sets);
        row("conv update (shipped)", "B=" + std::to_string(B), us, bytes);
        // the same bytes as one copy kernel: what a launch of this size can reach
        us = time_graph([&](int i) { copy_kernel<<<std::max(1, (int)(bytes / 16 / 2 / 256)), 256, 0, stream>>>((const float4*)(x + (long)i * B * C * 4), (float4*)(y + (long)i * B * C * 4), (long)(bytes / 2 / 16)); }, sets);
        row("copy kernel, same bytes (reference)", "B=" + std::to_string(B), us, bytes);
    }
    CK(cudaGetLastError());
    printf("done\n");
    return 0;
}
