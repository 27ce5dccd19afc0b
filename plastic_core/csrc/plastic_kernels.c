#include <math.h>
#include <string.h>
#if defined(__AVX__)
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#define TID omp_get_thread_num()
#else
#define TID 0
#endif

typedef REAL real;
#if defined(__AVX__) && IS_FLOAT
#define VW 8
#define STREAM _mm256_stream_ps
#define LOADU _mm256_loadu_ps
#elif defined(__AVX__)
#define VW 4
#define STREAM _mm256_stream_pd
#define LOADU _mm256_loadu_pd
#endif
#define CAT2(a, b) a##_##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(name, SUFFIX)

enum { DECAY = 0, OJA = 1, HEBB = 2, MODULATED = 3, RETRO = 4 };
enum { CONNECTION = 0, NEURON = 1, SCALAR = 2 };

typedef struct {
    long B, N;
    int kind, akind, clipped, nthreads, stream;
    double c, eta;
    const void *w, *alpha, *modw, *modb, *fanout;
} Params;

static inline real unclipped(int kind, real H, real E, real hj, real hpi, real mj, real eta, real keep) {
    /* the update before the clip; keep = 1 - eta (decay), 1 - eta hj^2 (oja) */
    switch (kind) {
    case DECAY: return keep * H + eta * (hj * hpi);
    case OJA: return H * keep + eta * (hj * hpi);
    case HEBB: return H + eta * (hj * hpi);
    case MODULATED: return H + (mj * hj) * hpi;
    default: return H + mj * E;
    }
}

static inline real keep_of(int kind, real eta, real hj) {
    return kind == DECAY ? 1 - eta : (kind == OJA ? 1 - eta * hj * hj : 1);
}

static inline real clampr(real x, real c) { return x > c ? c : (x < -c ? -c : x); }

/* Sums over i in a fixed order, whatever vector width the compiler picks (SSE, AVX or none): LANES partial sums,
   lane l taking the i with i % LANES == l, added in one fixed tree at the end. BODY adds to acc[l] (one array per
   sum) and may do elementwise work for index i. The lanes of one chunk are independent, so the compiler may run
   them as vector lanes without changing any result: the kernels give the same bits on every x86-64 CPU. */
#define LANES 8
#define FOR_LANES(N, BODY)                                                                                          \
    {                                                                                                               \
        long i0_ = 0;                                                                                               \
        for (; i0_ + LANES <= (N); i0_ += LANES) {                                                                  \
            _Pragma("omp simd") for (int l = 0; l < LANES; l++) { const long i = i0_ + l; BODY; }                  \
        }                                                                                                           \
        for (int l = 0; i0_ + l < (N); l++) { const long i = i0_ + l; BODY; }                                     \
    }

static inline real lane_sum(const real *a) { return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])); }

/* run BODY with the non-retroactive rule as the compile-time constant K, so that its loops vectorize */
#define BY_KIND(kind, BODY)                                                                                         \
    switch (kind) {                                                                                                 \
    case DECAY: { const int K = DECAY; BODY; } break;                                                              \
    case OJA: { const int K = OJA; BODY; } break;                                                                  \
    case HEBB: { const int K = HEBB; BODY; } break;                                                                \
    default: { const int K = MODULATED; BODY; } break;                                                             \
    }

/* BY_KIND, the retroactive rule included */
#define BY_ANY_KIND(kind, BODY)                                                                                     \
    if ((kind) == RETRO) { const int K = RETRO; BODY; } else BY_KIND(kind, BODY)

/* copy a row to memory that will not be read again soon, bypassing the cache (no read-for-ownership of the
   destination) where the row is aligned for vector streaming stores */
static inline void stream_row(real *dst, const real *src, long N) {
#if defined(__AVX__)
    if (((unsigned long)dst & 31) == 0) {
        long i = 0;
        for (; i + VW <= N; i += VW) STREAM(dst + i, LOADU(src + i));
        for (; i < N; i++) dst[i] = src[i];
        return;
    }
#endif
    memcpy(dst, src, N * sizeof(real));
}

/* row j of the traces of one batch element: step t -> t+1 (written to row buffers when streaming) */
static inline void update_row(const Params *P, real hj, real mj, const real *hp, const real *Hr, const real *Er,
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
                real u = unclipped(K, Hr[i], 0, hj, hp[i], mj, eta, keep);
                Hor[i] = clipped ? clampr(u, c) : u;
            })
    }
}

