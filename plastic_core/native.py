"""Fused C kernels of the plastic recurrence, for contiguous float32/float64 CPU tensors.

Three kernels, each sweeping a batch element's (N, N) traces while they sit in cache:

* ``forward_step`` (one call per step): h(t) = tanh(d + (w + alpha * Hebb) h(t-1)), M(t), and the trace update
  to t+1 (two sweeps over row j of Hebb: the product, then the update), reading and writing each trace once;
* ``update_step``: the trace update alone;
* ``backward_sequence``: the whole BPTT recursion, one batch element at a time: its segments' traces recomputed
  from their checkpoints into a per-thread buffer, then per step two sweeps (the reductions that dL/dh(t) needs,
  then the new adjoints). An element's traces and adjoints stay in cache through all T steps, so memory is read
  only for the checkpoints (measured at B=256, N=256: backward 2-3x faster than step by step over the batch).

The clip's gradient mask is recomputed from the unclipped value (|u| < c), which equals the mask on the clipped
result; ``-ffp-contract=off`` keeps the forward and backward arithmetic of u identical.

The source is compiled on first use with the system C compiler (``cc``; ``$CC`` overrides) into
``$PLASTIC_CORE_CACHE`` (default ``~/.cache/plastic_core``; where that cannot be written, a per-user folder in the
temporary directory), keyed by a hash of source, compiler, flags and the CPU's features, and loaded with ctypes; the
first compile says so on stderr (where, and how long it took). The cache verifies what it loads: each build writes
the sha256 of its library beside it (``<name>.so.sha256``, after the library is in place); a cached library is
loaded only where that digest matches and it holds every kernel, and is otherwise (truncated, empty, foreign, no
digest, not loadable) rebuilt once, said in one line on stderr. Builds run in their own folders
(``build-<host>-<pid>-*``) and move the library and its digest into place with ``os.replace``, so that concurrent
processes never load a partly written file; the folders of killed compiles are removed later.

OpenMP splits the batch across ``threads()`` threads (``torch.get_num_threads()`` capped at the process's CPUs;
``$PLASTIC_CORE_THREADS`` overrides), fewer for the per-step kernels where other processes keep cores busy
(``step_threads``). ``load()`` returns ``None`` (and the eager kernels are used, with a warning giving the
compiler's error) where no compiler works (a rebuild included) or ``PLASTIC_CORE_NATIVE=0``.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import platform
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

# Traces at least this large (bytes of one (B, N, N) tensor) are written to separate buffers (checkpoints, the
# recomputed traces of a segment) with streaming stores: they will be read back from memory anyway, and skipping
# the read-for-ownership saves a third of that traffic. Smaller ones stay in cache for backward to read (measured:
# 2x slower with streaming at B=30, N=100; 1.6x faster at B=256, N=256).
STREAM_BYTES = 8 << 20

KINDS = {"decay": 0, "oja": 1, "clip": 2, "modulated": 3, "retroactive": 4}
ALPHAS = {"connection": 0, "neuron": 1, "scalar": 2}

SOURCE = r"""
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

enum { DECAY = 0, OJA = 1, CLIP = 2, MODULATED = 3, RETRO = 4 };
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
    case CLIP: return H + eta * (hj * hpi);
    case MODULATED: return H + (mj * hj) * hpi;
    default: return H + mj * E;
    }
}

static inline real keep_of(int kind, real eta, real hj) {
    return kind == DECAY ? 1 - eta : (kind == OJA ? 1 - eta * hj * hj : 1);
}

static inline real clampr(real x, real c) { return x > c ? c : (x < -c ? -c : x); }

