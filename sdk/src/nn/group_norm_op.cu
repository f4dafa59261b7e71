// Kernels of the fused group normalisation (sdk/src/nn/group_norm_op.rs), compiled at run time with NVRTC
// after kernel_types.cu and sigmoid.cu.
//
// Layout: x, dy, y, dx are contiguous [B, C, S] (S = product of the spatial dims), C = G * cpg channels in
// G groups. Element types T: float, double, bf16_t, f16_t, read with `to_acc` and written with `store` of
// kernel_types.cu (prepended at compile time). Accumulation type A: double for double, float for the others.
//
// The op computes y = act(z), z = xhat * mul + add, xhat the normalised x, with per-(sample, channel)
// coefficients from the parameters p = [weight (C); bias (C)], followed when `modulated` by
// [scale (B * C); shift (B * C)]: mul = weight * (1 + scale), add = bias * (1 + scale) + shift (scale = shift =
// 0 without modulation); act is SiLU when `silu`, else the identity.
//
// Statistics come from per-(sample, channel) sums of d = x - k, where k is the first element of the
// channel's group in that sample: every channel of a group shares k, so the channel sums add up to group
// sums, and shifting by a value of the data keeps var = E[d^2] - E[d]^2 free of the cancellation that
// E[x^2] - E[x]^2 suffers when |mean| >> std. `m1` below is the group mean of d (mean = k + m1).
//
// Backward: g = dy * act'(z) (z recomputed from x and the statistics), then per (sample, channel) the sums
// of d, d^2, g, g * d, from which the input gradient and the parameter gradients follow.

__device__ __forceinline__ float inv_sqrt(float v) { return 1.0f / sqrtf(v); }
__device__ __forceinline__ double inv_sqrt(double v) { return 1.0 / sqrt(v); }

// The coefficients of channel c of sample b (BC = B * C): z = xhat * mul + add.
template <typename A>
__device__ __forceinline__ void coefficients(const A* p, size_t BC, size_t b, int c, int C, int modulated, A& mul,
                                             A& add) {
    mul = p[c];
    add = p[C + c];
    if (modulated) {
        const size_t i = b * C + c;
        const A one_scale = A(1) + p[2 * (size_t)C + i];
        mul *= one_scale;
        add = add * one_scale + p[2 * (size_t)C + BC + i];
    }
}

// Group `(b, first channel g0)` statistics from the channel sums (N values per channel, the first two
// the sums of d and d^2), computed by warp 0 (all its lanes get them): m1 = E[d], rstd = 1 / sqrt(var + eps).
// With WITH_G also the group sums of mul * g (sg) and mul * g * d (sgd) from the channel sums 2 and 3.
template <typename A, int N, bool WITH_G>
__device__ __forceinline__ void group_stats(const A* sums, const A* p, size_t BC, size_t b, int g0, int C, int cpg,
                                            int modulated, A n, A eps, A& m1, A& rstd, A& sg, A& sgd) {
    A v[WITH_G ? 4 : 2];
#pragma unroll
    for (int i = 0; i < (WITH_G ? 4 : 2); ++i) v[i] = A(0);
    for (int j = threadIdx.x & 31; j < cpg; j += 32) {
        const A* s = sums + (b * C + g0 + j) * N;
        v[0] += s[0];
        v[1] += s[1];
        if constexpr (WITH_G) {
            A mul, add;
            coefficients(p, BC, b, g0 + j, C, modulated, mul, add);
            v[2] += mul * s[2];
            v[3] += mul * s[3];
        }
    }
    warp_sum(v);
    m1 = v[0] / n;
    A var = v[1] / n - m1 * m1;
    var = var > A(0) ? var : A(0);
    rstd = inv_sqrt(var + eps);
    if constexpr (WITH_G) {
        sg = v[2];
        sgd = v[3];
    }
}

// The block's (b, c) constants for recomputing z = (d - m1) * scale + add, from the group's m1 and rstd:
// coef = {k, m1, rstd, scale, add}, written by thread 0.
template <typename T, typename A>
__device__ __forceinline__ void channel_coefs(const T* x, const A* p, size_t b, int c, int C, int cpg, int S,
                                              int modulated, A m1, A rstd, A (&coef)[5]) {
    if (threadIdx.x == 0) {
        A mul, add;
        coefficients(p, gridDim.x, b, c, C, modulated, mul, add);
        coef[0] = to_acc(x[(b * C + (c - c % cpg)) * (size_t)S]);
        coef[1] = m1;
        coef[2] = rstd;
        coef[3] = rstd * mul;
        coef[4] = add;
    }
}

