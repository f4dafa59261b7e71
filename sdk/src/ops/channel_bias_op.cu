// Kernels of the per-channel bias op (sdk/src/ops/channel_bias_op.rs), compiled at run time with NVRTC after
// kernel_types.cu. A [B, C, S] map (S = the product of the spatial sizes) and a bias [C] of the map's type:
//
// - bias_add: y = x + bias[c], in a grid-stride loop over the n = B * C * S elements; when S is a multiple of
//   V = 16 / sizeof(T) and x, y are 16-byte aligned, V elements (one channel's) at a time (vec16_t of
//   kernel_types.cu), else one by one;
// - bias_grad: db[c] = the sum of dy over b and s, one block per channel, accumulated in A and rounded once
//   (rows read as V-element vectors when S is a multiple of V and dy is aligned).

template <typename T, typename A>
__device__ __forceinline__ void bias_add(const T* x, const T* bias, T* y, size_t n, size_t C, size_t S) {
    constexpr int V = vec16_t<T>::N;
    const bool narrow = n <= 0xffffffffu;
    const size_t first = blockIdx.x * (size_t)blockDim.x + threadIdx.x, stride = (size_t)blockDim.x * gridDim.x;
    if (S % V == 0 && is_aligned16(x) && is_aligned16(y)) {
        // n = B * C * S is a multiple of V too: no tail. Vector i holds elements i * V .. i * V + V - 1, all
        // of row i / (S / V) (channel (i / (S / V)) % C).
        const size_t nv = n / V, sv = S / V;
        for (size_t i = first; i < nv; i += stride) {
            const size_t c = narrow ? ((unsigned int)i / (unsigned int)sv) % (unsigned int)C : (i / sv) % C;
            const A b = to_acc(bias[c]);
            const vec16_t<T> a = load16(x + i * V);
            vec16_t<T> r;
#pragma unroll
            for (int j = 0; j < V; ++j) store(&r.v[j], to_acc(a.v[j]) + b);
            store16(y + i * V, r);
        }
        return;
    }
    for (size_t i = first; i < n; i += stride) {
        const size_t c = narrow ? ((unsigned int)i / (unsigned int)S) % (unsigned int)C : (i / S) % C;
        store(y + i, to_acc(x[i]) + to_acc(bias[c]));
    }
}

template <typename T, typename A>
__device__ __forceinline__ void bias_grad(const T* dy, T* db, size_t B, size_t C, size_t S) {
    constexpr int V = vec16_t<T>::N;
    const size_t c = blockIdx.x;
    A v[1] = {A(0)};
    for (size_t b = 0; b < B; ++b) {
        const T* row = dy + (b * C + c) * S;
        size_t done = 0;
        if (S % V == 0 && is_aligned16(row)) {
            for (size_t s = threadIdx.x; s < S / V; s += blockDim.x) {
                const vec16_t<T> a = load16(row + s * V);
#pragma unroll
                for (int j = 0; j < V; ++j) v[0] += to_acc(a.v[j]);
            }
            done = S;
        }
        for (size_t s = done + threadIdx.x; s < S; s += blockDim.x) v[0] += to_acc(row[s]);
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
