// Kernels of the 2x resampling ops (sdk/src/nn/resample_op.rs), compiled at run time with NVRTC after
// kernel_types.cu.
//
// Both walk the n elements of the small side, a [rows, w] matrix (rows = B * C * H for a [B, C, H, W] map),
// in grid-stride loops; the big side is [2 * rows, 2 * w], element (r, c) of the small side owning the 2x2
// block at rows 2r, 2r + 1 and columns 2c, 2c + 1:
//
// - resample_spread: big = scale * small on each block (nearest up-sampling, scale 1; the average pool's
//   gradient, scale 1/4);
// - resample_gather: small = scale * the block's sum (the up-sampling's gradient, scale 1; average pooling,
//   scale 1/4), summed as ((top-left + top-right) + bottom-left) + bottom-right, candle's avg_pool2d order.
//
// Values are computed in A (double for double, float for the others) and rounded once. Element types T:
// float, double, bf16_t, f16_t (kernel_types.cu).

// Two adjacent elements, stored with one instruction (the big side is a fresh allocation and every block
// starts at an even column of an even row length: always aligned).
template <typename T>
struct alignas(2 * sizeof(T)) pair_t {
    T lo, hi;
};

// i / w, in 32-bit arithmetic when every index fits (a 64-bit division is a long instruction sequence that
// would dominate these memory-bound loops). The condition is the same for every thread.
__device__ __forceinline__ size_t row_of(size_t i, size_t w, bool narrow) {
    return narrow ? (size_t)((unsigned int)i / (unsigned int)w) : i / w;
}

template <typename T, typename A>
__device__ __forceinline__ void spread(const T* x, T* y, size_t n, size_t w, A scale) {
    const bool narrow = n <= 0xffffffffu;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)blockDim.x * gridDim.x) {
        const size_t r = row_of(i, w, narrow);
        pair_t<T> v;
        store(&v.lo, to_acc(x[i]) * scale);
        v.hi = v.lo;
        pair_t<T>* top = reinterpret_cast<pair_t<T>*>(y + 4 * r * w + 2 * (i - r * w));
        top[0] = v;
        top[w] = v;
    }
}

template <typename T, typename A>
__device__ __forceinline__ void gather(const T* x, T* y, size_t n, size_t w, A scale) {
    const bool narrow = n <= 0xffffffffu;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)blockDim.x * gridDim.x) {
        const size_t r = row_of(i, w, narrow);
        const T* top = x + 4 * r * w + 2 * (i - r * w);
        const T* bottom = top + 2 * w;
        store(y + i, (((to_acc(top[0]) + to_acc(top[1])) + to_acc(bottom[0])) + to_acc(bottom[1])) * scale);
    }
}

#define RESAMPLE_KERNELS(SUFFIX, T, A)                                                                   \
    extern "C" __global__ void resample_spread_##SUFFIX(const T* x, T* y, size_t n, size_t w, A scale) { \
        spread<T, A>(x, y, n, w, scale);                                                                 \
    }                                                                                                    \
    extern "C" __global__ void resample_gather_##SUFFIX(const T* x, T* y, size_t n, size_t w, A scale) { \
        gather<T, A>(x, y, n, w, scale);                                                                 \
    }

RESAMPLE_KERNELS(f32, float, float)
RESAMPLE_KERNELS(f64, double, double)
RESAMPLE_KERNELS(bf16, bf16_t, float)
RESAMPLE_KERNELS(f16, f16_t, float)