/* run BODY with the non-retroactive rule as the compile-time constant K, so that its loops vectorize */
#define BY_KIND(kind, BODY)                                                                                         \
    switch (kind) {                                                                                                 \
    case DECAY: { const int K = DECAY; BODY; } break;                                                              \
    case OJA: { const int K = OJA; BODY; } break;                                                                  \
    case CLIP: { const int K = CLIP; BODY; } break;                                                                \
    default: { const int K = MODULATED; BODY; } break;                                                             \
    }

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
            real acc = 0;
            if (P->akind == CONNECTION) {
                const real *ar = alpha + j * N;
#pragma omp simd reduction(+ : acc)
                for (long i = 0; i < N; i++) acc += (wr[i] + ar[i] * Hr[i]) * hpb[i];
            } else {
                real aw = 0, ah = 0;
#pragma omp simd reduction(+ : aw, ah)
                for (long i = 0; i < N; i++) {
                    aw += wr[i] * hpb[i];
                    ah += Hr[i] * hpb[i];
                }
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
    if (P->akind == CONNECTION) {
        const real *ar = alpha + j * N;
        real *gar = ga_alpha + j * N;
        if (kind == RETRO) {
#pragma omp simd
            for (long i = 0; i < N; i++) {
                real u = unclipped(RETRO, Hr[i], Er[i], hj, hpb[i], mj, eta, keep);
                real gu = ABS(u) < lim ? gHr[i] : 0;
                gEr[i] = one_eta * gEr[i] + mj * gu;
                gHr[i] = gu + ar[i] * (gaj * hpb[i]);
                r[i] += (wr[i] + ar[i] * Hr[i]) * gaj;
                gar[i] += (gaj * hpb[i]) * Hr[i];
            }
        } else {
            BY_KIND(kind, _Pragma("omp simd")
                for (long i = 0; i < N; i++) {
                    real u = unclipped(K, Hr[i], 0, hj, hpb[i], mj, eta, keep);
                    real gu = ABS(u) < lim ? gHr[i] : 0;
                    gHr[i] = scale * gu + ar[i] * (gaj * hpb[i]);
                    r[i] += (wr[i] + ar[i] * Hr[i]) * gaj;
                    gar[i] += (gaj * hpb[i]) * Hr[i];
                })
        }
    } else {
        const real aj = P->akind == NEURON ? alpha[j] : alpha[0], gaa = gaj * aj;
        if (kind == RETRO) {
#pragma omp simd
            for (long i = 0; i < N; i++) {
                real u = unclipped(RETRO, Hr[i], Er[i], hj, hpb[i], mj, eta, keep);
                real gu = ABS(u) < lim ? gHr[i] : 0;
                gEr[i] = one_eta * gEr[i] + mj * gu;
                gHr[i] = gu + gaa * hpb[i];
                r[i] += wr[i] * gaj + Hr[i] * gaa;
            }
        } else {
            BY_KIND(kind, _Pragma("omp simd")
                for (long i = 0; i < N; i++) {
                    real u = unclipped(K, Hr[i], 0, hj, hpb[i], mj, eta, keep);
                    real gu = ABS(u) < lim ? gHr[i] : 0;
                    gHr[i] = scale * gu + gaa * hpb[i];
                    r[i] += wr[i] * gaj + Hr[i] * gaa;
                })
        }
    }
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
            real q = 0, s = 0;
            BY_KIND(kind, _Pragma("omp simd reduction(+ : q, s)")
                for (long i = 0; i < N; i++) {
                    real u = unclipped(K, Hr[i], 0, hj, hpb[i], 0, eta, keep);
                    real gu = ABS(u) < lim ? gHr[i] : 0;
                    q += gu * hpb[i];
                    s += gu * Hr[i];
                    r[i] += gu * coef;
                })
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
        real q = 0, s = 0;
        if (kind == RETRO) {
            const real *Er = Eb + j * N, *gEr = gEb + j * N;
            const real coef = eta * hj;
            real gmj = 0;
#pragma omp simd reduction(+ : q, s, gmj)
            for (long i = 0; i < N; i++) {
                real u = unclipped(RETRO, Hr[i], Er[i], hj, hpb[i], mj, eta, keep);
                real gu = ABS(u) < lim ? gHr[i] : 0;
                gmj += gu * Er[i];
                q += gEr[i] * hpb[i];
                s += gEr[i] * Er[i];
                r[i] += gEr[i] * coef;
            }
            gm[j] = gmj;
            gb[j] += eta * q;
            eta_acc += hj * q - s;
        } else {
            const real coef = mj * hj;
#pragma omp simd reduction(+ : q)
            for (long i = 0; i < N; i++) {
                real u = unclipped(MODULATED, Hr[i], 0, hj, hpb[i], mj, eta, keep);
                real gu = ABS(u) < lim ? gHr[i] : 0;
                q += gu * hpb[i];
                r[i] += gu * coef;
            }
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
"""

FLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared", "-fopenmp"]
VARIANTS = {torch.float32: ("float", "f32", "tanhf", "fabsf"), torch.float64: ("double", "f64", "tanh", "fabs")}
# the kernels the wrapper binds (name without the dtype suffix, number of arguments: every one a pointer)
KERNELS = (("forward_step", 11), ("update_step", 8), ("backward_sequence", 20))
DIGEST_SUFFIX = ".sha256"  # beside each library: the sha256 of its bytes, in the format of sha256sum
# a build folder is taken for a killed compile's once this old (where its process cannot be asked: another host's,
# or an earlier version's ``tmp*`` folder); one of this host whose process is alive, only after a day (pid reused)
STALE_SECONDS = 600.0
STALE_LIVE_SECONDS = 86400.0


class Params(ctypes.Structure):
    _fields_ = [("B", ctypes.c_long), ("N", ctypes.c_long), ("kind", ctypes.c_int), ("akind", ctypes.c_int),
                ("clipped", ctypes.c_int), ("nthreads", ctypes.c_int), ("stream", ctypes.c_int), ("c", ctypes.c_double),
                ("eta", ctypes.c_double), ("w", ctypes.c_void_p), ("alpha", ctypes.c_void_p),
                ("modw", ctypes.c_void_p), ("modb", ctypes.c_void_p), ("fanout", ctypes.c_void_p)]


_lock = threading.Lock()
_libraries: dict[torch.dtype, ctypes.CDLL | None] = {}
_cleaned: set[Path] = set()  # the cache folders already rid of stale build folders by this process


def cache_dir() -> Path:
    """Where compiled kernels are kept: ``$PLASTIC_CORE_CACHE``, default ``~/.cache/plastic_core``."""
    return Path(os.environ.get("PLASTIC_CORE_CACHE") or Path.home() / ".cache" / "plastic_core")


def fallback_cache_dir() -> Path:
    """The cache used where ``cache_dir()`` cannot be written: a per-user folder in the temporary directory."""
    uid = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(tempfile.gettempdir()) / f"plastic_core-{uid}"


def enabled() -> bool:
    return os.environ.get("PLASTIC_CORE_NATIVE", "1") not in ("0", "false", "no", "")


_CPU_KEYS = ("vendor_id", "cpu family", "model", "flags", "features", "isa", "cpu implementer", "cpu architecture",
             "cpu variant", "cpu part")


def cpu_features() -> str:
    """What ``-march=native`` depends on, as text: the first CPU's vendor, family, model and feature flags from
    ``/proc/cpuinfo``; where that is missing or says nothing useful, ``platform.machine()`` and
    ``platform.processor()``."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        text = ""
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key in _CPU_KEYS and key not in found:  # the first CPU's; features sorted against reordering
            found[key] = " ".join(sorted(value.split())) if key in ("flags", "features", "isa") else value.strip()
    if not any(k in found for k in ("flags", "features", "isa")):
        found["platform"] = f"{platform.machine()} {platform.processor()}"
    return "\n".join(f"{k}: {v}" for k, v in sorted(found.items()))


def cache_key(source: str, compiler: str, flags: list[str], features: str) -> str:
    """The name part of a compiled library: a hash of the source, compiler, flags and the CPU's features (so that a
    HOME shared by machines with different CPUs never loads a library built with another's ``-march=native``)."""
    return hashlib.sha256("\n".join([source, compiler, *flags, "--cpu--", features]).encode()).hexdigest()[:16]


def _say(text: str, end: str = "\n") -> None:
    print(text, end=end, file=sys.stderr, flush=True)


def _compiler_error(command: list[str], proc: subprocess.CompletedProcess, max_lines: int = 8) -> str:
    """The compiler's own words, a few lines of them; or, where it printed nothing, the command and its status."""
    lines = [line for line in (proc.stderr + proc.stdout).strip().splitlines() if line.strip()]
    if not lines:
        return f"{shlex.join(command)} exited with status {proc.returncode} and printed nothing"
    if len(lines) > max_lines:
        lines = [*lines[:max_lines], f"... ({len(lines) - max_lines} more lines)"]
    return f"{command[0]} exited with status {proc.returncode}:\n" + "\n".join(lines)


def _writable_dir(path: Path, private: bool = False) -> Path:
    """``path``, created if need be; OSError where it cannot be created or written (or, ``private``, is not this
    user's own folder, closed to others: a folder in a shared temporary directory could be planted)."""
    path.mkdir(parents=True, exist_ok=True, **({"mode": 0o700} if private else {}))
    if private and hasattr(os, "getuid"):
        st = path.stat()
        if st.st_uid != os.getuid() or st.st_mode & 0o022:
            raise PermissionError(f"{path} is not a folder of this user's alone")
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"{path} is not writable")
    return path


def build_prefix(host: str | None = None, pid: int | None = None) -> str:
    """How the name of a build folder starts: ``build-<host>-<pid>-`` (this host and process by default), so that
    the folder of a killed compile can be told from one in progress."""
    host = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname() if host is None else host) or "_"
    return f"build-{host}-{os.getpid() if pid is None else pid}-"


