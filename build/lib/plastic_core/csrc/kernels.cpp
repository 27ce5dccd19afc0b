// The fused CPU kernels of the plastic recurrence (declared in kernels.h; operators.cpp calls them):
//
//   forward_kernel   one step: h(t) = tanh(d + (w + alpha * Hebb) h(t-1)), M(t), and the traces of t+1
//   update_kernel    the trace update alone
//   backward_kernel  the whole BPTT recursion, one batch element at a time
//
// Each sweeps a batch element's (N, N) traces while they sit in cache; torch's intra-op thread pool
// (at::parallel_for) splits the batch. The rules are those of plastic_core/hebbian.py (the eager backend).
//
// Results do not depend on the CPU: every sum runs over LANES fixed lanes in a fixed order (FOR_LANES), so the
// portable build and an AVX2 build give the same bits; -ffp-contract=off keeps multiply-adds unfused, so that
// the clip's gradient mask, recomputed from the unclipped value (|u| < c), matches the forward pass.

#include "kernels.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace plastic_core {
namespace {

// the per-element helpers are inlined into the kernels' loops (as one C translation unit would have them)
#define HOT inline __attribute__((always_inline))

template <typename real>
HOT real unclipped(int kind, real H, real E, real hj, real hpi, real mj, real eta, real keep) {
    // the update before the clip; keep = 1 - eta (decay), 1 - eta hj^2 (oja)
    switch (kind) {
    case DECAY: return keep * H + eta * (hj * hpi);
    case OJA: return H * keep + eta * (hj * hpi);
    case HEBB: return H + eta * (hj * hpi);
    case MODULATED: return H + (mj * hj) * hpi;
    default: return H + mj * E;
    }
}

template <typename real>
HOT real keep_of(int kind, real eta, real hj) {
    return kind == DECAY ? 1 - eta : (kind == OJA ? 1 - eta * hj * hj : 1);
}

template <typename real>
HOT real clampr(real x, real c) { return x > c ? c : (x < -c ? -c : x); }

// Sums over i in a fixed order, whatever vector width the compiler picks (SSE, AVX or none): LANES partial sums,
// lane l taking the i with i % LANES == l, added in one fixed tree at the end. BODY adds to acc[l] (one array per
// sum) and may do elementwise work for index i. The lanes of one chunk are independent, so the compiler may run
// them as vector lanes without changing any result: the kernels give the same bits on every x86-64 CPU.
#define LANES 8
#define FOR_LANES(N, BODY)                                                                                          \
    {                                                                                                               \
        long i0_ = 0;                                                                                               \
        for (; i0_ + LANES <= (N); i0_ += LANES) {                                                                  \
            _Pragma("omp simd") for (int l = 0; l < LANES; l++) { const long i = i0_ + l; BODY; }                  \
        }                                                                                                           \
        for (int l = 0; i0_ + l < (N); l++) { const long i = i0_ + l; BODY; }                                     \
    }

template <typename real>
HOT real lane_sum(const real *a) { return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])); }

// run BODY with the non-retroactive rule as the compile-time constant K, so that its loops vectorize
#define BY_KIND(kind, BODY)                                                                                         \
    switch (kind) {                                                                                                 \
    case DECAY: { constexpr int K = DECAY; BODY; } break;                                                          \
    case OJA: { constexpr int K = OJA; BODY; } break;                                                              \
    case HEBB: { constexpr int K = HEBB; BODY; } break;                                                            \
    default: { constexpr int K = MODULATED; BODY; } break;                                                         \
    }

// BY_KIND, the retroactive rule included
#define BY_ANY_KIND(kind, BODY)                                                                                     \
    if ((kind) == RETRO) { constexpr int K = RETRO; BODY; } else BY_KIND(kind, BODY)

#if defined(__AVX__)
inline void stream_vector(float *dst, const float *src) { _mm256_stream_ps(dst, _mm256_loadu_ps(src)); }
inline void stream_vector(double *dst, const double *src) { _mm256_stream_pd(dst, _mm256_loadu_pd(src)); }
#endif

