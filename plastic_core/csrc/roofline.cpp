// Microbenchmarks of this CPU's roofs, built with the kernels (same flags, same library) so that they measure what
// the kernels' instructions can reach (plastic_core/roofline.py times them and does the arithmetic):
//
//   peak_flops(repeats, fused)  CHAINS independent vector chains of float32 multiply-adds, `repeats` times:
//                               fused = false: a multiply then an add (what the kernels run: -ffp-contract=off),
//                               fused = true: one FMA instruction each (AVX2 FMA where the CPU has it)
//   copy_bytes(src, dst, repeats)  memcpy of src into dst, `repeats` times (read + write)
//
// Both run on the calling thread only.

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace plastic_core {
namespace {

// independent chains, more than latency x ports / ops per chain step (a multiply then an add: 8 x 2 / 2, an FMA:
// 4 x 2 on recent x86-64), so that the loop is bound by throughput, not latency; and few enough to stay in the 16
// vector registers of AVX2
constexpr int CHAINS = 12;
typedef float vec8 __attribute__((vector_size(32)));  // 8 lanes: one AVX register in the wide build, two SSE ones else

// multiply and add as two instructions (the compiler may not fuse them: -ffp-contract=off)
double mul_add_peak(long repeats) {
    vec8 acc[CHAINS];
    const vec8 m = {1.0000001f, 1.0000001f, 1.0000001f, 1.0000001f, 1.0000001f, 1.0000001f, 1.0000001f, 1.0000001f};
    const vec8 a = {1e-7f, 1e-7f, 1e-7f, 1e-7f, 1e-7f, 1e-7f, 1e-7f, 1e-7f};
    for (int k = 0; k < CHAINS; k++) acc[k] = m * (float)(k + 1);
    for (long r = 0; r < repeats; r++) {
        for (int k = 0; k < CHAINS; k++) acc[k] = acc[k] * m + a;  // not folded: float math is not reassociated
    }
    double sum = 0;
    for (int k = 0; k < CHAINS; k++)
        for (int l = 0; l < 8; l++) sum += acc[k][l];
    return sum;
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) double fma_peak(long repeats) {
    __m256 acc[CHAINS];
    const __m256 m = _mm256_set1_ps(1.0000001f), a = _mm256_set1_ps(1e-7f);
    for (int k = 0; k < CHAINS; k++) acc[k] = _mm256_set1_ps((float)(k + 1));
    for (long r = 0; r < repeats; r++) {
        for (int k = 0; k < CHAINS; k++) acc[k] = _mm256_fmadd_ps(acc[k], m, a);
    }
    alignas(32) float out[8];
    double sum = 0;
    for (int k = 0; k < CHAINS; k++) {
        _mm256_store_ps(out, acc[k]);
        for (int l = 0; l < 8; l++) sum += out[l];
    }
    return sum;
}
#endif

// Returns the float32 operations done (2 per lane and chain and repeat: a multiply and an add), or 0 where fused
// multiply-adds are asked for and the CPU has none.
int64_t peak_flops(int64_t repeats, bool fused) {
    TORCH_CHECK(repeats >= 1, "plastic_core: repeats must be at least 1, got ", repeats);
    volatile double sink;
    if (fused) {
#if defined(__x86_64__)
        if (!__builtin_cpu_supports("fma")) return 0;
        sink = fma_peak(repeats);
#else
        return 0;
#endif
    } else {
        sink = mul_add_peak(repeats);
    }
    (void)sink;
    return 2 * 8 * CHAINS * repeats;
}

void copy_bytes(const at::Tensor &src, const at::Tensor &dst, int64_t repeats) {
    TORCH_CHECK(src.device().is_cpu() && dst.device().is_cpu() && src.is_contiguous() && dst.is_contiguous() &&
                    src.nbytes() == dst.nbytes(),
                "plastic_core: copy_bytes takes two contiguous CPU tensors of the same size");
    const char *s = static_cast<const char *>(src.data_ptr());
    char *d = static_cast<char *>(dst.data_ptr());
    for (int64_t r = 0; r < repeats; r++) {
        std::memcpy(d, s, src.nbytes());
        asm volatile("" : : "r"(d) : "memory");  // every copy happens
    }
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(plastic_core, m) {
    m.def("peak_flops(int repeats, bool fused) -> int", &peak_flops);  // no tensor: one kernel for every key
    m.def("copy_bytes(Tensor src, Tensor(a!) dst, int repeats) -> ()");
}

TORCH_LIBRARY_IMPL(plastic_core, CPU, m) { m.impl("copy_bytes", &copy_bytes); }

}  // namespace plastic_core