// channel_coefs with the group statistics from channel sums of N values (the first two: d, d^2). Run by
// warp 0.
template <typename T, typename A, int N>
__device__ __forceinline__ void stats_coefs(const T* x, const A* sums, const A* p, size_t b, int c, int C, int cpg,
                                            int S, int modulated, A eps, A (&coef)[5]) {
    A m1, rstd, unused0, unused1;
    group_stats<A, N, false>(sums, p, gridDim.x, b, c - c % cpg, C, cpg, modulated, A(cpg) * A(S), eps, m1, rstd,
                             unused0, unused1);
    channel_coefs<T, A>(x, p, b, c, C, cpg, S, modulated, m1, rstd, coef);
}

// One block per (b, c): out[(b * C + c) * N + i] = sums over the channel's S positions of d, d^2 and, for
// N = 4, g, g * d, g = dy * act'(z). With `silu` (N = 4), z needs the statistics: `stats` are the N = 2 sums.
template <typename T, typename A, int N>
__device__ __forceinline__ void channel_sums(const T* x, const T* dy, const A* p, const A* stats, A* out, int C,
                                             int cpg, int S, A eps, int modulated, int silu) {
    __shared__ A coef[5];
    const size_t bc = blockIdx.x;
    const size_t b = bc / C;
    const int c = (int)(bc % C);
    if constexpr (N == 4) {
        if (silu) {
            if (threadIdx.x < 32) stats_coefs<T, A, 2>(x, stats, p, b, c, C, cpg, S, modulated, eps, coef);
            __syncthreads();
        }
    }
    const A k = to_acc(x[(b * C + (c - c % cpg)) * (size_t)S]);
    const T* xc = x + bc * S;
    A v[N];
#pragma unroll
    for (int i = 0; i < N; ++i) v[i] = A(0);
    for (int s = threadIdx.x; s < S; s += blockDim.x) {
        const A d = to_acc(xc[s]) - k;
        v[0] += d;
        v[1] += d * d;
        if constexpr (N == 4) {
            A e = to_acc(dy[bc * S + s]);
            if (silu) e *= silu_slope((d - coef[1]) * coef[3] + coef[4]);
            v[2] += e;
            v[3] += e * d;
        }
    }
    block_sum(v);
    if (threadIdx.x == 0) {
#pragma unroll
        for (int i = 0; i < N; ++i) out[bc * N + i] = v[i];
    }
}

// One block per (b, c): y = act((d - m1) * rstd * mul + add).
template <typename T, typename A>
__device__ __forceinline__ void forward_apply(const T* x, const A* sums, const A* p, T* y, int C, int cpg, int S,
                                              A eps, int modulated, int silu) {
    __shared__ A coef[5];
    const size_t bc = blockIdx.x;
    if (threadIdx.x < 32) stats_coefs<T, A, 2>(x, sums, p, bc / C, (int)(bc % C), C, cpg, S, modulated, eps, coef);
    __syncthreads();
    const A k = coef[0], m1 = coef[1], scale = coef[3], add = coef[4];
    const T* xc = x + bc * S;
    T* yc = y + bc * S;
    for (int s = threadIdx.x; s < S; s += blockDim.x) {
        const A z = ((to_acc(xc[s]) - k) - m1) * scale + add;
        store(yc + s, silu ? z * sigmoid(z) : z);
    }
}

// One block per (b, c): dx = rstd * (mul * g - mean(mul * g) - xhat * mean(mul * g * xhat)), means over the
// group; sums = the N = 4 channel sums followed by p.
template <typename T, typename A>
__device__ __forceinline__ void input_grad(const T* x, const T* dy, const A* sums, T* dx, int C, int cpg, int S,
                                           A eps, int modulated, int silu) {
    __shared__ A coef[5];
    __shared__ A means[2];
    const size_t bc = blockIdx.x;
    const size_t b = bc / C;
    const int c = (int)(bc % C);
    const A* p = sums + (size_t)gridDim.x * 4;
    if (threadIdx.x < 32) {
        const A n = A(cpg) * A(S);
        A m1, rstd, sg, sgd;
        group_stats<A, 4, true>(sums, p, gridDim.x, b, c - c % cpg, C, cpg, modulated, n, eps, m1, rstd, sg, sgd);
        channel_coefs<T, A>(x, p, b, c, C, cpg, S, modulated, m1, rstd, coef);
        if (threadIdx.x == 0) {
            means[0] = rstd * (sg / n);                    // rstd * mean(mul * g)
            means[1] = rstd * rstd * (sgd - m1 * sg) / n;  // rstd * mean(mul * g * xhat)
        }
    }
    __syncthreads();
    const A k = coef[0], m1 = coef[1], rstd = coef[2], scale = coef[3], add = coef[4], mg = means[0], mgx = means[1];
    const size_t off = bc * S;
    for (int s = threadIdx.x; s < S; s += blockDim.x) {
        const A d = to_acc(x[off + s]) - k;
        A e = to_acc(dy[off + s]);
        if (silu) e *= silu_slope((d - m1) * scale + add);
        store(dx + off + s, scale * e - mg - (d - m1) * rstd * mgx);
    }
}