// copy a row to memory that will not be read again soon, bypassing the cache (no read-for-ownership of the
// destination) where the row is aligned for vector streaming stores
template <typename real>
HOT void stream_row(real *dst, const real *src, long N) {
#if defined(__AVX__)
    constexpr long VW = 32 / sizeof(real);
    if ((reinterpret_cast<std::uintptr_t>(dst) & 31) == 0) {
        long i = 0;
        for (; i + VW <= N; i += VW) stream_vector(dst + i, src + i);
        for (; i < N; i++) dst[i] = src[i];
        return;
    }
#endif
    std::memcpy(dst, src, N * sizeof(real));
}

inline void fence() {
#if defined(__AVX__)
    _mm_sfence();  // order the streaming stores before anything that follows
#endif
}

// row j of the traces of one batch element: step t -> t+1 (written to row buffers when streaming)
template <typename real>
HOT void update_row(const Params<real> *P, real hj, real mj, const real *hp, const real *Hr, const real *Er,
                       real *Hor, real *Eor) {
    const long N = P->N;
    const int kind = P->kind, clipped = P->clipped;
    const real eta = (real)P->eta, c = (real)P->c, one_eta = 1 - eta, keep = keep_of(kind, eta, hj);
    if (kind == RETRO) {
#pragma omp simd
        for (long i = 0; i < N; i++) {
            real u = unclipped(RETRO, Hr[i], Er[i], hj, hp[i], mj, eta, keep);
            Eor[i] = one_eta * Er[i] + eta * (hj * hp[i]);
            Hor[i] = clipped ? clampr(u, c) : u;
        }
    } else {
        BY_KIND(kind, _Pragma("omp simd")
            for (long i = 0; i < N; i++) {
                real u = unclipped(K, Hr[i], real(0), hj, hp[i], mj, eta, keep);
                Hor[i] = clipped ? clampr(u, c) : u;
            })
    }
}

// row j of Hebb(t+1) (and E) of one batch element into Ho/Eo: in place, or, into a separate buffer (a checkpoint
// or a recomputed trace, read again only after many other traces), through L1 rows and streaming stores
template <typename real>
HOT void update_row_to(const Params<real> *P, long j, real hj, real mj, const real *hp, const real *H,
                          const real *E, real *Ho, real *Eo, real *rowH, real *rowE) {
    const long N = P->N;
    if (Ho == H || !P->stream) {
        update_row(P, hj, mj, hp, H + j * N, E ? E + j * N : nullptr, Ho + j * N, Eo ? Eo + j * N : nullptr);
        return;
    }
    update_row(P, hj, mj, hp, H + j * N, E ? E + j * N : nullptr, rowH, rowE);
    stream_row(Ho + j * N, rowH, N);
    if (E) stream_row(Eo + j * N, rowE, N);
}

template <typename real>
HOT real row_modulation(const Params<real> *P, long j, real m0) {
    return P->fanout ? m0 * P->fanout[j] : m0;
}

// Run body(b0, b1) over chunks of the batch on torch's intra-op thread pool, in at most nthreads chunks (one per
// thread, static; a single chunk runs on the calling thread). at::get_thread_num() < nthreads inside.
template <typename F>
void over_batch(long B, int nthreads, const F &body) {
    const int64_t grain = (B + nthreads - 1) / nthreads;
    at::parallel_for(0, B, grain, [&](int64_t b0, int64_t b1) { body(b0, b1); });
}

