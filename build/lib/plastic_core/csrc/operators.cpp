// The fused kernels of the plastic recurrence (kernels.h) registered as torch operators (namespace plastic_core):
//
//   forward_step       one step: h(t) = tanh(d + (w + alpha * Hebb) h(t-1)), M(t), and the traces of t+1
//   update_step        the trace update alone
//   backward_sequence  the whole BPTT recursion, one batch element at a time
//
// Each checks every argument (dtype, device, contiguity, shape, the rule's names) with an error naming it, then
// runs the kernel for the dtype. The rules are those of plastic_core/hebbian.py (the eager backend).

#include "kernels.h"

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <optional>
#include <string_view>
#include <tuple>
#include <vector>

namespace plastic_core {
namespace {

using at::Tensor;
using OptTensor = std::optional<Tensor>;

int kind_of(std::string_view rule) {
    if (rule == "decay") return DECAY;
    if (rule == "oja") return OJA;
    if (rule == "hebb") return HEBB;
    if (rule == "modulated") return MODULATED;
    if (rule == "retroactive") return RETRO;
    TORCH_CHECK(false, "plastic_core: unknown rule '", rule, "'; expected decay, oja, hebb, modulated or retroactive");
}

int alpha_kind_of(std::string_view alpha_kind) {
    if (alpha_kind == "connection") return CONNECTION;
    if (alpha_kind == "neuron") return NEURON;
    if (alpha_kind == "scalar") return SCALAR;
    TORCH_CHECK(false, "plastic_core: unknown alpha kind '", alpha_kind, "'; expected connection, neuron or scalar");
}

// a contiguous CPU tensor of the reference's dtype and this shape
void check(const Tensor &t, const char *name, at::IntArrayRef shape, const Tensor &like) {
    TORCH_CHECK(t.device().is_cpu(), "plastic_core: ", name, " must be a CPU tensor, got ", t.device());
    TORCH_CHECK(t.scalar_type() == like.scalar_type(), "plastic_core: ", name, " must be ", like.scalar_type(),
                " like the traces, got ", t.scalar_type());
    TORCH_CHECK(t.sizes() == shape, "plastic_core: ", name, " must have shape ", shape, ", got ", t.sizes());
    TORCH_CHECK(t.is_contiguous(), "plastic_core: ", name, " must be contiguous");
}

void check(const OptTensor &t, const char *name, at::IntArrayRef shape, const Tensor &like) {
    if (t.has_value()) check(*t, name, shape, like);
}

template <typename real>
const real *data(const OptTensor &t) { return t.has_value() ? t->data_ptr<real>() : nullptr; }

template <typename real>
real *mutable_data(const OptTensor &t) { return t.has_value() ? t->data_ptr<real>() : nullptr; }

// The rule, its parameters and the sizes, checked against the traces hebb (B, N, N): w (N, N); alpha (N, N),
// (N, 1) or (1, 1) for connection, neuron, scalar; mod_weight (1, N), mod_bias (1), fanout (N) for the modulated
// rules. The caller dispatches on the dtype; Params<real> points into these tensors.
struct Rule {
    int kind, akind, clipped, nthreads;
    double clip, eta;
    long B, N;
};

Rule check_rule(const Tensor &hebb, const Tensor &w, const Tensor &alpha, const OptTensor &mod_weight,
                const OptTensor &mod_bias, const OptTensor &fanout, std::string_view rule,
                std::string_view alpha_kind, std::optional<double> clip, double eta, int64_t threads) {
    TORCH_CHECK(hebb.scalar_type() == at::kFloat || hebb.scalar_type() == at::kDouble,
                "plastic_core: the kernels take float32 or float64 tensors, got ", hebb.scalar_type());
    TORCH_CHECK(hebb.dim() == 3 && hebb.size(1) == hebb.size(2),
                "plastic_core: hebb must have shape (B, N, N), got ", hebb.sizes());
    TORCH_CHECK(threads >= 1, "plastic_core: threads must be at least 1, got ", threads);
    TORCH_CHECK(!clip.has_value() || *clip > 0, "plastic_core: clip must be positive or None, got ", *clip);
    Rule r{kind_of(rule), alpha_kind_of(alpha_kind), clip.has_value(), (int)threads, clip.value_or(0.0), eta,
           (long)hebb.size(0), (long)hebb.size(1)};
    const long N = r.N;
    check(hebb, "hebb", {r.B, N, N}, hebb);
    check(w, "w", {N, N}, hebb);
    if (r.akind == CONNECTION) check(alpha, "alpha", {N, N}, hebb);
    else if (r.akind == NEURON) check(alpha, "alpha", {N, 1}, hebb);
    else check(alpha, "alpha", {1, 1}, hebb);
    const bool modulated = r.kind >= MODULATED;
    TORCH_CHECK(mod_weight.has_value() == modulated && mod_bias.has_value() == modulated,
                "plastic_core: mod_weight and mod_bias must be given for the modulated rules and only for them");
    TORCH_CHECK(!fanout.has_value() || modulated, "plastic_core: fanout is for the modulated rules only");
    check(mod_weight, "mod_weight", {1, N}, hebb);
    check(mod_bias, "mod_bias", {1}, hebb);
    check(fanout, "fanout", {N}, hebb);
    return r;
}

template <typename real>
Params<real> params_of(const Rule &r, const Tensor &w, const Tensor &alpha, const OptTensor &mod_weight,
                       const OptTensor &mod_bias, const OptTensor &fanout, bool stream) {
    return Params<real>{r.B, r.N, r.kind, r.akind, r.clipped, r.nthreads, stream, r.clip, r.eta,
                        w.data_ptr<real>(), alpha.data_ptr<real>(), data<real>(mod_weight), data<real>(mod_bias),
                        data<real>(fanout)};
}

// the traces a step writes (hebb_out, and elig_out for the retroactive rule), the eligibility trace it reads and
// the modulation m0 (B, 1) of the modulated rules, checked against the rule and the traces hebb (B, N, N)
void check_step(const Rule &r, const Tensor &hebb, const Tensor &hebb_out, const OptTensor &elig,
                const OptTensor &elig_out, const OptTensor &m0) {
    const long B = r.B, N = r.N;
    check(hebb_out, "hebb_out", {B, N, N}, hebb);
    TORCH_CHECK(elig.has_value() == (r.kind == RETRO) && elig_out.has_value() == elig.has_value(),
                "plastic_core: elig and elig_out must be given for the retroactive rule and only for it");
    check(elig, "elig", {B, N, N}, hebb);
    check(elig_out, "elig_out", {B, N, N}, hebb);
    TORCH_CHECK(m0.has_value() == (r.kind >= MODULATED), "plastic_core: m0 must be given for the modulated rules");
    check(m0, "m0", {B, 1}, hebb);
}

void forward_step(const Tensor &d, const Tensor &h_prev, const Tensor &hebb, const OptTensor &elig,
                  const Tensor &hebb_out, const OptTensor &elig_out, const Tensor &h, const OptTensor &m0,
                  const OptTensor &p, const OptTensor &clamp, const Tensor &w, const Tensor &alpha,
                  const OptTensor &mod_weight, const OptTensor &mod_bias, const OptTensor &fanout,
                  c10::string_view rule, c10::string_view alpha_kind, std::optional<double> clip, double eta,
                  int64_t threads, bool stream) {
    const Rule r = check_rule(hebb, w, alpha, mod_weight, mod_bias, fanout, rule, alpha_kind, clip, eta, threads);
    const long B = r.B, N = r.N;
    for (auto [t, name] : {std::pair{&d, "d"}, {&h_prev, "h_prev"}, {&h, "h"}}) check(*t, name, {B, N}, hebb);
    check_step(r, hebb, hebb_out, elig, elig_out, m0);
    TORCH_CHECK(p.has_value() == (r.akind != CONNECTION),
                "plastic_core: p must be given for alpha per neuron or scalar, and only then");
    check(p, "p", {B, N}, hebb);
    check(clamp, "clamp", {B, N}, hebb);
    AT_DISPATCH_FLOATING_TYPES(hebb.scalar_type(), "plastic_core::forward_step", [&] {
        const auto P = params_of<scalar_t>(r, w, alpha, mod_weight, mod_bias, fanout, stream);
        forward_kernel<scalar_t>(&P, d.data_ptr<scalar_t>(), h_prev.data_ptr<scalar_t>(), hebb.data_ptr<scalar_t>(),
                                 data<scalar_t>(elig), hebb_out.data_ptr<scalar_t>(), mutable_data<scalar_t>(elig_out),
                                 h.data_ptr<scalar_t>(), mutable_data<scalar_t>(m0), mutable_data<scalar_t>(p),
                                 data<scalar_t>(clamp));
    });
}

void update_step(const Tensor &h, const Tensor &h_prev, const OptTensor &m0, const Tensor &hebb,
                 const OptTensor &elig, const Tensor &hebb_out, const OptTensor &elig_out, const Tensor &w,
                 const Tensor &alpha, const OptTensor &mod_weight, const OptTensor &mod_bias,
                 const OptTensor &fanout, c10::string_view rule, c10::string_view alpha_kind,
                 std::optional<double> clip, double eta, int64_t threads, bool stream) {
    const Rule r = check_rule(hebb, w, alpha, mod_weight, mod_bias, fanout, rule, alpha_kind, clip, eta, threads);
    const long B = r.B, N = r.N;
    check(h, "h", {B, N}, hebb);
    check(h_prev, "h_prev", {B, N}, hebb);
    check_step(r, hebb, hebb_out, elig, elig_out, m0);
    AT_DISPATCH_FLOATING_TYPES(hebb.scalar_type(), "plastic_core::update_step", [&] {
        const auto P = params_of<scalar_t>(r, w, alpha, mod_weight, mod_bias, fanout, stream);
        update_kernel<scalar_t>(&P, h.data_ptr<scalar_t>(), h_prev.data_ptr<scalar_t>(), data<scalar_t>(m0),
                                hebb.data_ptr<scalar_t>(), data<scalar_t>(elig), hebb_out.data_ptr<scalar_t>(),
                                mutable_data<scalar_t>(elig_out));
    });
}

// Returns (dL/d eta per batch element (B), dL/d alpha (N, N) for alpha per connection else empty, dL/d fanout
// (N) where there is a fan-out else empty). starts: the first step of each segment, from 0, increasing; the
// checkpoints are the traces at those steps.
std::tuple<Tensor, Tensor, Tensor> backward_sequence(
    at::IntArrayRef starts, at::TensorList hebb_checkpoints, at::TensorList elig_checkpoints, const Tensor &hs,
    const Tensor &h0, const OptTensor &m0s, const OptTensor &clamps, const OptTensor &g_clamps, const Tensor &g,
    const Tensor &carry, const Tensor &g_hebb, const OptTensor &g_elig, const OptTensor &g_z, const Tensor &w,
    const Tensor &alpha, const OptTensor &mod_weight, const OptTensor &mod_bias, const OptTensor &fanout,
    c10::string_view rule, c10::string_view alpha_kind, std::optional<double> clip, double eta, int64_t threads) {
    TORCH_CHECK(!hebb_checkpoints.empty(), "plastic_core: backward_sequence needs at least one checkpoint");
    const Tensor &like = hebb_checkpoints[0];
    const Rule r = check_rule(like, w, alpha, mod_weight, mod_bias, fanout, rule, alpha_kind, clip, eta, threads);
    const long B = r.B, N = r.N;
    TORCH_CHECK(hs.dim() == 3, "plastic_core: hs must have shape (T, B, N), got ", hs.sizes());
    const long T = hs.size(0);
    check(hs, "hs", {T, B, N}, like);
    check(g, "g", {T, B, N}, like);
    check(h0, "h0", {B, N}, like);
    check(carry, "carry", {B, N}, like);
    check(g_hebb, "g_hebb", {B, N, N}, like);
    const bool eligible = r.kind == RETRO;
    TORCH_CHECK(g_elig.has_value() == eligible, "plastic_core: g_elig must be given for the retroactive rule only");
    check(g_elig, "g_elig", {B, N, N}, like);
    const bool modulated = r.kind >= MODULATED;
    TORCH_CHECK(m0s.has_value() == modulated && g_z.has_value() == modulated,
                "plastic_core: m0s and g_z must be given for the modulated rules and only for them");
    check(m0s, "m0s", {T, B, 1}, like);
    check(g_z, "g_z", {T, B, 1}, like);
    TORCH_CHECK(clamps.has_value() == g_clamps.has_value(), "plastic_core: give clamps and g_clamps together");
    check(clamps, "clamps", {T, B, N}, like);
    check(g_clamps, "g_clamps", {T, B, N}, like);
    const long nseg = (long)starts.size();
    TORCH_CHECK(nseg == (long)hebb_checkpoints.size() && (!eligible || nseg == (long)elig_checkpoints.size()) &&
                    (eligible || elig_checkpoints.empty()),
                "plastic_core: one checkpoint per segment start (and, retroactive, one eligibility trace each)");
    TORCH_CHECK(nseg >= 1 && starts[0] == 0, "plastic_core: the first segment must start at step 0");
    std::vector<long> bounds(starts.begin(), starts.end());
    bounds.push_back(T);
    long longest = 0;
    for (long k = 0; k < nseg; k++) {
        TORCH_CHECK(bounds[k] <= bounds[k + 1], "plastic_core: segment starts must increase and lie within T = ", T);
        longest = std::max(longest, bounds[k + 1] - bounds[k]);
        check(hebb_checkpoints[k], "a hebb checkpoint", {B, N, N}, like);
        if (eligible) check(elig_checkpoints[k], "an eligibility checkpoint", {B, N, N}, like);
    }
    const auto opts = like.options();
    const long nthreads = r.nthreads;
    Tensor geta = at::empty({B}, opts), work = at::empty({nthreads, N}, opts);
    Tensor seg = at::empty({nthreads, (eligible ? 2 : 1) * (longest - 1) * N * N}, opts);
    Tensor galpha = r.akind == CONNECTION ? at::zeros({nthreads, N, N}, opts) : at::empty({0}, opts);
    Tensor gfan = fanout.has_value() ? at::zeros({nthreads, N}, opts) : at::empty({0}, opts);
    AT_DISPATCH_FLOATING_TYPES(like.scalar_type(), "plastic_core::backward_sequence", [&] {
        const auto P = params_of<scalar_t>(r, w, alpha, mod_weight, mod_bias, fanout, false);
        std::vector<const scalar_t *> ckH, ckE;
        for (const Tensor &t : hebb_checkpoints) ckH.push_back(t.data_ptr<scalar_t>());
        if (eligible)
            for (const Tensor &t : elig_checkpoints) ckE.push_back(t.data_ptr<scalar_t>());
        backward_kernel<scalar_t>(&P, T, bounds, longest, ckH, ckE, hs.data_ptr<scalar_t>(), h0.data_ptr<scalar_t>(),
                                  data<scalar_t>(m0s), data<scalar_t>(clamps), mutable_data<scalar_t>(g_clamps),
                                  g.data_ptr<scalar_t>(), carry.data_ptr<scalar_t>(), g_hebb.data_ptr<scalar_t>(),
                                  mutable_data<scalar_t>(g_elig),
                                  r.akind == CONNECTION ? galpha.data_ptr<scalar_t>() : nullptr,
                                  fanout.has_value() ? gfan.data_ptr<scalar_t>() : nullptr, geta.data_ptr<scalar_t>(),
                                  mutable_data<scalar_t>(g_z), work.data_ptr<scalar_t>(), seg.data_ptr<scalar_t>());
    });
    // the threads' partial sums, added in thread order (as torch's sum over the first dimension)
    return {geta, galpha.numel() ? galpha.sum(0) : galpha, gfan.numel() ? gfan.sum(0) : gfan};
}

}  // namespace

// stream: write traces to separate outputs (hebb_out not hebb) with streaming stores, bypassing the cache
#define RULE_ARGS "Tensor w, Tensor alpha, Tensor? mod_weight, Tensor? mod_bias, Tensor? fanout, str rule, " \
                  "str alpha_kind, float? clip, float eta, int threads"

TORCH_LIBRARY(plastic_core, m) {
    m.def("forward_step(Tensor d, Tensor h_prev, Tensor hebb, Tensor? elig, Tensor(a!) hebb_out, "
          "Tensor(b!)? elig_out, Tensor(c!) h, Tensor(d!)? m0, Tensor(e!)? p, Tensor? clamp, " RULE_ARGS
          ", bool stream) -> ()");
    m.def("update_step(Tensor h, Tensor h_prev, Tensor? m0, Tensor hebb, Tensor? elig, Tensor(a!) hebb_out, "
          "Tensor(b!)? elig_out, " RULE_ARGS ", bool stream) -> ()");
    m.def("backward_sequence(int[] starts, Tensor[] hebb_checkpoints, Tensor[] elig_checkpoints, Tensor hs, "
          "Tensor h0, Tensor? m0s, Tensor? clamps, Tensor(a!)? g_clamps, Tensor(b!) g, Tensor(c!) carry, "
          "Tensor(d!) g_hebb, Tensor(e!)? g_elig, Tensor(f!)? g_z, " RULE_ARGS ") -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(plastic_core, CPU, m) {
    m.impl("forward_step", &forward_step);
    m.impl("update_step", &update_step);
    m.impl("backward_sequence", &backward_sequence);
}

}  // namespace plastic_core