/* row j of Hebb(t+1) (and E) of one batch element into Ho/Eo: in place, or, into a separate buffer (a checkpoint
   or a recomputed trace, read again only after many other traces), through L1 rows and streaming stores */
static inline void update_row_to(const Params *P, long j, real hj, real mj, const real *hp, const real *H,
                                 const real *E, real *Ho, real *Eo, real *rowH, real *rowE) {
    const long N = P->N;
    if (Ho == H || !P->stream) {
        update_row(P, hj, mj, hp, H + j * N, E ? E + j * N : 0, Ho + j * N, Eo ? Eo + j * N : 0);
        return;
    }
    update_row(P, hj, mj, hp, H + j * N, E ? E + j * N : 0, rowH, rowE);
    stream_row(Ho + j * N, rowH, N);
    if (E) stream_row(Eo + j * N, rowE, N);
}

static inline void fence(void) {
#if defined(__AVX__)
    _mm_sfence(); /* order the streaming stores before anything that follows */
#endif
}

static inline real row_modulation(const Params *P, long j, real m0) {
    const real *fanout = (const real *)P->fanout;
    return fanout ? m0 * fanout[j] : m0;
}

/* one batch element: the recurrent product of row j, then (rules without modulation) its update right away.
   clamp (B, N) or NULL: where not NaN, h_j(t) is set to it instead of the tanh (a clamped neuron) */
void FN(forward_step)(const Params *P, const real *d, const real *hp, const real *H, const real *E,
                      real *Ho, real *Eo, real *h, real *m0, real *p, const real *clamp) {
    const long B = P->B, N = P->N;
    const real *w = (const real *)P->w, *alpha = (const real *)P->alpha;
    const real *modw = (const real *)P->modw, *modb = (const real *)P->modb;
    const int modulated = P->kind >= MODULATED;
#pragma omp parallel for num_threads(P->nthreads) schedule(static)
    for (long b = 0; b < B; b++) {
        real rowH[N], rowE[N];
        const real *Hb = H + b * N * N, *Eb = E ? E + b * N * N : 0, *hpb = hp + b * N;
        real *Hob = Ho + b * N * N, *Eob = Eo ? Eo + b * N * N : 0, *hb = h + b * N;
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
            hb[j] = clamp && !isnan(clamp[b * N + j]) ? clamp[b * N + j] : TANH(d[b * N + j] + acc);
            if (!modulated) update_row_to(P, j, hb[j], 0, hpb, Hb, Eb, Hob, Eob, rowH, rowE);
        }
        if (modulated) { /* M(t) needs the whole h(t): a second sweep */
            real z = modb[0];
            for (long j = 0; j < N; j++) z += modw[j] * hb[j];
            const real mb = TANH(z);
            m0[b] = mb;
            for (long j = 0; j < N; j++)
                update_row_to(P, j, hb[j], row_modulation(P, j, mb), hpb, Hb, Eb, Hob, Eob, rowH, rowE);
        }
    }
    if (Ho != H) fence();
}

void FN(update_step)(const Params *P, const real *h, const real *hp, const real *m0, const real *H, const real *E,
                     real *Ho, real *Eo) {
    const long B = P->B, N = P->N;
#pragma omp parallel for num_threads(P->nthreads) schedule(static)
    for (long b = 0; b < B; b++) {
        real rowH[N], rowE[N];
        const real mb = m0 ? m0[b] : 0;
        for (long j = 0; j < N; j++)
            update_row_to(P, j, h[b * N + j], row_modulation(P, j, mb), hp + b * N, H + b * N * N,
                          E ? E + b * N * N : 0, Ho + b * N * N, Eo ? Eo + b * N * N : 0, rowH, rowE);
    }
    if (Ho != H) fence();
}

/* row j of the new adjoints dL/dHebb(t) (and dL/dE(t)) and its share of dL/dh(t-1) (into r), given
   ga_j = dL/da_j (a = the pre-activation) */