// batch elements b0..b1-1 (see forward_kernel)
template <typename real>
void forward_chunk(const Params<real> *P, long b0, long b1, const real *d, const real *hp, const real *H,
                   const real *E, real *Ho, real *Eo, real *h, real *m0, real *p, const real *clamp) {
    const long N = P->N;
    const real *w = P->w, *alpha = P->alpha, *modw = P->modw, *modb = P->modb;
    const bool modulated = P->kind >= MODULATED;
    std::vector<real> rows(2 * N);
    real *rowH = rows.data(), *rowE = rowH + N;
    for (long b = b0; b < b1; b++) {
        const real *Hb = H + b * N * N, *Eb = E ? E + b * N * N : nullptr, *hpb = hp + b * N;
        real *Hob = Ho + b * N * N, *Eob = Eo ? Eo + b * N * N : nullptr, *hb = h + b * N;
        for (long j = 0; j < N; j++) {
            const real *Hr = Hb + j * N, *wr = w + j * N;
            real acc;
            if (P->akind == CONNECTION) {
                const real *ar = alpha + j * N;
                real accs[LANES] = {0};
                FOR_LANES(N, accs[l] += (wr[i] + ar[i] * Hr[i]) * hpb[i])
                acc = lane_sum(accs);
            } else {
                real aws[LANES] = {0}, ahs[LANES] = {0};
                FOR_LANES(N, aws[l] += wr[i] * hpb[i]; ahs[l] += Hr[i] * hpb[i])
                const real aw = lane_sum(aws), ah = lane_sum(ahs);
                p[b * N + j] = ah;
                acc = aw + (P->akind == NEURON ? alpha[j] : alpha[0]) * ah;
            }
            hb[j] = clamp && !std::isnan(clamp[b * N + j]) ? clamp[b * N + j] : std::tanh(d[b * N + j] + acc);
            if (!modulated) update_row_to(P, j, hb[j], real(0), hpb, Hb, Eb, Hob, Eob, rowH, rowE);
        }
        if (modulated) {  // M(t) needs the whole h(t): a second sweep
            real z = modb[0];
            for (long j = 0; j < N; j++) z += modw[j] * hb[j];
            const real mb = std::tanh(z);
            m0[b] = mb;
            for (long j = 0; j < N; j++)
                update_row_to(P, j, hb[j], row_modulation(P, j, mb), hpb, Hb, Eb, Hob, Eob, rowH, rowE);
        }
    }
    if (Ho != H) fence();
}


template <typename real>
void update_chunk(const Params<real> *P, long b0, long b1, const real *h, const real *hp, const real *m0,
                  const real *H, const real *E, real *Ho, real *Eo) {
    const long N = P->N;
    std::vector<real> rows(2 * N);
    real *rowH = rows.data(), *rowE = rowH + N;
    for (long b = b0; b < b1; b++) {
        const real mb = m0 ? m0[b] : 0;
        for (long j = 0; j < N; j++)
            update_row_to(P, j, h[b * N + j], row_modulation(P, j, mb), hp + b * N, H + b * N * N,
                          E ? E + b * N * N : nullptr, Ho + b * N * N, Eo ? Eo + b * N * N : nullptr, rowH, rowE);
    }
    if (Ho != H) fence();
}


