// Kernels of the per-channel bias op (sdk/src/nn/channel_bias_op.rs), compiled at run time with NVRTC after
// kernel_types.cu. A [B, C, S] map (S = the product of the spatial sizes) and a bias [C] of the map's type:
//
// - bias_add: y = x + bias[c], in a grid-stride loop over the n = B * C * S elements;
// - bias_grad: db[c] = the sum of dy over b and s, one block per channel, accumulated in A and rounded once.

template <typename T, typename A>
__device__ __forceinline__ void bias_add(const T* x, const T* bias, T* y, size_t n, size_t C, size_t S) {
    const bool narrow = n <= 0xffffffffu;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)blockDim.x * gridDim.x) {
        const size_t c = narrow ? ((unsigned int)i / (unsigned int)S) % (unsigned int)C : (i / S) % C;
        store(y + i, to_acc(x[i]) + to_acc(bias[c]));
    }
}

template <typename T, typename A>
__device__ __forceinline__ void bias_grad(const T* dy, T* db, size_t B, size_t C, size_t S) {
    const size_t c = blockIdx.x;
    A v[1] = {A(0)};
    for (size_t b = 0; b < B; ++b) {
        const T* row = dy + (b * C + c) * S;
        for (size_t s = threadIdx.x; s < S; s += blockDim.x) v[0] += to_acc(row[s]);
    }
    block_sum<A, 1>(v);
    if (threadIdx.x == 0) store(db + c, v[0]);
}

#define BIAS_KERNELS(SUFFIX, T, A)                                                                             \
    extern "C" __global__ void bias_add_##SUFFIX(const T* x, const T* bias, T* y, size_t n, size_t C, size_t S) { \
        bias_add<T, A>(x, bias, y, n, C, S);                                                                   \
    }                                                                                                          \
    extern "C" __global__ void bias_grad_##SUFFIX(const T* dy, T* db, size_t B, size_t C, size_t S) {          \
        bias_grad<T, A>(dy, db, B, C, S);                                                                      \
    }

BIAS_KERNELS(f32, float, float)
BIAS_KERNELS(f64, double, double)
BIAS_KERNELS(bf16, bf16_t, float)
BIAS_KERNELS(f16, f16_t, float)
