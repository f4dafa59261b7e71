// Kernels of the fused group normalisation (sdk/src/ops/group_norm_op.rs), compiled at run time with NVRTC
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
// Statistics come from sums of d = x - k, where k is the first element of the (sample, group): shifting by
// a value of the data keeps var = E[d^2] - E[d]^2 free of the cancellation that E[x^2] - E[x]^2 suffers when
// |mean| >> std. `m1` below is the group mean of d (mean = k + m1). The forward sums per (sample, group)
// (`gn_sums`, one block over the group's contiguous cpg * S elements), then applies the normalisation with one
// block per (sample, group). The backward sums per (sample, channel) (every channel of a group shares k, so
// the channel sums add up to group sums): g = dy * act'(z) (z recomputed from x and the statistics), then the
// sums of d, d^2, g, g * d, from which the input gradient (one block per (sample, group)) and the parameter
// gradients follow.

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

// Group (b, g) = bg statistics from the group sums gs = [B * G, 2] (sums of d, d^2) of `gn_sums`:
// m1 = E[d], rstd = 1 / sqrt(var + eps), n = cpg * S elements.
template <typename A>
__device__ __forceinline__ void group_moments(const A* gs, size_t bg, A n, A eps, A& m1, A& rstd) {
    m1 = gs[2 * bg] / n;
    A var = gs[2 * bg + 1] / n - m1 * m1;
    var = var > A(0) ? var : A(0);
    rstd = inv_sqrt(var + eps);
}

// Vector accesses (vec16_t of kernel_types.cu, V = 16 / sizeof(T) elements) below: a (sample, group) is the
// contiguous range of L = cpg * S elements at bg * L, a (sample, channel) the S elements at bc * S. Loops over
// such a range go in V-element vectors when its start is 16-byte aligned on every pointer (and, where a vector
// must stay within one channel, S is a multiple of V), the remaining L % V (S % V) elements one by one;
// otherwise element by element.

// One block per (sample, group) bg: out[2 bg], out[2 bg + 1] = the sums of d, d^2 over the group's L elements.
template <typename T, typename A>
__device__ __forceinline__ void group_sums(const T* x, A* out, int L) {
    constexpr int V = vec16_t<T>::N;
    const size_t bg = blockIdx.x;
    const T* xg = x + bg * (size_t)L;
    const A k = to_acc(xg[0]);
    A v[2] = {A(0), A(0)};
    int done = 0;
    if (is_aligned16(xg)) {
        const int nv = L / V;
        for (int i = threadIdx.x; i < nv; i += blockDim.x) {
            const vec16_t<T> a = load16(xg + (size_t)i * V);
#pragma unroll
            for (int j = 0; j < V; ++j) {
                const A d = to_acc(a.v[j]) - k;
                v[0] += d;
                v[1] += d * d;
            }
        }
        done = nv * V;
    }
    for (int i = done + threadIdx.x; i < L; i += blockDim.x) {
        const A d = to_acc(xg[i]) - k;
        v[0] += d;
        v[1] += d * d;
    }
    block_sum(v);
    if (threadIdx.x == 0) {
        out[2 * bg] = v[0];
        out[2 * bg + 1] = v[1];
    }
}

