// Launch-cost anchor in plain CUDA C++ (not part of jnext; built and run on the GPU host by
// src/device/pack-and-run.sh --launch-anchor): host time of an eager launch of an empty kernel through
// the driver API (cuLaunchKernel, what jnext calls through FFM) and the runtime API (<<<>>>, what PyTorch
// uses), measured exactly like `jnext bench kernels`: 500 launches per round, then a wait; median of 40 rounds
// after 20 warm-up rounds.
#include <cuda.h>
#include <cuda_runtime.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

extern "C" __global__ void empty_kernel(int* sink, int n) {
    if (sink != nullptr && threadIdx.x == 0 && blockIdx.x == 0) sink[0] = n;
}

#define CK(x) do { auto r = (x); if (r != 0) { std::printf("error %d at %s\n", (int)r, #x); return 1; } } while (0)

int main() {
    CK(cudaFree(0));
    cudaStream_t s;
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CUfunction f;
    CK(cudaGetFuncBySymbol(&f, (const void*)empty_kernel));
    const int n = 500, rounds = 40, warm = 20;
    std::vector<double> drv, rt;
    for (int r = 0; r < warm + rounds; r++) {
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < n; i++) {
            int* sink = nullptr; int v = i;
            void* args[] = {&sink, &v};
            CK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, (CUstream)s, args, nullptr));
        }
        auto t1 = std::chrono::steady_clock::now();
        CK(cudaStreamSynchronize(s));
        if (r >= warm) drv.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / n);
    }
    for (int r = 0; r < warm + rounds; r++) {
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < n; i++) empty_kernel<<<1, 32, 0, s>>>(nullptr, i);
        auto t1 = std::chrono::steady_clock::now();
        CK(cudaStreamSynchronize(s));
        if (r >= warm) rt.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / n);
    }
    std::sort(drv.begin(), drv.end());
    std::sort(rt.begin(), rt.end());
    std::printf("{\"c_cuLaunchKernel_host_us\": %.3f, \"c_runtime_launch_host_us\": %.3f}\n", drv[rounds / 2], rt[rounds / 2]);
    return 0;
}
