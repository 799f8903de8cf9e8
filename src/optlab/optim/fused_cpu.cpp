// optlab's fused CPU kernels: one pass over memory per optimizer step.
//
// Each kernel updates every tensor of a parameter group in one OpenMP parallel region:
// the group's elements, laid end to end ([0, total) through `offsets`), are split into one
// contiguous range per thread, and each element is read once and written once. The math is
// the same as the rule's `_single_tensor_rule` in Python (the spec), operation for
// operation; built with -ffp-contract=off, so no multiply-add is fused where torch does
// not fuse one (torch's own CPU kernels sometimes do: agreement is to float rounding).
//
// ABI 3 (every kernel):
//   kernel(count, tensors, present, offsets, scalars, first_by_member, members, threads)
//   count    number of tensors of each kind (parameters in the group)
//   tensors  kind-major pointers: tensors[k * count + i] is kind k of parameter i (kind 0
//            the parameters, kind 1 the gradients, the one kind only read, then the state),
//            each contiguous, of offsets[i + 1] - offsets[i] elements, none overlapping
//            another (the caller checks all of this)
//   present  bit k set when kind k is given (e.g. MAMGD's previous point is absent when
//            as published); never inferred from a pointer (an empty tensor's may be NULL)
//   offsets  count + 1 running element counts, offsets[0] = 0
//   scalars  the step's scalars as doubles, in the order the rule documents
//   first_by_member, members
//            NULL and 1, or one value of the first scalar (the one the learning rate
//            multiplies) per member of a population: every tensor is then `members` rows
//            of equal length along its leading axis, row r stepped with
//            first_by_member[r] in place of scalars[0]
//   threads  OpenMP threads to use (torch.get_num_threads())
//
// Built and loaded by optlab/optim/fused_cpu.py (g++ -O3 -march=native -fopenmp).

#include <cmath>
#include <cstdint>
#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

// Below this many elements a step runs on one thread (a parallel region costs more).
constexpr int64_t kSerialElements = 1 << 15;
// Thread ranges start on multiples of this (64 bytes of float: no shared cache lines).
constexpr int64_t kAlign = 16;

template <typename Span>
void for_each_span(int64_t count, const int64_t* offsets, int threads, Span span) {
  const int64_t total = offsets[count];
  if (total <= kSerialElements || threads < 2) {
    for (int64_t i = 0; i < count; ++i) span(i, 0, offsets[i + 1] - offsets[i]);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
#ifdef _OPENMP
    const int64_t team = omp_get_num_threads(), rank = omp_get_thread_num();
#else
    const int64_t team = 1, rank = 0;
#endif
    int64_t chunk = (total + team - 1) / team;
    chunk = (chunk + kAlign - 1) / kAlign * kAlign;
    const int64_t lo = chunk * rank;
    const int64_t hi = lo + chunk < total ? lo + chunk : total;
    for (int64_t i = 0; i < count && lo < hi; ++i) {
      const int64_t first = offsets[i], last = offsets[i + 1];
      if (last <= lo || first >= hi) continue;
      span(i, (lo > first ? lo : first) - first, (hi < last ? hi : last) - first);
    }
  }
}

// for_each_span, each span cut at member rows: piece(i, begin, end, first) with the first
// scalar of the member that owns [begin, end).
template <typename T, typename Piece>
void for_each_piece(int64_t count, const int64_t* offsets, int threads, double first,
                    const double* first_by_member, int64_t members, Piece piece) {
  for_each_span(count, offsets, threads, [=](int64_t i, int64_t begin, int64_t end) {
    if (first_by_member == nullptr) {
      piece(i, begin, end, T(first));
      return;
    }
    const int64_t row = (offsets[i + 1] - offsets[i]) / members;
    for (int64_t at = begin; at < end;) {
      const int64_t member = at / row;
      const int64_t stop = (member + 1) * row < end ? (member + 1) * row : end;
      piece(i, at, stop, T(first_by_member[member]));
      at = stop;
    }
  });
}

template <typename T>
T* kind(void* const* tensors, int64_t count, int k, int64_t i) {
  return static_cast<T*>(tensors[k * count + i]);
}

// IMO (optlab/optim/imo.py), one contiguous span of n elements.
template <typename T, bool kBox>
void imo_span(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ prev_grad,
              T* __restrict__ mass, T* __restrict__ velocity, int64_t n, T lr, T momentum,
              T keep, T half, T alpha, T beta, T mass_min, T mass_max, T eps) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const T g = grad[j], agreement = g * prev_grad[j], m = mass[j];
    const T heavier = (!kBox || agreement < T(0)) ? m * beta : m;
    T next = agreement > T(0) ? m * alpha : heavier;
    next = next < mass_min ? mass_min : (next > mass_max ? mass_max : next);
    mass[j] = next;
    const T force = g / (std::sqrt(next) + eps);
    const T v = velocity[j] * momentum + force * keep;
    velocity[j] = v;
    const T direction = kBox ? (agreement > T(0) ? v : force) : v * momentum + force * half;
    param[j] = param[j] - direction * lr;
    prev_grad[j] = g;
  }
}

