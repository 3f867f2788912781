// Timing harness for the chunked gated-delta-rule kernels (kernels-ptx/.../gated_delta_rule_chunked.cu), built and run
// on the GPU host:  nvcc -O3 -std=c++17 -arch=sm_90 -o /tmp/h src/device/gdn_chunk_harness.cu && /tmp/h 4096 16384
// Times each pass and variant alone (CUDA events, median of 20 after warm-up) at the 80B geometry (Hk 16, Hv 32,
// d 128, one sequence), so that one device call compares many variants. Experiment-only entry points live here.
#include "../../kernels-ptx/src/main/cuda/gated_delta_rule_chunked.cu"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { printf("CUDA %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); exit(1); } } while (0)

#define PREP_ARGS const bf16* qkv, int ld, const float* beta, const float* g, const int* cu, const int* slots, int nseq, \
                  int tokens, int Hk, int Hv, float scale, unsigned char* cb
#define PREP_PASS qkv, ld, beta, g, cu, slots, nseq, tokens, Hk, Hv, scale, cb
extern "C" __global__ void __launch_bounds__(128, 4) prep_noinv(PREP_ARGS) { prep_body<1>(PREP_PASS); }
extern "C" __global__ void __launch_bounds__(128, 4) prep_noap(PREP_ARGS) { prep_body<2>(PREP_PASS); }

__device__ uint32_t mix(uint32_t x) {
    x ^= x >> 16; x *= 0x7feb352dU; x ^= x >> 15; x *= 0x846ca68bU; x ^= x >> 16;
    return x;
}
// ≈ N(0, 1) from the sum of four uniforms; lo..hi uniform when gauss == 0
__global__ void fill(float* f, bf16* b, long n, uint32_t seed, int gauss, float lo, float hi) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < n; i += (long)gridDim.x * blockDim.x) {
        uint32_t h = mix((uint32_t)i * 2654435761u ^ seed);
        float v;
        if (gauss) {
            float s = 0.f;
            for (int k = 0; k < 4; k++) { h = mix(h + k); s += (h >> 8) * (1.f / 16777216.f); }
            v = (s - 2.f) * 1.7320508f;
        } else {
            v = lo + (hi - lo) * ((h >> 8) * (1.f / 16777216.f));
        }
        if (f) f[i] = v; else b[i] = __float2bfloat16_rn(v);
    }
}

template <typename F>
float median_ms(F launch, int reps = 20) {
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a)); CK(cudaEventCreate(&b));
    for (int i = 0; i < 3; i++) launch();
    CK(cudaDeviceSynchronize());
    std::vector<float> t;
    for (int i = 0; i < reps; i++) {
        CK(cudaEventRecord(a)); launch(); CK(cudaEventRecord(b)); CK(cudaEventSynchronize(b));
        float ms; CK(cudaEventElapsedTime(&ms, a, b)); t.push_back(ms);
    }
    CK(cudaGetLastError());
    std::sort(t.begin(), t.end());
    return t[reps / 2];
}

int main(int argc, char** argv) {
    const int Hk = 16, Hv = 32, D = 128, ld = 2 * Hk * D + Hv * D;
    std::vector<int> Ts;
    for (int i = 1; i < argc; i++) Ts.push_back(atoi(argv[i]));
    if (Ts.empty()) Ts = {4096, 16384, 65536};
    const int maxT = *std::max_element(Ts.begin(), Ts.end());
    bf16 *qkv, *out; float *beta, *g, *state; int* meta; unsigned char* cb;
    const long cbBytes = (long)(1 + (maxT + 63) / 64) * Hv * CB_BYTES;
    CK(cudaMalloc(&qkv, 2L * maxT * ld)); CK(cudaMalloc(&out, 2L * maxT * Hv * D));
    CK(cudaMalloc(&beta, 4L * maxT * Hv)); CK(cudaMalloc(&g, 4L * maxT * Hv));
    CK(cudaMalloc(&state, 4L * Hv * D * D)); CK(cudaMalloc(&meta, 16)); CK(cudaMalloc(&cb, cbBytes));
    fill<<<1024, 256>>>(nullptr, qkv, (long)maxT * ld, 1, 1, 0, 0);
    fill<<<1024, 256>>>(beta, nullptr, (long)maxT * Hv, 2, 0, 0.05f, 1.f);
    fill<<<1024, 256>>>(g, nullptr, (long)maxT * Hv, 3, 0, -0.3f, 0.f);
    fill<<<1024, 256>>>(state, nullptr, (long)Hv * D * D, 4, 0, -0.1f, 0.1f);
    CK(cudaGetLastError());
    const int prepSmem = sizeof(PrepSmem), ss = sizeof(StateSmem);
    CK(cudaFuncSetAttribute(gdr_chunk_prep_d128, cudaFuncAttributeMaxDynamicSharedMemorySize, prepSmem));
    CK(cudaFuncSetAttribute(prep_noinv, cudaFuncAttributeMaxDynamicSharedMemorySize, prepSmem));
    CK(cudaFuncSetAttribute(prep_noap, cudaFuncAttributeMaxDynamicSharedMemorySize, prepSmem));
    CK(cudaFuncSetAttribute(gdr_chunk_state_d128, cudaFuncAttributeMaxDynamicSharedMemorySize, ss));
    const float scale = 1.f / sqrtf((float)D);
    printf("%-26s %8s %10s %10s\n", "kernel", "T", "us", "us/chunk");
    for (int T : Ts) {
        int h_meta[4] = {0, T, 0, 0};
        CK(cudaMemcpy(meta, h_meta, 16, cudaMemcpyHostToDevice));
        const int* cu = meta; const int* slots = meta + 2;
        const int ids = 1 + (T + 63) / 64, nch = (T + 63) / 64;
        auto prep = [&](auto kern) { return [=] { kern<<<dim3(ids, Hk), 128, prepSmem>>>(qkv, ld, beta, g, cu, slots, 1, T, Hk, Hv, scale, cb); }; };
        auto row = [&](const char* name, float ms) { printf("%-26s %8d %10.1f %10.3f\n", name, T, ms * 1e3, ms * 1e3 / nch); };
        row("prep", median_ms(prep(gdr_chunk_prep_d128)));
        row("prep no inversion", median_ms(prep(prep_noinv)));
        row("prep no A/P/inversion", median_ms(prep(prep_noap)));
        median_ms(prep(gdr_chunk_prep_d128), 1);  // leave valid chunk blocks behind
        row("state", median_ms([=] { gdr_chunk_state_d128<<<dim3(1, Hv, D / 32), 160, ss>>>(qkv, ld, cu, slots, T, 1, Hk, Hv, D, cb, state, out); }));
        row("prep + state", median_ms([=] {
            gdr_chunk_prep_d128<<<dim3(ids, Hk), 128, prepSmem>>>(qkv, ld, beta, g, cu, slots, 1, T, Hk, Hv, scale, cb);
            gdr_chunk_state_d128<<<dim3(1, Hv, D / 32), 160, ss>>>(qkv, ld, cu, slots, T, 1, Hk, Hv, D, cb, state, out); }));
    }
    CK(cudaDeviceSynchronize());
    printf("ok\n");
    return 0;
}