// Per (sample, channel) bc: out[bc * 4 + i] = sums over the channel's S positions of d, d^2, g, g * d,
// g = dy * act'(z). With `silu`, z needs the statistics: `gs` are the group sums of `gn_sums`. Either one warp
// per channel (`per_block` = blockDim.x / 32 > 1 channels per block; warps past B * C return at once) or one
// block per channel (`per_block` = 1).
template <typename T, typename A>
__device__ __forceinline__ void channel_sums(const T* x, const T* dy, const A* p, const A* gs, A* out, int B, int C,
                                             int cpg, int S, A eps, int modulated, int silu, int per_block) {
    constexpr int V = vec16_t<T>::N;
    const size_t BC = (size_t)B * C;
    size_t bc;
    int lane, width;
    if (per_block > 1) {
        bc = (size_t)blockIdx.x * per_block + (threadIdx.x >> 5);
        if (bc >= BC) return;  // the whole warp: no block-wide synchronisation in this mode
        lane = threadIdx.x & 31;
        width = 32;
    } else {
        bc = blockIdx.x;
        lane = threadIdx.x;
        width = blockDim.x;
    }
    const size_t b = bc / C;
    const int c = (int)(bc % C);
    const int G = C / cpg;
    const A k = to_acc(x[(b * C + (c - c % cpg)) * (size_t)S]);
    A m1 = A(0), scale = A(0), add = A(0);
    if (silu) {
        A rstd, mul;
        group_moments(gs, b * G + c / cpg, A(cpg) * A(S), eps, m1, rstd);
        coefficients(p, BC, b, c, C, modulated, mul, add);
        scale = rstd * mul;
    }
    const T* xc = x + bc * S;
    const T* dyc = dy + bc * S;
    A v[4] = {A(0), A(0), A(0), A(0)};
    int done = 0;
    if (is_aligned16(xc) && is_aligned16(dyc)) {
        const int nv = S / V;
        for (int i = lane; i < nv; i += width) {
            const vec16_t<T> a = load16(xc + (size_t)i * V), g = load16(dyc + (size_t)i * V);
#pragma unroll
            for (int j = 0; j < V; ++j) {
                const A d = to_acc(a.v[j]) - k;
                A e = to_acc(g.v[j]);
                if (silu) e *= silu_slope((d - m1) * scale + add);
                v[0] += d;
                v[1] += d * d;
                v[2] += e;
                v[3] += e * d;
            }
        }
        done = nv * V;
    }
    for (int s = done + lane; s < S; s += width) {
        const A d = to_acc(xc[s]) - k;
        A e = to_acc(dyc[s]);
        if (silu) e *= silu_slope((d - m1) * scale + add);
        v[0] += d;
        v[1] += d * d;
        v[2] += e;
        v[3] += e * d;
    }
    if (per_block > 1) {
        warp_sum(v);
    } else {
        block_sum(v);
    }
    if (lane == 0) {
#pragma unroll
        for (int i = 0; i < 4; ++i) out[bc * 4 + i] = v[i];
    }
}

// One block per (sample, group) bg: y = act((d - m1) * rstd * mul + add) over the group's L = cpg * S
// elements, the group statistics from the group sums gs of `gn_sums`, mul and add per channel.
template <typename T, typename A>
__device__ __forceinline__ void forward_apply(const T* x, const A* gs, const A* p, T* y, int C, int cpg, int S,
                                              A eps, int modulated, int silu) {
    constexpr int V = vec16_t<T>::N;
    const size_t bg = blockIdx.x;
    const int G = C / cpg, L = cpg * S;
    const size_t b = bg / G, BC = (size_t)gridDim.x * cpg;
    const int c0 = (int)(bg % G) * cpg;
    A m1, rstd;
    group_moments(gs, bg, A(cpg) * A(S), eps, m1, rstd);
    const T* xg = x + bg * (size_t)L;
    T* yg = y + bg * (size_t)L;
    const A k = to_acc(xg[0]);
    if (S % V == 0 && is_aligned16(xg) && is_aligned16(yg)) {
        // L is a multiple of V: no tail; vector i lies in channel c0 + i / (S / V).
        const int nv = L / V, sv = S / V;
        for (int i = threadIdx.x; i < nv; i += blockDim.x) {
            A mul, add;
            coefficients(p, BC, b, c0 + i / sv, C, modulated, mul, add);
            const A scale = rstd * mul;
            const vec16_t<T> a = load16(xg + (size_t)i * V);
            vec16_t<T> r;
#pragma unroll
            for (int j = 0; j < V; ++j) {
                const A z = ((to_acc(a.v[j]) - k) - m1) * scale + add;
                store(&r.v[j], silu ? z * sigmoid(z) : z);
            }
            store16(yg + (size_t)i * V, r);
        }
        return;
    }
    for (int s = threadIdx.x; s < L; s += blockDim.x) {
        A mul, add;
        coefficients(p, BC, b, c0 + s / S, C, modulated, mul, add);
        const A z = ((to_acc(xg[s]) - k) - m1) * (rstd * mul) + add;
        store(yg + s, silu ? z * sigmoid(z) : z);
    }
}

