// The fused kernels of the plastic recurrence on raw CPU arrays, for real = float or double (kernels.cpp, built
// with the vector flags; operators.cpp checks the tensors, then calls them). Every array is contiguous, row-major.

#pragma once

#include <vector>

namespace plastic_core {

enum Kind { DECAY = 0, OJA = 1, HEBB = 2, MODULATED = 3, RETRO = 4 };
enum AlphaKind { CONNECTION = 0, NEURON = 1, SCALAR = 2 };

// the rule, its parameters (pointers into the tensors) and the sizes
template <typename real>
struct Params {
    long B, N;
    int kind, akind, clipped, nthreads, stream;
    double c, eta;
    const real *w, *alpha, *modw, *modb, *fanout;
};

// one batch element per (static) chunk of threads: the recurrent product of row j, then (rules without
// modulation) its update right away. clamp (B, N) or null: where not NaN, h_j(t) is set to it instead of the tanh
// (a clamped neuron)
template <typename real>
void forward_kernel(const Params<real> *P, const real *d, const real *hp, const real *H, const real *E, real *Ho,
                    real *Eo, real *h, real *m0, real *p, const real *clamp);

// the trace update alone (see forward_kernel)
template <typename real>
void update_kernel(const Params<real> *P, const real *h, const real *hp, const real *m0, const real *H,
                   const real *E, real *Ho, real *Eo);

// The whole backward pass, batch element by batch element: each one's traces and adjoints stay in cache through
// all T steps, so that memory is read only for the checkpoints. Segment k covers steps [starts[k], starts[k+1])
// and starts from the traces ckH[k], ckE[k] (B, N, N); its other traces are recomputed into the thread's part of
// seg (per thread: 1 or 2 traces x (longest segment - 1) x N*N). hs, g: (T, B, N), g in: dL/dh(t) from the
// outputs, out: dL/d drive(t); h0, carry (out: dL/dh(0)): (B, N); m0s, gz: (T, B) or null; geta: (B); clamps:
// (T, B, N) or null, the neurons clamped at each step (not NaN; see forward_kernel); gclamps (T, B, N), zeros in:
// dL/d clamp where clamped. galpha (threads, N, N), gfan (threads, N): per-thread sums; work (threads, N).
template <typename real>
void backward_kernel(const Params<real> *P, long T, const std::vector<long> &starts, long longest,
                     const std::vector<const real *> &ckH, const std::vector<const real *> &ckE, const real *hs,
                     const real *h0, const real *m0s, const real *clamps, real *gclamps, real *g, real *carry,
                     real *gH, real *gE, real *galpha, real *gfan, real *geta, real *gz, real *work, real *seg);

}  // namespace plastic_core