// row j of the new adjoints dL/dHebb(t) (and dL/dE(t)) and its share of dL/dh(t-1) (into r), given
// ga_j = dL/da_j (a = the pre-activation)
template <typename real>
HOT void adjoint_row(const Params<real> *P, long j, real hj, real mj, real gaj, const real *hpb, const real *Hb,
                        const real *Eb, real *gHb, real *gEb, real *r, real *ga_alpha) {
    const long N = P->N;
    const int kind = P->kind;
    const real eta = (real)P->eta, one_eta = 1 - eta, keep = keep_of(kind, eta, hj);
    // the clip passes the gradient where |u| < c
    const real lim = P->clipped ? (real)P->c : std::numeric_limits<real>::infinity();
    const real scale = kind == DECAY || kind == OJA ? keep : 1;
    const real *alpha = P->alpha;
    const real *Hr = Hb + j * N, *Er = Eb ? Eb + j * N : nullptr, *wr = P->w + j * N;
    real *gHr = gHb + j * N, *gEr = gEb ? gEb + j * N : nullptr;
    // one loop for every rule and alpha layout: ALPHA_TERMS adds alpha's part of the adjoints (per connection:
    // ar[i], and the gradient of alpha itself; per neuron or scalar: the row's one coefficient)
#define ADJOINT_LOOP(K, ALPHA_TERMS)                                                                                \
    _Pragma("omp simd") for (long i = 0; i < N; i++) {                                                             \
        real u = unclipped(K, Hr[i], K == RETRO ? Er[i] : real(0), hj, hpb[i], mj, eta, keep);                    \
        real gu = std::abs(u) < lim ? gHr[i] : 0;                                                                   \
        if (K == RETRO) gEr[i] = one_eta * gEr[i] + mj * gu;                                                        \
        gHr[i] = scale * gu;                                                                                        \
        ALPHA_TERMS;                                                                                                \
    }
    if (P->akind == CONNECTION) {
        const real *ar = alpha + j * N;
        real *gar = ga_alpha + j * N;
        BY_ANY_KIND(kind, ADJOINT_LOOP(K, {
            gHr[i] += ar[i] * (gaj * hpb[i]);
            r[i] += (wr[i] + ar[i] * Hr[i]) * gaj;
            gar[i] += (gaj * hpb[i]) * Hr[i];
        }))
    } else {
        const real aj = P->akind == NEURON ? alpha[j] : alpha[0], gaa = gaj * aj;
        BY_ANY_KIND(kind, ADJOINT_LOOP(K, {
            gHr[i] += gaa * hpb[i];
            r[i] += wr[i] * gaj + Hr[i] * gaa;
        }))
    }
#undef ADJOINT_LOOP
}

