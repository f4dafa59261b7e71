// Element types of the sdk's NVRTC kernels (sdk/src/ops/custom_op.rs prepends this file to every kernel
// source before compiling it): float, double, and bf16 / f16 carried as 16-bit patterns and converted here
// (no cuda_bf16.h / cuda_fp16.h, so NVRTC needs no include path). `to_acc` reads an element into its
// arithmetic type (double for double, float for the others); `store` rounds an arithmetic value once into
// an element.

struct __align__(2) bf16_t { unsigned short bits; };
struct __align__(2) f16_t { unsigned short bits; };

__device__ __forceinline__ float to_acc(float v) { return v; }
__device__ __forceinline__ double to_acc(double v) { return v; }
__device__ __forceinline__ float to_acc(bf16_t v) { return __uint_as_float(((unsigned int)v.bits) << 16); }
__device__ __forceinline__ float to_acc(f16_t v) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v.bits));
    return f;
}

__device__ __forceinline__ void store(float* p, float v) { *p = v; }
__device__ __forceinline__ void store(double* p, double v) { *p = v; }
// Round to nearest even; NaN stays a (quiet) NaN.
__device__ __forceinline__ void store(bf16_t* p, float v) {
    const unsigned int u = __float_as_uint(v);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        p->bits = (unsigned short)((u >> 16) | 0x0040u);
    } else {
        p->bits = (unsigned short)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
}
__device__ __forceinline__ void store(f16_t* p, float v) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));
    p->bits = h;
}

// Block-wide sums of N values per thread (group norm, channel bias).
template <typename A, int N>
__device__ __forceinline__ void warp_sum(A (&v)[N]) {
#pragma unroll
    for (int i = 0; i < N; ++i) {
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) v[i] += __shfl_xor_sync(0xffffffffu, v[i], o);
    }
}

// Sums v over the block (blockDim.x a multiple of 32, at most 1024); the result is in warp 0.
template <typename A, int N>
__device__ __forceinline__ void block_sum(A (&v)[N]) {
    __shared__ A partial[N][32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    warp_sum(v);
    if (lane == 0) {
#pragma unroll
        for (int i = 0; i < N; ++i) partial[i][warp] = v[i];
    }
    __syncthreads();
    if (warp == 0) {
#pragma unroll
        for (int i = 0; i < N; ++i) v[i] = lane < warps ? partial[i][lane] : A(0);
        warp_sum(v);
    }
}

// 16-byte vectors for the memory-bound element-wise loops: vec16_t<T> holds 16 / sizeof(T) elements (8 bf16 /
// f16, 4 float, 2 double), loaded and stored with one 16-byte instruction. A vector access needs its address
// 16-byte aligned: candle's allocations are, but the ops' arguments have start offsets applied, so kernels
// check `is_aligned16` on the actual pointers and fall back to scalar loops (and handle tails scalarly).
template <typename T>
struct __align__(16) vec16_t {
    static constexpr int N = 16 / sizeof(T);
    T v[N];
};

template <typename T>
__device__ __forceinline__ bool is_aligned16(const T* p) {
    return (reinterpret_cast<unsigned long long>(p) & 15ull) == 0;
}

// Loads 16 aligned bytes at p.
template <typename T>
__device__ __forceinline__ vec16_t<T> load16(const T* p) {
    union {
        uint4 u;
        vec16_t<T> v;
    } r;
    r.u = *reinterpret_cast<const uint4*>(p);
    return r.v;
}

// Stores 16 aligned bytes at p.
template <typename T>
__device__ __forceinline__ void store16(T* p, const vec16_t<T>& v) {
    union {
        uint4 u;
        vec16_t<T> v;
    } r;
    r.v = v;
    *reinterpret_cast<uint4*>(p) = r.u;
}
