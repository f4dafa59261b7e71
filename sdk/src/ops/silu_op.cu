// Kernels of the SiLU op (sdk/src/ops/silu_op.rs), compiled at run time with NVRTC after kernel_types.cu and
// sigmoid.cu.
//
// Element-wise over n contiguous elements (grid-stride loops): y = x * s and dx = dy * s * (1 + x * (1 - s)),
// s = sigmoid(x), computed in A (double for double, float for the others) and rounded once. Element types
// T: float, double, bf16_t, f16_t (kernel_types.cu). When every pointer is 16-byte aligned, the first
// n - n % V elements go as V-element vectors (vec16_t of kernel_types.cu), the rest one by one; otherwise
// every element goes one by one.

template <typename T, typename A>
__device__ __forceinline__ void silu_fwd(const T* x, T* y, size_t n) {
    constexpr int V = vec16_t<T>::N;
    const size_t first = blockIdx.x * (size_t)blockDim.x + threadIdx.x, stride = (size_t)blockDim.x * gridDim.x;
    size_t done = 0;
    if (is_aligned16(x) && is_aligned16(y)) {
        const size_t nv = n / V;
        for (size_t i = first; i < nv; i += stride) {
            const vec16_t<T> a = load16(x + i * V);
            vec16_t<T> r;
#pragma unroll
            for (int j = 0; j < V; ++j) {
                const A v = to_acc(a.v[j]);
                store(&r.v[j], v * sigmoid(v));
            }
            store16(y + i * V, r);
        }
        done = nv * V;
    }
    for (size_t i = done + first; i < n; i += stride) {
        const A v = to_acc(x[i]);
        store(y + i, v * sigmoid(v));
    }
}

template <typename T, typename A>
__device__ __forceinline__ void silu_bwd(const T* x, const T* dy, T* dx, size_t n) {
    constexpr int V = vec16_t<T>::N;
    const size_t first = blockIdx.x * (size_t)blockDim.x + threadIdx.x, stride = (size_t)blockDim.x * gridDim.x;
    size_t done = 0;
    if (is_aligned16(x) && is_aligned16(dy) && is_aligned16(dx)) {
        const size_t nv = n / V;
        for (size_t i = first; i < nv; i += stride) {
            const vec16_t<T> a = load16(x + i * V), e = load16(dy + i * V);
            vec16_t<T> r;
#pragma unroll
            for (int j = 0; j < V; ++j) store(&r.v[j], to_acc(e.v[j]) * silu_slope(to_acc(a.v[j])));
            store16(dx + i * V, r);
        }
        done = nv * V;
    }
    for (size_t i = done + first; i < n; i += stride) {
        store(dx + i, to_acc(dy[i]) * silu_slope(to_acc(x[i])));
    }
}

#define SILU_KERNELS(SUFFIX, T, A)                                                                            \
    extern "C" __global__ void silu_forward_##SUFFIX(const T* x, T* y, size_t n) { silu_fwd<T, A>(x, y, n); } \
    extern "C" __global__ void silu_backward_##SUFFIX(const T* x, const T* dy, T* dx, size_t n) {             \
        silu_bwd<T, A>(x, dy, dx, n);                                                                         \
    }

SILU_KERNELS(f32, float, float)
SILU_KERNELS(f64, double, double)
SILU_KERNELS(bf16, bf16_t, float)
SILU_KERNELS(f16, f16_t, float)