// One thread per channel c, from the N = 4 channel sums followed by p: with G0 = sum g and
// G1 = sum g * xhat = rstd * (sum g * d - m1 * sum g) per sample, out[c] = dweight = sum_b (1 + scale) * G1,
// out[C + c] = dbias = sum_b (1 + scale) * G0 and, when modulated, out[2C + b * C + c] = dscale =
// weight * G1 + bias * G0 and out[2C + B * C + b * C + c] = dshift = G0.
template <typename A>
__device__ __forceinline__ void param_grads(const A* sums, A* out, int B, int C, int cpg, int S, A eps,
                                            int modulated) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    const size_t BC = (size_t)B * C;
    const A* p = sums + BC * 4;
    const int g0 = c - c % cpg;
    const A n = A(cpg) * A(S);
    A dw = A(0), db = A(0);
    for (int b = 0; b < B; ++b) {
        A s1 = A(0), s2 = A(0);
        for (int j = 0; j < cpg; ++j) {
            const A* s = sums + ((size_t)b * C + g0 + j) * 4;
            s1 += s[0];
            s2 += s[1];
        }
        const A m1 = s1 / n;
        A var = s2 / n - m1 * m1;
        var = var > A(0) ? var : A(0);
        const A* s = sums + ((size_t)b * C + c) * 4;
        const A g0_sum = s[2];
        const A g1_sum = inv_sqrt(var + eps) * (s[3] - m1 * s[2]);
        if (modulated) {
            const size_t i = (size_t)b * C + c;
            const A one_scale = A(1) + p[2 * (size_t)C + i];
            dw += one_scale * g1_sum;
            db += one_scale * g0_sum;
            out[2 * (size_t)C + i] = p[c] * g1_sum + p[C + c] * g0_sum;
            out[2 * (size_t)C + BC + i] = g0_sum;
        } else {
            dw += g1_sum;
            db += g0_sum;
        }
    }
    out[c] = dw;
    out[C + c] = db;
}

#define GN_KERNELS(SUFFIX, T, A)                                                                                  \
    extern "C" __global__ void gn_sums_##SUFFIX(const T* x, A* out, int C, int cpg, int S) {                      \
        channel_sums<T, A, 2>(x, nullptr, nullptr, nullptr, out, C, cpg, S, A(0), 0, 0);                          \
    }                                                                                                             \
    extern "C" __global__ void gn_grad_sums_##SUFFIX(const T* x, const T* dy, const A* p, const A* stats, A* out, \
                                                     int C, int cpg, int S, A eps, int modulated, int silu) {     \
        channel_sums<T, A, 4>(x, dy, p, stats, out, C, cpg, S, eps, modulated, silu);                             \
    }                                                                                                             \
    extern "C" __global__ void gn_forward_##SUFFIX(const T* x, const A* sums, const A* p, T* y, int C, int cpg,   \
                                                   int S, A eps, int modulated, int silu) {                       \
        forward_apply<T, A>(x, sums, p, y, C, cpg, S, eps, modulated, silu);                                      \
    }                                                                                                             \
    extern "C" __global__ void gn_grad_input_##SUFFIX(const T* x, const T* dy, const A* sums, T* dx, int C,       \
                                                      int cpg, int S, A eps, int modulated, int silu) {           \
        input_grad<T, A>(x, dy, sums, dx, C, cpg, S, eps, modulated, silu);                                       \
    }

GN_KERNELS(f32, float, float)
GN_KERNELS(f64, double, double)
GN_KERNELS(bf16, bf16_t, float)
GN_KERNELS(f16, f16_t, float)

extern "C" __global__ void gn_grad_params_f32(const float* sums, float* out, int B, int C, int cpg, int S, float eps,
                                              int modulated) {
    param_grads<float>(sums, out, B, C, cpg, S, eps, modulated);
}
extern "C" __global__ void gn_grad_params_f64(const double* sums, double* out, int B, int C, int cpg, int S,
                                              double eps, int modulated) {
    param_grads<double>(sums, out, B, C, cpg, S, eps, modulated);
}