def _alive(pid: int) -> bool:
    if os.name != "posix":  # os.kill would end it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: someone else's, alive
        return True
    return True


_OLD_BUILD = re.compile(r"tmp[a-z0-9_]{8}")  # tempfile.TemporaryDirectory's names: the build folders of before


def _stale(entry: os.DirEntry, now: float, host: str) -> bool:
    """Whether ``entry`` is the build folder of a compile that was killed (its process gone, or long ago)."""
    try:
        if not entry.is_dir(follow_symlinks=False):
            return False
        age = now - entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return False
    if entry.name.startswith("build-"):
        parts = entry.name.removeprefix("build-").split("-")
        if len(parts) == 3 and parts[0] == host and parts[1].isdigit():
            return not _alive(int(parts[1])) or age > STALE_LIVE_SECONDS
        return age > STALE_SECONDS
    if _OLD_BUILD.fullmatch(entry.name) and age > STALE_SECONDS:
        try:
            return set(os.listdir(entry.path)) <= {"plastic.c", "plastic.so"}
        except OSError:
            return False
    return False


def _clean_stale(folder: Path) -> None:
    """Remove the build folders that killed compiles left in ``folder`` (once per process and folder)."""
    if folder in _cleaned:
        return
    _cleaned.add(folder)
    host, now = build_prefix(pid=0).split("-")[1], time.time()
    try:
        with os.scandir(folder) as entries:
            stale = [entry.path for entry in entries if _stale(entry, now, host)]
    except OSError:
        return
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _locked(folder: Path, exclusive: bool) -> Iterator[None]:
    """Hold a lock on ``folder`` (flock of the folder itself; none where that cannot be had), exclusive while a
    build moves its library and digest into place, shared while a load reads both, so that a load never pairs one
    build's library with another's digest (which would only cost a needless rebuild)."""
    try:
        import fcntl

        fd = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # and with it the lock


