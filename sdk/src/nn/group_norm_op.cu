// Kernels of the fused group normalisation (sdk/src/nn/group_norm_op.rs), compiled at run time with NVRTC.
//
// Layout: x, dy, y, dx are contiguous [B, C, S] (S = product of the spatial dims), C = G * cpg channels in
// G groups. Element types T: float, double, bf16_t, f16_t, read with `to_acc` and written with `store` of
// kernel_types.cu (prepended at compile time). Accumulation type A: double for double, float for the others.
//
// Statistics come from per-(sample, channel) sums of d = x - k, where k is the first element of the
// channel's group in that sample: every channel of a group shares k, so the channel sums add up to group
// sums, and shifting by a value of the data keeps var = E[d^2] - E[d]^2 free of the cancellation that
// E[x^2] - E[x]^2 suffers when |mean| >> std. `m1` below is the group mean of d (mean = k + m1).

__device__ __forceinline__ float inv_sqrt(float v) { return 1.0f / sqrtf(v); }
__device__ __forceinline__ double inv_sqrt(double v) { return 1.0 / sqrt(v); }

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

// Group `(b, first channel g0)` statistics from the channel sums (N values per channel, the first two
// the sums of d and d^2), computed by warp 0 (all its lanes get them): m1 = E[d], rstd = 1 / sqrt(var + eps).
// With WITH_DY also the group sums of w * dy (sg) and w * dy * d (sgd) from the channel sums 2 and 3.
template <typename A, int N, bool WITH_DY>
__device__ __forceinline__ void group_stats(const A* sums, const A* w, size_t b, int g0, int C, int cpg, A n, A eps,
                                            A& m1, A& rstd, A& sg, A& sgd) {
    A v[WITH_DY ? 4 : 2];
#pragma unroll
    for (int i = 0; i < (WITH_DY ? 4 : 2); ++i) v[i] = A(0);
    for (int j = threadIdx.x & 31; j < cpg; j += 32) {
        const A* p = sums + (b * C + g0 + j) * N;
        v[0] += p[0];
        v[1] += p[1];
        if constexpr (WITH_DY) {
            const A wj = w[g0 + j];
            v[2] += wj * p[2];
            v[3] += wj * p[3];
        }
    }
    warp_sum(v);
    m1 = v[0] / n;
    A var = v[1] / n - m1 * m1;
    var = var > A(0) ? var : A(0);
    rstd = inv_sqrt(var + eps);
    if constexpr (WITH_DY) {
        sg = v[2];
        sgd = v[3];
    }
}

// One block per (b, c): out[(b * C + c) * N + i] = sums over the channel's S positions of d, d^2 and, for
// N = 4, dy, dy * d. For N = 4 the blocks of sample 0 also copy w to out[B * C * 4 + c] (the weight travels
// with the sums to the input-gradient kernel).
template <typename T, typename A, int N>
__device__ __forceinline__ void channel_sums(const T* x, const T* dy, const A* w, A* out, int C, int cpg, int S) {
    const size_t bc = blockIdx.x;
    const size_t b = bc / C;
    const int c = (int)(bc % C);
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
            const A e = to_acc(dy[bc * S + s]);
            v[2] += e;
            v[3] += e * d;
        }
    }
    block_sum(v);
    if (threadIdx.x == 0) {
#pragma unroll
        for (int i = 0; i < N; ++i) out[bc * N + i] = v[i];
        if constexpr (N == 4) {
            if (b == 0) out[(size_t)gridDim.x * 4 + c] = w[c];
        }
    }
}

// One block per (b, c): y = (d - m1) * rstd * w[c] + bias[c].
template <typename T, typename A>
__device__ __forceinline__ void forward_apply(const T* x, const A* sums, const A* w, const A* bias, T* y, int C, int cpg,
                                              int S, A eps) {
    __shared__ A coef[4];
    const size_t bc = blockIdx.x;
    const size_t b = bc / C;
    const int c = (int)(bc % C);
    const int g0 = c - c % cpg;
    if (threadIdx.x < 32) {
        A m1, rstd, unused0, unused1;
        group_stats<A, 2, false>(sums, w, b, g0, C, cpg, A(cpg) * A(S), eps, m1, rstd, unused0, unused1);
        if (threadIdx.x == 0) {
            coef[0] = to_acc(x[(b * C + g0) * (size_t)S]);
            coef[1] = m1;
            coef[2] = rstd * w[c];
            coef[3] = bias[c];
        }
    }
    __syncthreads();
    const A k = coef[0], m1 = coef[1], scale = coef[2], shift = coef[3];
    const T* xc = x + bc * S;
    T* yc = y + bc * S;
    for (int s = threadIdx.x; s < S; s += blockDim.x) store(yc + s, ((to_acc(xc[s]) - k) - m1) * scale + shift);
}

