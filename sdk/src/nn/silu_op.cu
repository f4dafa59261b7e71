// Kernels of the SiLU op (sdk/src/nn/silu_op.rs), compiled at run time with NVRTC after kernel_types.cu and
// sigmoid.cu.
//
// Element-wise over n contiguous elements (grid-stride loops): y = x * s and dx = dy * s * (1 + x * (1 - s)),
// s = sigmoid(x), computed in A (double for double, float for the others) and rounded once. Element types
// T: float, double, bf16_t, f16_t (kernel_types.cu).

template <typename T, typename A>
__device__ __forceinline__ void silu_fwd(const T* x, T* y, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)blockDim.x * gridDim.x) {
        const A v = to_acc(x[i]);
        store(y + i, v * sigmoid(v));
    }
}

template <typename T, typename A>
__device__ __forceinline__ void silu_bwd(const T* x, const T* dy, T* dx, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)blockDim.x * gridDim.x) {
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