def digest_path(library: Path) -> Path:
    """Where the sha256 of ``library`` is kept: ``<name>.so.sha256`` beside it."""
    return library.with_name(library.name + DIGEST_SUFFIX)


def _check(path: Path) -> str | None:
    """What is wrong with the cached library ``path`` (``None``: its bytes match its digest)."""
    digest = digest_path(path)
    with _locked(path.parent, exclusive=False):
        try:
            data = path.read_bytes()
        except OSError as error:
            return f"cannot be read ({error.strerror or error})"
        try:
            recorded: str | None = digest.read_text()
        except FileNotFoundError:
            recorded = None
        except (OSError, ValueError) as error:
            return f"has an unreadable digest {digest.name} ({error})"
    if not data:
        return "is empty (0 bytes)"
    if recorded is None:
        return f"has no digest {digest.name}"
    if hashlib.sha256(data).hexdigest() != next(iter(recorded.split()), "").lower():
        return f"does not match its digest {digest.name} ({len(data)} bytes: truncated or replaced)"
    return None


def _bind(lib: ctypes.CDLL, suffix: str) -> list[str]:
    """Give the kernels of ``lib`` their signatures; the names of those it lacks."""
    missing = []
    for fn_name, n_args in KERNELS:
        try:
            fn = getattr(lib, f"{fn_name}_{suffix}")
        except AttributeError:
            missing.append(f"{fn_name}_{suffix}")
            continue
        fn.restype, fn.argtypes = None, [ctypes.c_void_p] * n_args  # every argument is a pointer
    return missing