// One block per (b, c): dx = rstd * (w[c] * dy - mean(g) - xhat * mean(g * xhat)), g = w * dy, means over
// the group; sums = the N = 4 channel sums followed by w.
template <typename T, typename A>
__device__ __forceinline__ void input_grad(const T* x, const T* dy, const A* sums, T* dx, int C, int cpg, int S,
                                           A eps) {
    __shared__ A coef[6];
    const size_t bc = blockIdx.x;
    const size_t b = bc / C;
    const int c = (int)(bc % C);
    const int g0 = c - c % cpg;
    const A* w = sums + (size_t)gridDim.x * 4;
    if (threadIdx.x < 32) {
        const A n = A(cpg) * A(S);
        A m1, rstd, sg, sgd;
        group_stats<A, 4, true>(sums, w, b, g0, C, cpg, n, eps, m1, rstd, sg, sgd);
        if (threadIdx.x == 0) {
            coef[0] = to_acc(x[(b * C + g0) * (size_t)S]);
            coef[1] = m1;
            coef[2] = rstd;
            coef[3] = rstd * w[c];
            coef[4] = rstd * (sg / n);                    // rstd * mean(g)
            coef[5] = rstd * rstd * (sgd - m1 * sg) / n;  // rstd * mean(g * xhat)
        }
    }
    __syncthreads();
    const A k = coef[0], m1 = coef[1], rstd = coef[2], a = coef[3], mg = coef[4], mgx = coef[5];
    const size_t off = bc * S;
    for (int s = threadIdx.x; s < S; s += blockDim.x) {
        const A xhat = ((to_acc(x[off + s]) - k) - m1) * rstd;
        store(dx + off + s, a * to_acc(dy[off + s]) - mg - xhat * mgx);
    }
}

// One thread per channel c: out[c] = dw[c] = sum_b rstd * (sum dy * d - m1 * sum dy), out[C + c] = db[c] =
// sum_b sum dy, from the N = 4 channel sums of B samples.
template <typename A>
__device__ __forceinline__ void param_grads(const A* sums, A* out, int B, int C, int cpg, int S, A eps) {
    const int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    const int g0 = c - c % cpg;
    const A n = A(cpg) * A(S);
    A dw = A(0), db = A(0);
    for (int b = 0; b < B; ++b) {
        A s1 = A(0), s2 = A(0);
        for (int j = 0; j < cpg; ++j) {
            const A* p = sums + ((size_t)b * C + g0 + j) * 4;
            s1 += p[0];
            s2 += p[1];
        }
        const A m1 = s1 / n;
        A var = s2 / n - m1 * m1;
        var = var > A(0) ? var : A(0);
        const A* p = sums + ((size_t)b * C + c) * 4;
        dw += inv_sqrt(var + eps) * (p[3] - m1 * p[2]);
        db += p[2];
    }
    out[c] = dw;
    out[C + c] = db;
}

#define GN_KERNELS(SUFFIX, T, A)                                                                                      \
    extern "C" __global__ void gn_sums_##SUFFIX(const T* x, A* out, int C, int cpg, int S) {                          \
        channel_sums<T, A, 2>(x, nullptr, nullptr, out, C, cpg, S);                                                   \
    }                                                                                                                 \
    extern "C" __global__ void gn_grad_sums_##SUFFIX(const T* x, const T* dy, const A* w, A* out, int C, int cpg,     \
                                                     int S) {                                                         \
        channel_sums<T, A, 4>(x, dy, w, out, C, cpg, S);                                                              \
    }                                                                                                                 \
    extern "C" __global__ void gn_forward_##SUFFIX(const T* x, const A* sums, const A* w, const A* bias, T* y, int C, \
                                                   int cpg, int S, A eps) {                                           \
        forward_apply<T, A>(x, sums, w, bias, y, C, cpg, S, eps);                                                     \
    }                                                                                                                 \
    extern "C" __global__ void gn_grad_input_##SUFFIX(const T* x, const T* dy, const A* sums, T* dx, int C, int cpg,  \
                                                      int S, A eps) {                                                 \
        input_grad<T, A>(x, dy, sums, dx, C, cpg, S, eps);                                                            \
    }

GN_KERNELS(f32, float, float)
GN_KERNELS(f64, double, double)
GN_KERNELS(bf16, bf16_t, float)
GN_KERNELS(f16, f16_t, float)

extern "C" __global__ void gn_grad_params_f32(const float* sums, float* out, int B, int C, int cpg, int S, float eps) {
    param_grads<float>(sums, out, B, C, cpg, S, eps);
}
extern "C" __global__ void gn_grad_params_f64(const double* sums, double* out, int B, int C, int cpg, int S,
                                              double eps) {
    param_grads<double>(sums, out, B, C, cpg, S, eps);
}
