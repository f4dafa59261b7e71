// Kernels of the 2x resampling ops (sdk/src/ops/resample_op.rs), compiled at run time with NVRTC after
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

// Vector paths (vec16_t of kernel_types.cu, V = 16 / sizeof(T) elements): when w is a multiple of V and both
// pointers are 16-byte aligned, a thread takes V small-side elements of one row (i = V * iv, all in row
// r = i / w) and the big side's 2V elements of each of its two rows, two vectors per row (their offsets
// 4 r w + 2 (i - r w) and + 2 w are multiples of 2V: aligned). Otherwise element by element, as above.

template <typename T, typename A>
__device__ __forceinline__ void spread(const T* x, T* y, size_t n, size_t w, A scale) {
    constexpr int V = vec16_t<T>::N;
    const bool narrow = n <= 0xffffffffu;
    const size_t first = blockIdx.x * (size_t)blockDim.x + threadIdx.x, stride = (size_t)blockDim.x * gridDim.x;
    if (w % V == 0 && is_aligned16(x) && is_aligned16(y)) {
        // n = rows * w is a multiple of V: no tail.
        const size_t nv = n / V;
        for (size_t iv = first; iv < nv; iv += stride) {
            const size_t i = iv * V;
            const size_t r = row_of(i, w, narrow);
            const vec16_t<T> a = load16(x + i);
            vec16_t<T> lo, hi;
#pragma unroll
            for (int j = 0; j < V / 2; ++j) {
                store(&lo.v[2 * j], to_acc(a.v[j]) * scale);
                lo.v[2 * j + 1] = lo.v[2 * j];
                store(&hi.v[2 * j], to_acc(a.v[V / 2 + j]) * scale);
                hi.v[2 * j + 1] = hi.v[2 * j];
            }
            T* top = y + 4 * r * w + 2 * (i - r * w);
            store16(top, lo);
            store16(top + V, hi);
            store16(top + 2 * w, lo);
            store16(top + 2 * w + V, hi);
        }
        return;
    }
    for (size_t i = first; i < n; i += stride) {
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
    constexpr int V = vec16_t<T>::N;
    const bool narrow = n <= 0xffffffffu;
    const size_t first = blockIdx.x * (size_t)blockDim.x + threadIdx.x, stride = (size_t)blockDim.x * gridDim.x;
    if (w % V == 0 && is_aligned16(x) && is_aligned16(y)) {
        // n = rows * w is a multiple of V: no tail.
        const size_t nv = n / V;
        for (size_t iv = first; iv < nv; iv += stride) {
            const size_t i = iv * V;
            const size_t r = row_of(i, w, narrow);
            const T* top = x + 4 * r * w + 2 * (i - r * w);
            const vec16_t<T> t0 = load16(top), t1 = load16(top + V);
            const vec16_t<T> b0 = load16(top + 2 * w), b1 = load16(top + 2 * w + V);
            vec16_t<T> out;
#pragma unroll
            for (int j = 0; j < V / 2; ++j) {
                store(&out.v[j], (((to_acc(t0.v[2 * j]) + to_acc(t0.v[2 * j + 1])) + to_acc(b0.v[2 * j])) +
                                  to_acc(b0.v[2 * j + 1])) * scale);
                store(&out.v[V / 2 + j], (((to_acc(t1.v[2 * j]) + to_acc(t1.v[2 * j + 1])) + to_acc(b1.v[2 * j])) +
                                          to_acc(b1.v[2 * j + 1])) * scale);
            }
            store16(y + i, out);
        }
        return;
    }
    for (size_t i = first; i < n; i += stride) {
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