// One block per (sample, group) bg: dx = rstd * (mul * g - mean(mul * g) - xhat * mean(mul * g * xhat)),
// means over the group; sums = the [B, C, 4] channel sums followed by p.
template <typename T, typename A>
__device__ __forceinline__ void input_grad(const T* x, const T* dy, const A* sums, T* dx, int C, int cpg, int S,
                                           A eps, int modulated, int silu) {
    constexpr int V = vec16_t<T>::N;
    __shared__ A stats[4];
    const size_t bg = blockIdx.x;
    const int G = C / cpg, L = cpg * S;
    const size_t b = bg / G, BC = (size_t)gridDim.x * cpg;
    const int c0 = (int)(bg % G) * cpg;
    const A* p = sums + BC * 4;
    if (threadIdx.x < 32) {
        const A n = A(cpg) * A(S);
        A m1, rstd, sg, sgd;
        group_stats<A, 4, true>(sums, p, BC, b, c0, C, cpg, modulated, n, eps, m1, rstd, sg, sgd);
        if (threadIdx.x == 0) {
            stats[0] = m1;
            stats[1] = rstd;
            stats[2] = rstd * (sg / n);                    // rstd * mean(mul * g)
            stats[3] = rstd * rstd * (sgd - m1 * sg) / n;  // rstd * mean(mul * g * xhat)
        }
    }
    __syncthreads();
    const A m1 = stats[0], rstd = stats[1], mg = stats[2], mgx = stats[3];
    const size_t off = bg * (size_t)L;
    const T* xg = x + off;
    const T* dyg = dy + off;
    T* dxg = dx + off;
    const A k = to_acc(xg[0]);
    if (S % V == 0 && is_aligned16(xg) && is_aligned16(dyg) && is_aligned16(dxg)) {
        // L is a multiple of V: no tail; vector i lies in channel c0 + i / (S / V).
        const int nv = L / V, sv = S / V;
        for (int i = threadIdx.x; i < nv; i += blockDim.x) {
            A mul, add;
            coefficients(p, BC, b, c0 + i / sv, C, modulated, mul, add);
            const A scale = rstd * mul;
            const vec16_t<T> a = load16(xg + (size_t)i * V), g = load16(dyg + (size_t)i * V);
            vec16_t<T> r;
#pragma unroll
            for (int j = 0; j < V; ++j) {
                const A d = to_acc(a.v[j]) - k;
                A e = to_acc(g.v[j]);
                if (silu) e *= silu_slope((d - m1) * scale + add);
                store(&r.v[j], scale * e - mg - (d - m1) * rstd * mgx);
            }
            store16(dxg + (size_t)i * V, r);
        }
        return;
    }
    for (int s = threadIdx.x; s < L; s += blockDim.x) {
        A mul, add;
        coefficients(p, BC, b, c0 + s / S, C, modulated, mul, add);
        const A scale = rstd * mul;
        const A d = to_acc(xg[s]) - k;
        A e = to_acc(dyg[s]);
        if (silu) e *= silu_slope((d - m1) * scale + add);
        store(dxg + s, scale * e - mg - (d - m1) * rstd * mgx);
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
    extern "C" __global__ void gn_sums_##SUFFIX(const T* x, A* out, int L) { group_sums<T, A>(x, out, L); }     \
    extern "C" __global__ void gn_grad_sums_##SUFFIX(const T* x, const T* dy, const A* p, const A* gs, A* out,    \
                                                     int B, int C, int cpg, int S, A eps, int modulated,          \
                                                     int silu, int per_block) {                                   \
        channel_sums<T, A>(x, dy, p, gs, out, B, C, cpg, S, eps, modulated, silu, per_block);                     \
    }                                                                                                             \
    extern "C" __global__ void gn_forward_##SUFFIX(const T* x, const A* gs, const A* p, T* y, int C, int cpg,     \
                                                   int S, A eps, int modulated, int silu) {                       \
        forward_apply<T, A>(x, gs, p, y, C, cpg, S, eps, modulated, silu);                                        \
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