// One batch element, one step of BPTT. In: g = dL/dh(t) (N), gH/gE = dL/dHebb(t+1), dL/dE(t+1) (N, N).
// Out: g = dL/d drive(t), r = dL/dh(t-1) from this step, gH/gE = dL/dHebb(t), dL/dE(t); returns this step's
// dL/d eta and writes dL/dz to *gz (z = W_mod h + b_mod); ga_alpha (N*N) and gf (N) accumulate; gm: N of work.
// Rules without modulation: one sweep (row j's reductions give ga_j at once). With modulation, ga needs M's
// gradient, a sum over all rows: a first sweep for the reductions, a second for the adjoints.
template <typename real>
real backward_elem(const Params<real> *P, const real *hb, const real *hpb, const real *Hb, const real *Eb, real mb,
                   const real *cl, real *gcl, real *gHb, real *gEb, real *gb, real *r, real *gm, real *ga_alpha,
                   real *gf, real *gz) {
    const long N = P->N;
    const int kind = P->kind;
    const real eta = (real)P->eta;
    const real lim = P->clipped ? (real)P->c : std::numeric_limits<real>::infinity();
    const real *modw = P->modw, *fanout = P->fanout;
    real eta_acc = 0;
    std::memset(r, 0, N * sizeof(real));
    if (kind < MODULATED) {
        for (long j = 0; j < N; j++) {
            const real hj = hb[j], keep = keep_of(kind, eta, hj), coef = eta * hj;
            const real *Hr = Hb + j * N, *gHr = gHb + j * N;
            real qs[LANES] = {0}, ss[LANES] = {0};
            BY_KIND(kind, FOR_LANES(N, {
                    real u = unclipped(K, Hr[i], real(0), hj, hpb[i], real(0), eta, keep);
                    real gu = std::abs(u) < lim ? gHr[i] : 0;
                    qs[l] += gu * hpb[i];
                    ss[l] += gu * Hr[i];
                    r[i] += gu * coef;
                }))
            const real q = lane_sum(qs), s = lane_sum(ss);
            if (kind == OJA) {
                gb[j] += eta * q - 2 * eta * hj * s;
                eta_acc += hj * q - hj * hj * s;
            } else {
                gb[j] += eta * q;
                eta_acc += kind == DECAY ? hj * q - s : hj * q;
            }
            if (cl && !std::isnan(cl[j])) {  // a clamped h_j: its gradient goes to the clamp, none to a pre-activation
                gcl[j] = gb[j];
                gb[j] = 0;
            } else {
                gb[j] *= 1 - hj * hj;
            }
            adjoint_row(P, j, hj, real(0), gb[j], hpb, Hb, Eb, gHb, gEb, r, ga_alpha);
        }
        return eta_acc;
    }
    // sweep 1: the reductions dL/dh(t) needs
    for (long j = 0; j < N; j++) {
        const real hj = hb[j], mj = row_modulation(P, j, mb), keep = keep_of(kind, eta, hj);
        const real *Hr = Hb + j * N, *gHr = gHb + j * N;
        real qs[LANES] = {0};
        if (kind == RETRO) {
            const real *Er = Eb + j * N, *gEr = gEb + j * N;
            const real coef = eta * hj;
            real ss[LANES] = {0}, gms[LANES] = {0};
            FOR_LANES(N, {
                real u = unclipped(RETRO, Hr[i], Er[i], hj, hpb[i], mj, eta, keep);
                real gu = std::abs(u) < lim ? gHr[i] : 0;
                gms[l] += gu * Er[i];
                qs[l] += gEr[i] * hpb[i];
                ss[l] += gEr[i] * Er[i];
                r[i] += gEr[i] * coef;
            })
            const real q = lane_sum(qs), s = lane_sum(ss);
            gm[j] = lane_sum(gms);
            gb[j] += eta * q;
            eta_acc += hj * q - s;
        } else {
            const real coef = mj * hj;
            FOR_LANES(N, {
                real u = unclipped(MODULATED, Hr[i], real(0), hj, hpb[i], mj, eta, keep);
                real gu = std::abs(u) < lim ? gHr[i] : 0;
                qs[l] += gu * hpb[i];
                r[i] += gu * coef;
            })
            const real q = lane_sum(qs);
            gb[j] += q * mj;
            gm[j] = q * hj;
        }
    }
    real gm0 = 0;
    for (long j = 0; j < N; j++) gm0 += fanout ? gm[j] * fanout[j] : gm[j];
    if (fanout)
        for (long j = 0; j < N; j++) gf[j] += gm[j] * mb;
    const real gzb = gm0 * (1 - mb * mb);
    *gz = gzb;
    // sweep 2: the new adjoints and dL/dh(t-1)
    for (long j = 0; j < N; j++) {
        gb[j] += gzb * modw[j];
        if (cl && !std::isnan(cl[j])) {
            gcl[j] = gb[j];
            gb[j] = 0;
        } else {
            gb[j] *= 1 - hb[j] * hb[j];
        }
        adjoint_row(P, j, hb[j], row_modulation(P, j, mb), gb[j], hpb, Hb, Eb, gHb, gEb, r, ga_alpha);
    }
    return eta_acc;
}

}  // namespace

template <typename real>
void forward_kernel(const Params<real> *P, const real *d, const real *hp, const real *H, const real *E, real *Ho,
                    real *Eo, real *h, real *m0, real *p, const real *clamp) {
    over_batch(P->B, P->nthreads, [=](long b0, long b1) {
        forward_chunk(P, b0, b1, d, hp, H, E, Ho, Eo, h, m0, p, clamp);
    });
}

template <typename real>
void update_kernel(const Params<real> *P, const real *h, const real *hp, const real *m0, const real *H,
                   const real *E, real *Ho, real *Eo) {
    over_batch(P->B, P->nthreads, [=](long b0, long b1) { update_chunk(P, b0, b1, h, hp, m0, H, E, Ho, Eo); });
}

