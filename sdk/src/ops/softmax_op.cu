// Kernels of the row softmax op (sdk/src/ops/softmax_op.rs), compiled at run time with NVRTC after
// kernel_types.cu. R contiguous rows of L elements; one warp per row (a block of 256 threads holds 8 rows),
// values in A (float, double for double), each result rounded once:
//
// - softmax_forward: m = max, s = sum exp(x - m), y = exp(x - m) / s;
// - softmax_backward: dx = y * (dy - sum(dy * y)), with y recomputed from x in A (a bf16-rounded y would
//   lose the 1 - y of a peaked row).

__device__ __forceinline__ float exp_acc(float v) { return expf(v); }
// -infinity (NVRTC has no math.h for INFINITY).
__device__ __forceinline__ float neg_inf(float) { return __int_as_float(0xff800000); }
__device__ __forceinline__ double neg_inf(double) { return __longlong_as_double(0xfff0000000000000ULL); }
__device__ __forceinline__ double exp_acc(double v) { return exp(v); }

template <typename A>
__device__ __forceinline__ A warp_max(A v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        const A other = __shfl_xor_sync(0xffffffffu, v, o);
        v = other > v ? other : v;
    }
    return v;
}

template <typename A>
__device__ __forceinline__ A warp_add(A v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

template <typename T, typename A>
__device__ __forceinline__ void softmax_forward(const T* x, T* y, size_t R, size_t L) {
    const size_t row = blockIdx.x * (size_t)(blockDim.x >> 5) + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= R) return;
    const T* xr = x + row * L;
    T* yr = y + row * L;
    A m = neg_inf(A(0));
    for (size_t j = lane; j < L; j += 32) {
        const A v = to_acc(xr[j]);
        m = v > m ? v : m;
    }
    m = warp_max(m);
    A s = A(0);
    for (size_t j = lane; j < L; j += 32) s += exp_acc(to_acc(xr[j]) - m);
    const A inv = A(1) / warp_add(s);
    for (size_t j = lane; j < L; j += 32) store(yr + j, exp_acc(to_acc(xr[j]) - m) * inv);
}

template <typename T, typename A>
__device__ __forceinline__ void softmax_backward(const T* x, const T* dy, T* dx, size_t R, size_t L) {
    const size_t row = blockIdx.x * (size_t)(blockDim.x >> 5) + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= R) return;
    const T* xr = x + row * L;
    const T* gr = dy + row * L;
    A m = neg_inf(A(0));
    for (size_t j = lane; j < L; j += 32) {
        const A v = to_acc(xr[j]);
        m = v > m ? v : m;
    }
    m = warp_max(m);
    A s = A(0), eg = A(0);
    for (size_t j = lane; j < L; j += 32) {
        const A e = exp_acc(to_acc(xr[j]) - m);
        s += e;
        eg += e * to_acc(gr[j]);
    }
    const A inv = A(1) / warp_add(s);
    const A dot = warp_add(eg) * inv;
    for (size_t j = lane; j < L; j += 32) store(dx + row * L + j, exp_acc(to_acc(xr[j]) - m) * inv * (to_acc(gr[j]) - dot));
}

#define SOFTMAX_KERNELS(SUFFIX, T, A)                                                                              \
    extern "C" __global__ void softmax_forward_##SUFFIX(const T* x, T* y, size_t R, size_t L) {                   \
        softmax_forward<T, A>(x, y, R, L);                                                                         \
    }                                                                                                              \
    extern "C" __global__ void softmax_backward_##SUFFIX(const T* x, const T* dy, T* dx, size_t R, size_t L) {    \
        softmax_backward<T, A>(x, dy, dx, R, L);                                                                   \
    }

SOFTMAX_KERNELS(f32, float, float)
SOFTMAX_KERNELS(f64, double, double)
SOFTMAX_KERNELS(bf16, bf16_t, float)
SOFTMAX_KERNELS(f16, f16_t, float)