// IMO kinds: param, grad, prev_grad, mass, velocity. Scalars: lr, momentum,
// 1 - momentum, 0.5 (1 - momentum), alpha, beta, mass_min, mass_max, eps,
// algorithm_box (0 or 1).
template <typename T>
void imo(int64_t count, void* const* tensors, int64_t /*present: all five*/,
         const int64_t* offsets, const double* s, const double* first_by_member,
         int64_t members, int threads) {
  const T momentum = T(s[1]), keep = T(s[2]), half = T(s[3]);
  const T alpha = T(s[4]), beta = T(s[5]), mass_min = T(s[6]), mass_max = T(s[7]);
  const T eps = T(s[8]);
  const bool box = s[9] != 0.0;
  for_each_piece<T>(count, offsets, threads, s[0], first_by_member, members,
                    [=](int64_t i, int64_t begin, int64_t end, T lr) {
    T* param = kind<T>(tensors, count, 0, i) + begin;
    const T* grad = kind<T>(tensors, count, 1, i) + begin;
    T* prev_grad = kind<T>(tensors, count, 2, i) + begin;
    T* mass = kind<T>(tensors, count, 3, i) + begin;
    T* velocity = kind<T>(tensors, count, 4, i) + begin;
    if (box) {
      imo_span<T, true>(param, grad, prev_grad, mass, velocity, end - begin, lr, momentum, keep,
                        half, alpha, beta, mass_min, mass_max, eps);
    } else {
      imo_span<T, false>(param, grad, prev_grad, mass, velocity, end - begin, lr, momentum,
                         keep, half, alpha, beta, mass_min, mass_max, eps);
    }
  });
}

// MAMGD (optlab/optim/mamgd.py), one contiguous span of n elements, with the secant term.
template <typename T>
void mamgd_secant_span(T* __restrict__ param, const T* __restrict__ grad,
                       T* __restrict__ exp_avg, T* __restrict__ exp_avg_sq,
                       T* __restrict__ prev_param, T* __restrict__ prev_grad, int64_t n,
                       T step_size, T beta1, T keep1, T beta2, T keep2, T eps) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const T g = grad[j], p = param[j];
    const T m = exp_avg[j] * beta1 + g * keep1;
    const T v = exp_avg_sq[j] * beta2 + (g * g) * keep2;
    exp_avg[j] = m;
    exp_avg_sq[j] = v;
    const T gap = (p - prev_param[j]) + eps;
    const T c = gap != T(0) ? (g - prev_grad[j]) / gap : T(0);
    const T denominator = std::sqrt(c * c + v) + eps;
    prev_param[j] = p;
    prev_grad[j] = g;
    param[j] = p - (m * step_size) / denominator;
  }
}

// MAMGD as published (no previous point: the secant term is 0).
template <typename T>
void mamgd_published_span(T* __restrict__ param, const T* __restrict__ grad,
                          T* __restrict__ exp_avg, T* __restrict__ exp_avg_sq, int64_t n,
                          T step_size, T beta1, T keep1, T beta2, T keep2, T eps) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const T g = grad[j];
    const T m = exp_avg[j] * beta1 + g * keep1;
    const T v = exp_avg_sq[j] * beta2 + (g * g) * keep2;
    exp_avg[j] = m;
    exp_avg_sq[j] = v;
    param[j] = param[j] - (m * step_size) / (std::sqrt(v) + eps);
  }
}

// MAMGD kinds: param, grad, exp_avg, exp_avg_sq, prev_param, prev_grad (the last two NULL
// when as published). Scalars: step_size, beta1, 1 - beta1, beta2, 1 - beta2, eps.
template <typename T>
void mamgd(int64_t count, void* const* tensors, int64_t present, const int64_t* offsets,
           const double* s, const double* first_by_member, int64_t members, int threads) {
  const T beta1 = T(s[1]), keep1 = T(s[2]);
  const T beta2 = T(s[3]), keep2 = T(s[4]), eps = T(s[5]);
  const bool secant = ((present >> 4) & 1) && ((present >> 5) & 1);
  for_each_piece<T>(count, offsets, threads, s[0], first_by_member, members,
                    [=](int64_t i, int64_t begin, int64_t end, T step_size) {
    T* param = kind<T>(tensors, count, 0, i) + begin;
    const T* grad = kind<T>(tensors, count, 1, i) + begin;
    T* exp_avg = kind<T>(tensors, count, 2, i) + begin;
    T* exp_avg_sq = kind<T>(tensors, count, 3, i) + begin;
    if (secant) {
      mamgd_secant_span<T>(param, grad, exp_avg, exp_avg_sq, kind<T>(tensors, count, 4, i) + begin,
                           kind<T>(tensors, count, 5, i) + begin, end - begin, step_size, beta1,
                           keep1, beta2, keep2, eps);
    } else {
      mamgd_published_span<T>(param, grad, exp_avg, exp_avg_sq, end - begin, step_size, beta1,
                              keep1, beta2, keep2, eps);
    }
  });
}

}  // namespace

extern "C" {

int optlab_fused_cpu_abi() { return 3; }

#define OPTLAB_KERNEL(rule, suffix, T)                                                      \
  void optlab_##rule##_##suffix(int64_t count, void* const* tensors, int64_t present,      \
                                const int64_t* offsets, const double* scalars,             \
                                const double* first_by_member, int64_t members,            \
                                int threads) {                                             \
    rule<T>(count, tensors, present, offsets, scalars, first_by_member, members, threads); \
  }

OPTLAB_KERNEL(imo, float32, float)
OPTLAB_KERNEL(imo, float64, double)
OPTLAB_KERNEL(mamgd, float32, float)
OPTLAB_KERNEL(mamgd, float64, double)

}  // extern "C"
