// The logistic sigmoid and SiLU's derivative for the sdk's NVRTC kernels (silu_op.cu, group_norm_op.cu):
// prepended to their sources (after kernel_types.cu) by silu_op.rs and group_norm_op.rs. The same
// expressions as the CPU loops of silu_op.rs.

__device__ __forceinline__ float exp_acc(float v) { return expf(v); }
__device__ __forceinline__ double exp_acc(double v) { return exp(v); }

// sigmoid(v) from e = exp(-|v|) <= 1, so that no exp overflows: 1 / (1 + e) for v >= 0, e / (1 + e) below
// (a NaN stays NaN).
template <typename A>
__device__ __forceinline__ A sigmoid(A v) {
    const bool neg = v < A(0);
    const A e = exp_acc(neg ? v : -v);
    return (neg ? e : A(1)) / (A(1) + e);
}

// d/dv silu(v) = s * (1 + v * (1 - s)), s = sigmoid(v).
template <typename A>
__device__ __forceinline__ A silu_slope(A v) {
    const A s = sigmoid(v);
    return s * (A(1) + v * (A(1) - s));
}