def _open(path: Path, suffix: str) -> tuple[ctypes.CDLL | None, str | None]:
    """The cached library ``path``, loaded only where its digest matches and it holds every kernel; else ``None``
    and what is wrong with it. (A library replaced between the check and the load is another build's, complete:
    builds only ever move whole files into place.)"""
    problem = _check(path)
    if problem is not None:
        return None, problem
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as error:
        return None, f"cannot be loaded ({str(error).removeprefix(f'{path}: ')})"
    missing = _bind(lib, suffix)
    if missing:  # it stays loaded (unloading a foreign library is not safe); the rebuild is loaded by another name
        return None, f"lacks {', '.join(missing)} (not these kernels)"
    return lib, None


def _build(compiler: str, flags: list[str], target: Path, label: str, suffix: str,
           problem: str | None = None) -> ctypes.CDLL:
    """Compile SOURCE into ``target`` and load it, saying so (one line; ``problem``: why a cached library is
    rebuilt). The compile runs in a build folder of its own, beside ``target``; the library is loaded from there
    (complete, this build's own), then moved into place, then its digest: concurrent processes may race here
    harmlessly."""
    folder = target.parent
    what = f"the native kernels ({label}) into {folder}"
    _say(f"plastic_core: {problem}; rebuilding {what} ..." if problem else f"plastic_core: compiling {what} ...",
         end="")
    start = time.perf_counter()
    try:
        _clean_stale(folder)
        tmp = Path(tempfile.mkdtemp(prefix=build_prefix(), dir=folder))
        try:
            src, out, digest = tmp / "plastic.c", tmp / "plastic.so", tmp / "plastic.so.sha256"
            src.write_text(SOURCE)
            command = [compiler, *flags, str(src), "-o", str(out), "-lm"]
            proc = subprocess.run(command, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"compiling the plastic kernels failed: {_compiler_error(command, proc)}")
            digest.write_text(f"{hashlib.sha256(out.read_bytes()).hexdigest()}  {target.name}\n")
            # loaded by this build folder's name: a file no other process writes, and not a name that this process
            # may have loaded already (a foreign library under ``target``, which dlopen would hand back)
            lib = ctypes.CDLL(str(out))
            missing = _bind(lib, suffix)
            if missing:
                raise RuntimeError(f"the compiled library lacks {', '.join(missing)}")
            with _locked(folder, exclusive=True):
                os.replace(out, target)
                os.replace(digest, digest_path(target))
            lib._name = str(target)  # where the loaded file now lies (ctypes shows it in reprs and errors)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        _say(" failed")
        raise
    _say(f" {'rebuilt' if problem else 'done'} in {time.perf_counter() - start:.1f} s")
    return lib


def _private(folder: Path) -> bool:
    """Whether ``folder`` is this user's alone (the fallback folder lies in a shared temporary directory)."""
    if not hasattr(os, "getuid"):
        return True
    try:
        st = folder.stat()
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def _compile(dtype: torch.dtype) -> ctypes.CDLL:
    real, suffix, tanh, abs_ = VARIANTS[dtype]
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler found (set CC)")
    flags = [*FLAGS, f"-DREAL={real}", f"-DSUFFIX={suffix}", f"-DTANH={tanh}", f"-DABS={abs_}",
             f"-DIS_FLOAT={int(dtype == torch.float32)}"]
    name = f"plastic_{suffix}_{cache_key(SOURCE, compiler, flags, cpu_features())}.so"
    primary, fallback = cache_dir(), fallback_cache_dir()
    problem = None  # what was wrong with the first cached library found, rebuilt below
    for folder in (primary, fallback):
        path = folder / name
        if not os.path.lexists(path) or (folder == fallback and not _private(folder)):
            continue
        _clean_stale(folder)
        lib, why = _open(path, suffix)
        if lib is not None:
            return lib
        problem = problem or f"{path} {why}"
    try:
        target = _writable_dir(primary) / name
    except OSError as error:
        try:
            target = _writable_dir(fallback, private=True) / name
        except OSError as error2:
            raise RuntimeError(f"no writable cache folder: {primary} ({error}), {fallback} ({error2})") from error2
        _say(f"plastic_core: the cache folder {primary} cannot be written ({error}); using {fallback}")
    return _build(compiler, flags, target, str(dtype).removeprefix("torch."), suffix, problem)