static inline void adjoint_row(const Params *P, long j, real hj, real mj, real gaj, const real *hpb, const real *Hb,
                               const real *Eb, real *gHb, real *gEb, real *r, real *ga_alpha) {
    const long N = P->N;
    const int kind = P->kind;
    const real eta = (real)P->eta, one_eta = 1 - eta, keep = keep_of(kind, eta, hj);
    const real lim = P->clipped ? (real)P->c : (real)INFINITY; /* the clip passes the gradient where |u| < c */
    const real scale = kind == DECAY || kind == OJA ? keep : 1;
    const real *alpha = (const real *)P->alpha;
    const real *Hr = Hb + j * N, *Er = Eb ? Eb + j * N : 0, *wr = (const real *)P->w + j * N;
    real *gHr = gHb + j * N, *gEr = gEb ? gEb + j * N : 0;
    /* one loop for every rule and alpha layout: ALPHA_TERMS adds alpha's part of the adjoints (per connection:
       ar[i], and the gradient of alpha itself; per neuron or scalar: the row's one coefficient) */
#define ADJOINT_LOOP(K, ALPHA_TERMS)                                                                                \
    _Pragma("omp simd") for (long i = 0; i < N; i++) {                                                             \
        real u = unclipped(K, Hr[i], K == RETRO ? Er[i] : 0, hj, hpb[i], mj, eta, keep);                          \
        real gu = ABS(u) < lim ? gHr[i] : 0;                                                                        \
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

/* One batch element, one step of BPTT. In: g = dL/dh(t) (N), gH/gE = dL/dHebb(t+1), dL/dE(t+1) (N, N).
   Out: g = dL/d drive(t), r = dL/dh(t-1) from this step, gH/gE = dL/dHebb(t), dL/dE(t); returns this step's
   dL/d eta and writes dL/dz to *gz (z = W_mod h + b_mod); ga_alpha (N*N) and gf (N) accumulate; gm: N of work.
   Rules without modulation: one sweep (row j's reductions give ga_j at once). With modulation, ga needs M's
   gradient, a sum over all rows: a first sweep for the reductions, a second for the adjoints. */
static real backward_elem(const Params *P, const real *hb, const real *hpb, const real *Hb, const real *Eb, real mb,
                          const real *cl, real *gcl, real *gHb, real *gEb, real *gb, real *r, real *gm,
                          real *ga_alpha, real *gf, real *gz) {
    const long N = P->N;
    const int kind = P->kind;
    const real eta = (real)P->eta;
    const real lim = P->clipped ? (real)P->c : (real)INFINITY;
    const real *modw = (const real *)P->modw, *fanout = (const real *)P->fanout;
    real eta_acc = 0;
    memset(r, 0, N * sizeof(real));
    if (kind < MODULATED) {
        for (long j = 0; j < N; j++) {
            const real hj = hb[j], keep = keep_of(kind, eta, hj), coef = eta * hj;
            const real *Hr = Hb + j * N, *gHr = gHb + j * N;
            real qs[LANES] = {0}, ss[LANES] = {0};
            BY_KIND(kind, FOR_LANES(N, {
                    real u = unclipped(K, Hr[i], 0, hj, hpb[i], 0, eta, keep);
                    real gu = ABS(u) < lim ? gHr[i] : 0;
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
            if (cl && !isnan(cl[j])) { /* a clamped h_j: its gradient goes to the clamp, none to a pre-activation */
                gcl[j] = gb[j];
                gb[j] = 0;
            } else {
                gb[j] *= 1 - hj * hj;
            }
            adjoint_row(P, j, hj, 0, gb[j], hpb, Hb, Eb, gHb, gEb, r, ga_alpha);
        }
        return eta_acc;
    }
    /* sweep 1: the reductions dL/dh(t) needs */
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
                real gu = ABS(u) < lim ? gHr[i] : 0;
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
                real u = unclipped(MODULATED, Hr[i], 0, hj, hpb[i], mj, eta, keep);
                real gu = ABS(u) < lim ? gHr[i] : 0;
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
    /* sweep 2: the new adjoints and dL/dh(t-1) */
    for (long j = 0; j < N; j++) {
        gb[j] += gzb * modw[j];
        if (cl && !isnan(cl[j])) {
            gcl[j] = gb[j];
            gb[j] = 0;
        } else {
            gb[j] *= 1 - hb[j] * hb[j];
        }
        adjoint_row(P, j, hb[j], row_modulation(P, j, mb), gb[j], hpb, Hb, Eb, gHb, gEb, r, ga_alpha);
    }
    return eta_acc;
}

/* The whole backward pass, batch element by batch element: each one's traces and adjoints stay in cache through
   all T steps, so that memory is read only for the checkpoints. Segment k covers steps [starts[k], starts[k+1])
   and starts from the traces ckH[k], ckE[k] (B, N, N); its other traces are recomputed into the thread's part of
   seg (per thread: 1 or 2 traces x (longest segment - 1) x N*N). hs, g: (T, B, N), g in: dL/dh(t) from the
   outputs, out: dL/d drive(t); h0, carry (out: dL/dh(0)): (B, N); m0s, gz: (T, B) or NULL; geta: (B); clamps:
   (T, B, N) or NULL, the neurons clamped at each step (not NaN; see forward_step); gclamps (T, B, N), zeros in:
   dL/d clamp where clamped. */
void FN(backward_sequence)(const Params *P, const long *dims, const long *starts, const void *const *ckH,
                           const void *const *ckE, const real *hs, const real *h0, const real *m0s,
                           const real *clamps, real *gclamps, real *g,
                           real *carry, real *gH, real *gE, real *galpha, real *gfan, real *geta, real *gz,
                           real *work, real *seg) {
    const long B = P->B, N = P->N, NN = N * N, T = dims[0], nseg = dims[1], longest = dims[2];
    const int eligible = ckE != 0 && ckE[0] != 0;
    const long per_thread = (eligible ? 2 : 1) * (longest - 1) * NN;
#pragma omp parallel for num_threads(P->nthreads) schedule(static)
    for (long b = 0; b < B; b++) {
        const int tid = TID;
        real *bufH = seg + tid * per_thread, *bufE = eligible ? bufH + (longest - 1) * NN : 0;
        real *gHb = gH + b * NN, *gEb = eligible ? gE + b * NN : 0, *cb = carry + b * N, *gm = work + (long)tid * N;
        real *ga_alpha = galpha ? galpha + (long)tid * NN : 0, *gf = gfan ? gfan + (long)tid * N : 0;
        real eta_acc = 0;
        for (long k = nseg - 1; k >= 0; k--) {
            const long t0 = starts[k], t1 = starts[k + 1];
            const real *H0 = (const real *)ckH[k] + b * NN, *E0 = eligible ? (const real *)ckE[k] + b * NN : 0;
#define SLOT_H(s) ((s) == 0 ? H0 : bufH + ((s) - 1) * NN)
#define SLOT_E(s) (!eligible ? 0 : ((s) == 0 ? E0 : bufE + ((s) - 1) * NN))
            for (long s = 1; s < t1 - t0; s++) { /* recompute the segment's traces */
                const long t = t0 + s - 1;
                const real *hb = hs + (t * B + b) * N, *hpb = t == 0 ? h0 + b * N : hs + ((t - 1) * B + b) * N;
                const real mb = m0s ? m0s[t * B + b] : 0;
                const real *Hs = SLOT_H(s - 1), *Es = SLOT_E(s - 1);
                real *Ho = bufH + (s - 1) * NN, *Eo = eligible ? bufE + (s - 1) * NN : 0;
                for (long j = 0; j < N; j++)
                    update_row(P, hb[j], row_modulation(P, j, mb), hpb, Hs + j * N, Es ? Es + j * N : 0, Ho + j * N,
                               Eo ? Eo + j * N : 0);
            }
            for (long t = t1 - 1; t >= t0; t--) {
                const long s = t - t0;
                const real *hb = hs + (t * B + b) * N, *hpb = t == 0 ? h0 + b * N : hs + ((t - 1) * B + b) * N;
                real *gb = g + (t * B + b) * N, gzb = 0;
                if (t < T - 1)
                    for (long i = 0; i < N; i++) gb[i] += cb[i];
                eta_acc += backward_elem(P, hb, hpb, SLOT_H(s), SLOT_E(s), m0s ? m0s[t * B + b] : 0,
                                         clamps ? clamps + (t * B + b) * N : 0,
                                         clamps ? gclamps + (t * B + b) * N : 0, gHb, gEb, gb, cb, gm, ga_alpha, gf,
                                         &gzb);
                if (gz) gz[t * B + b] = gzb;
            }
#undef SLOT_H
#undef SLOT_E
        }
        geta[b] = eta_acc;
    }
}
