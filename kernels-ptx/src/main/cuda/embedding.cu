// Embedding gather: out[t, :] = table[ids[t], :] (bf16 rows, no scaling). The host validates ids before they are
// uploaded; a negative id (a padding row of a graph bucket) gives a zero row. One thread per 8 columns; hidden % 8 == 0.
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(256)
embedding_gather(const bf16* __restrict__ table, const int* __restrict__ ids, bf16* __restrict__ out, int tokens,
                 int hidden, int vocab) {
    const int vecs = hidden / 8;
    const long i = (long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (long)tokens * vecs) return;
    const long t = i / vecs;
    const int c = (int)(i - t * vecs) * 8;
    const int id = ids[t];
    uint4 v = make_uint4(0u, 0u, 0u, 0u);
    if (id >= 0 && id < vocab) v = *reinterpret_cast<const uint4*>(table + (long)id * hidden + c);
    *reinterpret_cast<uint4*>(out + t * hidden + c) = v;
}