def load(dtype: torch.dtype) -> ctypes.CDLL | None:
    """The compiled kernels for ``dtype`` (float32/float64), or ``None`` where they cannot be had."""
    if dtype not in VARIANTS or not enabled():
        return None
    with _lock:
        if dtype not in _libraries:
            try:
                _libraries[dtype] = _compile(dtype)
            except (OSError, RuntimeError, subprocess.SubprocessError) as error:
                warnings.warn(f"plastic_core: native kernels unavailable ({error}); using the eager PyTorch kernels",
                              RuntimeWarning, stacklevel=3)
                _libraries[dtype] = None
        return _libraries[dtype]


def cpus() -> int:
    """How many CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def threads() -> int:
    """OpenMP threads for the kernels that run once per sequence (the backward pass, one long parallel region):
    ``$PLASTIC_CORE_THREADS`` where set, else ``torch.get_num_threads()`` capped at ``cpus()``."""
    fixed = os.environ.get("PLASTIC_CORE_THREADS", "").strip()
    if fixed:
        if not fixed.isdigit() or int(fixed) < 1:
            raise ValueError(f"PLASTIC_CORE_THREADS must be a positive integer, got {fixed!r}")
        return int(fixed)
    return max(1, min(torch.get_num_threads(), cpus()))


_usage: dict[str, float | None] = {"at": None, "busy": None, "ours": None, "free": None}


def _busy_seconds() -> float | None:
    """CPU seconds spent so far (all but idle and iowait) on the CPUs this process may run on, from /proc/stat."""
    try:
        allowed = os.sched_getaffinity(0)
        text = Path("/proc/stat").read_text()
        tick = os.sysconf("SC_CLK_TCK")
    except (AttributeError, OSError, ValueError):
        return None
    busy, seen = 0, 0
    for line in text.splitlines():
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *fields = line.split()
            if int(name[3:]) in allowed and len(fields) >= 5:
                values = [int(v) for v in fields[:8]]
                busy += sum(values) - values[3] - values[4]
                seen += 1
    return busy / tick if seen else None


def free_cores(min_interval: float = 0.1) -> float | None:
    """Cores of this process's CPUs that other processes left unused since the previous measurement (taken at
    least ``min_interval`` s before; more recent calls return the last estimate), or ``None`` where unknown (the
    first call; no /proc/stat)."""
    now = time.monotonic()
    if _usage["at"] is not None and now - _usage["at"] < min_interval:
        return _usage["free"]
    busy = _busy_seconds()
    if busy is None:
        return None
    t = os.times()
    ours = t.user + t.system  # all of this process's threads
    if _usage["at"] is not None:
        others = max(0.0, (busy - _usage["busy"]) - (ours - _usage["ours"])) / (now - _usage["at"])
        _usage["free"] = max(0.0, cpus() - others)
    _usage.update(at=now, busy=busy, ours=ours)
    return _usage["free"]


def step_threads(cap: int) -> int:
    """OpenMP threads for the kernels called once per time step (``forward_step``, ``update_step``): ``cap``,
    lowered to the cores that other processes have left free lately (``free_cores``), since each such call is a
    short parallel region that ends in a barrier: a thread that shares its core with a busy process makes every
    step wait for it (measured: 3-10x slower than 1 thread beside one busy process on 2 cores). The forward
    results do not depend on the thread count (each batch element is computed by one thread)."""
    if os.environ.get("PLASTIC_CORE_THREADS", "").strip():
        return cap
    free = free_cores()
    return cap if free is None else max(1, min(cap, int(free + 0.5)))


def supports(*tensors: Tensor | None) -> bool:
    """Whether the native kernels can run on these tensors (CPU, float32/float64, one dtype, no autograd mode)."""
    present = [t for t in tensors if t is not None]
    dtype = present[0].dtype
    return dtype in VARIANTS and all(t.device.type == "cpu" and t.dtype == dtype for t in present)


def ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


if __name__ == "__main__":  # python -m plastic_core.native: build both variants now
    for dt in VARIANTS:
        print(dt, "ok" if load(dt) is not None else "unavailable", file=sys.stderr)
