// Kernels of the fused optimizer updates (sdk/src/ops/fused_update.rs), compiled at run time with NVRTC after
// kernel_types.cu. Each updates one tensor in place in a grid-stride loop over its n elements, in A (float,
// double for double), with the operation order of the tensor-op formulas they replace:
//
// - moment1: m = m * b1 + (g * s) * c1                      (c1 = 1 - b1, s = the gradient-clipping scale)
// - moment2: v = v * b2 + ((g * s) * (g * s)) * c2          (c2 = 1 - b2)
// - adamw:   p = p * decay - ((m * k1) / (sqrt(v * k2) + eps)) * lr   (k = 1 / bias correction)
// - ema:     e = e * d + l * (1 - d)

template <typename T, typename A>
__device__ __forceinline__ void moment1(T* m, const T* g, size_t n, A b1, A c1, A s) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)blockDim.x * gridDim.x)
        store(m + i, __fmul_rn(to_acc(m[i]), b1) + __fmul_rn(__fmul_rn(to_acc(g[i]), s), c1));
}

template <typename T, typename A>
__device__ __forceinline__ void moment2(T* v, const T* g, size_t n, A b2, A c2, A s) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)blockDim.x * gridDim.x) {
        const A gs = __fmul_rn(to_acc(g[i]), s);
        store(v + i, __fmul_rn(to_acc(v[i]), b2) + __fmul_rn(__fmul_rn(gs, gs), c2));
    }
}

template <typename T, typename A>
__device__ __forceinline__ void adamw(T* p, const T* m, const T* v, size_t n, A decay, A k1, A k2, A eps, A lr) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)blockDim.x * gridDim.x) {
        const A update = __fmul_rn(to_acc(m[i]), k1) / (sqrt(__fmul_rn(to_acc(v[i]), k2)) + eps);
        store(p + i, __fmul_rn(to_acc(p[i]), decay) - __fmul_rn(update, lr));
    }
}

template <typename T, typename A>
__device__ __forceinline__ void ema(T* e, const T* l, size_t n, A d, A c) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)blockDim.x * gridDim.x)
        store(e + i, __fmul_rn(to_acc(e[i]), d) + __fmul_rn(to_acc(l[i]), c));
}

// __fmul_rn keeps products rounded on their own (no fused multiply-add), as the CPU formulas round them.
__device__ __forceinline__ double __fmul_rn(double a, double b) { return __dmul_rn(a, b); }

#define UPDATE_KERNELS(SUFFIX, T, A)                                                                               \
    extern "C" __global__ void moment1_##SUFFIX(T* m, const T* g, size_t n, A b1, A c1, A s) {                      \
        moment1<T, A>(m, g, n, b1, c1, s);                                                                         \
    }                                                                                                              \
    extern "C" __global__ void moment2_##SUFFIX(T* v, const T* g, size_t n, A b2, A c2, A s) {                      \
        moment2<T, A>(v, g, n, b2, c2, s);                                                                         \
    }                                                                                                              \
    extern "C" __global__ void adamw_##SUFFIX(T* p, const T* m, const T* v, size_t n, A decay, A k1, A k2, A eps,   \
                                              A lr) {                                                              \
        adamw<T, A>(p, m, v, n, decay, k1, k2, eps, lr);                                                           \
    }                                                                                                              \
    extern "C" __global__ void ema_##SUFFIX(T* e, const T* l, size_t n, A d, A c) { ema<T, A>(e, l, n, d, c); }

UPDATE_KERNELS(f32, float, float)
UPDATE_KERNELS(f64, double, double)
UPDATE_KERNELS(bf16, bf16_t, float)
UPDATE_KERNELS(f16, f16_t, float)