template <typename real>
void backward_kernel(const Params<real> *P, long T, const std::vector<long> &starts, long longest,
                     const std::vector<const real *> &ckH, const std::vector<const real *> &ckE, const real *hs,
                     const real *h0, const real *m0s, const real *clamps, real *gclamps, real *g, real *carry,
                     real *gH, real *gE, real *galpha, real *gfan, real *geta, real *gz, real *work, real *seg) {
    const long B = P->B, N = P->N, NN = N * N, nseg = (long)starts.size() - 1;
    const bool eligible = !ckE.empty();
    const long per_thread = (eligible ? 2 : 1) * (longest - 1) * NN;
    over_batch(B, P->nthreads, [&](long b0, long b1) {
        const long tid = at::get_thread_num();
        real *bufH = seg + tid * per_thread, *bufE = eligible ? bufH + (longest - 1) * NN : nullptr;
        real *gm = work + tid * N;
        real *ga_alpha = galpha ? galpha + tid * NN : nullptr, *gf = gfan ? gfan + tid * N : nullptr;
        for (long b = b0; b < b1; b++) {
            real *gHb = gH + b * NN, *gEb = eligible ? gE + b * NN : nullptr, *cb = carry + b * N;
            real eta_acc = 0;
            for (long k = nseg - 1; k >= 0; k--) {
                const long t0 = starts[k], t1 = starts[k + 1];
                const real *H0 = ckH[k] + b * NN, *E0 = eligible ? ckE[k] + b * NN : nullptr;
                auto slot_h = [&](long s) -> const real * { return s == 0 ? H0 : bufH + (s - 1) * NN; };
                auto slot_e = [&](long s) -> const real * {
                    return !eligible ? nullptr : (s == 0 ? E0 : bufE + (s - 1) * NN);
                };
                for (long s = 1; s < t1 - t0; s++) {  // recompute the segment's traces
                    const long t = t0 + s - 1;
                    const real *hb = hs + (t * B + b) * N, *hpb = t == 0 ? h0 + b * N : hs + ((t - 1) * B + b) * N;
                    const real mb = m0s ? m0s[t * B + b] : 0;
                    const real *Hs = slot_h(s - 1), *Es = slot_e(s - 1);
                    real *Ho = bufH + (s - 1) * NN, *Eo = eligible ? bufE + (s - 1) * NN : nullptr;
                    for (long j = 0; j < N; j++)
                        update_row(P, hb[j], row_modulation(P, j, mb), hpb, Hs + j * N, Es ? Es + j * N : nullptr,
                                   Ho + j * N, Eo ? Eo + j * N : nullptr);
                }
                for (long t = t1 - 1; t >= t0; t--) {
                    const long s = t - t0;
                    const real *hb = hs + (t * B + b) * N, *hpb = t == 0 ? h0 + b * N : hs + ((t - 1) * B + b) * N;
                    real *gb = g + (t * B + b) * N, gzb = 0;
                    if (t < T - 1)
                        for (long i = 0; i < N; i++) gb[i] += cb[i];
                    eta_acc += backward_elem(P, hb, hpb, slot_h(s), slot_e(s), m0s ? m0s[t * B + b] : real(0),
                                             clamps ? clamps + (t * B + b) * N : nullptr,
                                             clamps ? gclamps + (t * B + b) * N : nullptr, gHb, gEb, gb, cb, gm,
                                             ga_alpha, gf, &gzb);
                    if (gz) gz[t * B + b] = gzb;
                }
            }
            geta[b] = eta_acc;
        }
    });
}

#define INSTANTIATE(real)                                                                                          \
    template void forward_kernel<real>(const Params<real> *, const real *, const real *, const real *,            \
                                       const real *, real *, real *, real *, real *, real *, const real *);      \
    template void update_kernel<real>(const Params<real> *, const real *, const real *, const real *,             \
                                      const real *, const real *, real *, real *);                              \
    template void backward_kernel<real>(const Params<real> *, long, const std::vector<long> &, long,               \
                                        const std::vector<const real *> &, const std::vector<const real *> &,    \
                                        const real *, const real *, const real *, const real *, real *, real *,  \
                                        real *, real *, real *, real *, real *, real *, real *, real *, real *);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE

}  // namespace plastic_core
